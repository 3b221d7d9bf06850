#!/usr/bin/env bash
# Make a Docker engine available for the end-to-end suite (issue 4).
# Idempotent: installs docker.io and debootstrap only when missing, starts dockerd only
# when no engine answers. Uses /usr/bin/docker: the Debian client has BuildKit built in,
# while a newer client elsewhere on PATH may lack the buildx plugin.
set -euo pipefail

DOCKER=/usr/bin/docker
LOG=${DOCKERD_LOG:-/var/log/dockerd-ci.log}
WAIT_S=${DOCKERD_WAIT_S:-60}

log() { printf '[docker-setup] %s\n' "$*"; }

missing=()
[ -x "$DOCKER" ] && command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
if [ ${#missing[@]} -gt 0 ]; then
  log "installing ${missing[*]} (apt-get update first)"
  start=$SECONDS
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  log "installed in $((SECONDS - start)) s"
else
  log "docker.io and debootstrap already installed"
fi

if "$DOCKER" info >/dev/null 2>&1; then
  log "engine already running"
  exit 0
fi

log "starting dockerd in the background (log: $LOG)"
# setsid: dockerd must outlive this script and not receive its terminal's signals.
setsid dockerd >>"$LOG" 2>&1 </dev/null &
start=$SECONDS
while ! "$DOCKER" info >/dev/null 2>&1; do
  elapsed=$((SECONDS - start))
  if [ "$elapsed" -ge "$WAIT_S" ]; then
    log "ERROR: dockerd did not answer within ${WAIT_S} s; last lines of $LOG:"
    tail -n 30 "$LOG" >&2 || true
    exit 1
  fi
  if ! kill -0 $! 2>/dev/null; then
    log "ERROR: dockerd exited early; last lines of $LOG:"
    tail -n 30 "$LOG" >&2 || true
    exit 1
  fi
  if [ $((elapsed % 5)) -eq 0 ]; then log "waiting for dockerd (${elapsed} s)"; fi
  sleep 1
done
log "engine ready after $((SECONDS - start)) s: $("$DOCKER" version --format 'server {{.Server.Version}}')"
