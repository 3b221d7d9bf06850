#!/usr/bin/env bash
# Build the service image from the repository's Dockerfile, FROM the local stand-in base
# image (.ci/base-image.sh), since no image registry is reachable here.
# Usage: .ci/docker-build.sh [tag]   (default tag: fastify-graceful-k8s:e2e)
# The npm CA bundle is passed as a BuildKit secret only when NODE_EXTRA_CA_CERTS names
# one: it is needed where TLS to the npm registry is intercepted, and never baked in.
set -euo pipefail

DOCKER=/usr/bin/docker
TAG=${1:-${E2E_IMAGE:-fastify-graceful-k8s:e2e}}
BASE=${BASE_IMAGE:-fastify-graceful-k8s/node-base:local}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

log() { printf '[docker-build] %s\n' "$*"; }

args=(--build-arg "NODE_IMAGE=$BASE" --tag "$TAG" --progress=plain)
if [ -n "${NODE_EXTRA_CA_CERTS:-}" ] && [ -s "$NODE_EXTRA_CA_CERTS" ]; then
  args+=(--secret "id=npm_ca,src=$NODE_EXTRA_CA_CERTS")
  log "passing $NODE_EXTRA_CA_CERTS as secret npm_ca"
fi

log "building $TAG FROM $BASE"
start=$SECONDS
out=$(mktemp)
trap 'rm -f "$out"' EXIT
if ! DOCKER_BUILDKIT=1 "$DOCKER" build "${args[@]}" "$ROOT" >"$out" 2>&1; then
  log "ERROR: build failed; last lines:"
  tail -n 40 "$out" >&2
  exit 1
fi
grep -E '^#[0-9]+ \[[a-z-]+ [0-9]+/[0-9]+\]' "$out" | cut -c1-110 | awk '!seen[$0]++' | sed 's/^/[docker-build]   /' || true
log "built $TAG in $((SECONDS - start)) s ($("$DOCKER" image inspect --format '{{.Size}}' "$TAG" | awk '{printf "%.0f MB", $1/1e6}'))"
