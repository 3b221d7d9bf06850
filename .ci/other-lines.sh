#!/usr/bin/env bash
# The tap suite with its 100% coverage check on each supported Node line other than the one `npm test` ran on:
# Node 24 with the locked fastify, Node 22 with the oldest fastify the package accepts (the peer dependency's
# floor: the oldest of both together). The floor is installed in a copy of the clone (with its node_modules
# and dist/, so run after `npm test` built it); the clone and its lockfile are untouched.
#   bash .ci/other-lines.sh [LOG_DIR]
# Writes node<major>.log (tap's output) into LOG_DIR and prints one "Node <major> (...): tap exit N" line per
# line, last; exits 1 if any line failed.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
logs=${1:-$(mktemp -d)}
LINES=(24 22)
FLOOR_LINE=22
# Two jobs on a 2-core machine: most files spend their time waiting on child processes.
TAP_JOBS=${TAP_JOBS:-2}
log() { printf '[other-lines] %s\n' "$*"; }

floor=$(node -p "require('./package.json').peerDependencies.fastify.match(/>=\s*([0-9.]+)/)[1]")
copy=$(mktemp -d /var/tmp/fastify-floor.XXXXXX)
trap 'rm -rf "$copy"' EXIT
log "fastify $floor (the floor) in a copy of the clone: $copy"
floor_setup=0
{ tar --exclude=./.git --exclude=./.tap -cf - . | tar -C "$copy" -xf - &&
  (cd "$copy" && npm install --no-save --no-audit --no-fund --prefer-offline --loglevel=error "fastify@$floor") &&
  [ "$(cd "$copy" && node -p "require('fastify/package.json').version")" = "$floor" ]; } || floor_setup=1
log "fastify in the copy: $(cd "$copy" && node -p "require('fastify/package.json').version" 2>&1) (setup exit $floor_setup)"

results=()
failed=0
for line in "${LINES[@]}"; do
  dir=. what="fastify $(node -p "require('fastify/package.json').version")"
  if [ "$line" = "$FLOOR_LINE" ]; then dir=$copy what="fastify $floor, the floor"; fi
  started=$SECONDS
  code=0
  if ! bin=$(bash .ci/node-line.sh "$line"); then
    code=1
  elif [ "$dir" = "$copy" ] && [ "$floor_setup" -ne 0 ]; then
    code=1
  else
    log "Node $("$bin/node" --version), $what: npx tap --jobs=$TAP_JOBS"
    (cd "$dir" && PATH="$bin:$PATH" npx tap --jobs="$TAP_JOBS") 2>&1 | tee "$logs/node$line.log"
    code=${PIPESTATUS[0]}
  fi
  results+=("Node $line ($what): tap exit $code in $((SECONDS - started)) s")
  [ "$code" -eq 0 ] || failed=1
done
for r in "${results[@]}"; do echo "$r"; done
exit "$failed"
