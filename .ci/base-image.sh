#!/usr/bin/env bash
# Build a local stand-in for the official `node:*-bookworm-slim` image, because no image
# registry is reachable here (issue 4). It mirrors what the tests depend on:
#   - Debian bookworm from `debootstrap --variant=minbase`: like the slim images, no procps,
#     so no /bin/kill (a preStop `kill -HUP 1` must use the shell builtin or node);
#   - the host's `node` in /usr/local/bin and npm in /usr/local/lib/node_modules/npm with
#     npm/npx symlinks, as the official image lays them out;
#   - user and group `node`, uid/gid 1000, home /home/node;
#   - docker-entrypoint.sh, ENV PATH and CMD ["node"] as the official image sets them.
# Reused when the image already exists; the debootstrap rootfs is cached as a tarball under
# /var/cache so a rebuild after `docker rmi` takes seconds, not minutes.
set -euo pipefail

DOCKER=/usr/bin/docker
IMAGE=${BASE_IMAGE:-fastify-graceful-k8s/node-base:local}
SUITE=bookworm
CACHE_DIR=${BASE_IMAGE_CACHE:-/var/cache/fastify-graceful-k8s}
ROOTFS_TAR=$CACHE_DIR/$SUITE-minbase-rootfs.tar

log() { printf '[base-image] %s\n' "$*"; }

if [ "${1:-}" != "--force" ] && "$DOCKER" image inspect "$IMAGE" >/dev/null 2>&1; then
  log "$IMAGE already exists (pass --force to rebuild)"
  exit 0
fi

# Use the Debian mirror the host's apt sources name: it is the one known to be reachable.
mirror=${DEBIAN_MIRROR:-}
if [ -z "$mirror" ]; then
  mirror=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null \
    | grep -oE 'https?://[^ ]+/debian/?( |$)' | grep -v security | head -n 1 | tr -d ' ' || true)
fi
mirror=${mirror:-http://deb.debian.org/debian}

NODE_BIN=$(readlink -f "$(command -v node)")
NODE_PREFIX=$(dirname "$(dirname "$(readlink -f "$(command -v node)")")")
NPM_DIR=$NODE_PREFIX/lib/node_modules/npm
[ -d "$NPM_DIR" ] || NPM_DIR=$(npm root -g)/npm
[ -f "$NPM_DIR/bin/npm-cli.js" ] || { log "ERROR: npm not found next to $NODE_BIN"; exit 1; }
NODE_VERSION=$("$NODE_BIN" --version | sed 's/^v//')

work=$(mktemp -d /var/tmp/node-base.XXXXXX)
trap 'rm -rf "$work"' EXIT
rootfs=$work/rootfs
mkdir -p "$rootfs" "$CACHE_DIR"

start=$SECONDS
if [ -s "$ROOTFS_TAR" ]; then
  log "reusing cached rootfs $ROOTFS_TAR"
  tar -C "$rootfs" -xpf "$ROOTFS_TAR"
else
  log "debootstrap --variant=minbase $SUITE from $mirror (takes a minute or two)"
  debootstrap --variant=minbase "$SUITE" "$rootfs" "$mirror" > "$work/debootstrap.log" 2>&1 || {
    log "ERROR: debootstrap failed; last lines:"; tail -n 30 "$work/debootstrap.log" >&2; exit 1; }
  # Slim images ship without apt lists or downloaded packages.
  rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/log/*
  tar -C "$rootfs" -cpf "$ROOTFS_TAR.tmp" . && mv "$ROOTFS_TAR.tmp" "$ROOTFS_TAR"
  log "rootfs built and cached in $((SECONDS - start)) s ($(du -h "$ROOTFS_TAR" | cut -f1))"
fi

log "adding node $NODE_VERSION and npm $("$NODE_BIN" "$NPM_DIR/bin/npm-cli.js" --version) from the host"
install -D -m 0755 "$NODE_BIN" "$rootfs/usr/local/bin/node"
mkdir -p "$rootfs/usr/local/lib/node_modules"
cp -a "$NPM_DIR" "$rootfs/usr/local/lib/node_modules/npm"
ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$rootfs/usr/local/bin/npm"
ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$rootfs/usr/local/bin/npx"

# The official image's entrypoint: run `node` for arguments that are not commands, then exec,
# so an exec-form CMD still ends with node as PID 1.
cat > "$rootfs/usr/local/bin/docker-entrypoint.sh" <<'SH'
#!/bin/sh
set -e
if [ "${1#-}" != "${1}" ] || [ -z "$(command -v "${1}")" ] || { [ -f "${1}" ] && ! [ -x "${1}" ]; }; then
  set -- node "$@"
fi
exec "$@"
SH
chmod 0755 "$rootfs/usr/local/bin/docker-entrypoint.sh"

# uid/gid 1000 like the official image; a Dockerfile's `USER 1000:1000` maps to it.
chroot "$rootfs" groupadd --gid 1000 node
chroot "$rootfs" useradd --uid 1000 --gid node --shell /bin/bash --create-home node

for forbidden in /bin/kill /usr/bin/kill /usr/bin/ps; do
  if [ -e "$rootfs$forbidden" ]; then log "ERROR: $forbidden exists; the slim images have none"; exit 1; fi
done

log "importing $IMAGE"
tar -C "$rootfs" -cpf - . | "$DOCKER" import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change "ENV NODE_VERSION=$NODE_VERSION" \
  --change 'ENTRYPOINT ["docker-entrypoint.sh"]' \
  --change 'CMD ["node"]' \
  --message "stand-in for node:$NODE_VERSION-bookworm-slim (debootstrap minbase + host node)" \
  - "$IMAGE" >/dev/null
"$DOCKER" run --rm "$IMAGE" node -e 'console.log("[base-image] check: node", process.version, "uid", require("os").userInfo({}).uid)'
"$DOCKER" run --rm "$IMAGE" npm --version | sed 's/^/[base-image] check: npm /'
log "done in $((SECONDS - start)) s"
