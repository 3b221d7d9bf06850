#!/usr/bin/env bash
# The node's packages for the real-cluster suite (issue 19), from Debian: containerd 1.7 and etcd 3.5 from
# trixie (both install on bookworm; bookworm's containerd 1.6 and etcd 3.4 are older than Kubernetes 1.35
# wants), runc and the CNI plugins (bridge, host-local, loopback) from bookworm (trixie's runc needs a newer
# libc), iptables and conntrack (kube-proxy's iptables mode), gcc and libc6-dev (the pause image is built
# from Kubernetes' own build/pause/linux/pause.c). trixie is added in a list file of the project's own with
# a pin of 100, so nothing else ever comes from it unless named. Idempotent: installs only what is missing.
# The packages' own services are not started (policy-rc.d): the suite starts its own containerd.
set -euo pipefail

log() { printf '[kube-setup] %s\n' "$*"; }

version_at_least() { [ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -n1)" = "$2" ]; }
pkg_version() { dpkg-query -W -f '${Version}' "$1" 2>/dev/null || true; }

missing=()
version_at_least "$(pkg_version containerd)" 1.7 || missing+=(containerd/trixie)
version_at_least "$(pkg_version etcd-server)" 3.5 || missing+=(etcd-server/trixie)
command -v runc >/dev/null 2>&1 || missing+=(runc)
[ -x /usr/lib/cni/bridge ] || missing+=(containernetworking-plugins)
command -v iptables-restore >/dev/null 2>&1 || missing+=(iptables)
command -v conntrack >/dev/null 2>&1 || missing+=(conntrack)
command -v ip >/dev/null 2>&1 || missing+=(iproute2)
command -v nsenter >/dev/null 2>&1 || missing+=(util-linux)
command -v gcc >/dev/null 2>&1 || missing+=(gcc)
[ -f /usr/include/stdio.h ] || missing+=(libc6-dev)

if [ ${#missing[@]} -eq 0 ]; then
  log "all installed: containerd $(pkg_version containerd), etcd $(pkg_version etcd-server), runc $(pkg_version runc), CNI plugins $(pkg_version containernetworking-plugins)"
  exit 0
fi

sources=/etc/apt/sources.list.d/fastify-graceful-k8s-trixie.sources
pin=/etc/apt/preferences.d/fastify-graceful-k8s-trixie
if [ ! -f "$sources" ] || [ ! -f "$pin" ]; then
  log "adding trixie (pinned to 100: only packages named with /trixie come from it): $sources, $pin"
  printf 'Types: deb\nURIs: http://deb.debian.org/debian\nSuites: trixie\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' > "$sources"
  printf 'Package: *\nPin: release n=trixie\nPin-Priority: 100\n' > "$pin"
fi
log "installing ${missing[*]} (apt-get update first)"
start=$SECONDS
# shellcheck source=apt-install.sh
. "$(dirname "${BASH_SOURCE[0]}")/apt-install.sh"
apt_install "${missing[@]}"
log "installed in $((SECONDS - start)) s: containerd $(pkg_version containerd), etcd $(pkg_version etcd-server), runc $(pkg_version runc)"
