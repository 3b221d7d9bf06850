#!/usr/bin/env bash
# The real front doors of the e2e suite (issue 11): nginx with the Lua module and lua-resty-core (the
# ingress, as ingress-nginx runs it), HAProxy (a second ingress), iptables (nf_tables) and conntrack (the
# Service, as kube-proxy's iptables mode programs it), iproute2 (the suite's network namespace).
# Idempotent: installs only what is missing. Packages' own services are not started (policy-rc.d says no):
# the suite starts its own instances, each with its own config in a temp dir.
set -euo pipefail

log() { printf '[frontdoors-setup] %s\n' "$*"; }

missing=()
[ -x /usr/sbin/nginx ] || missing+=(nginx-light)
[ -f /usr/lib/nginx/modules/ngx_http_lua_module.so ] || missing+=(libnginx-mod-http-lua)
[ -f /usr/share/lua/5.1/resty/core.lua ] || missing+=(lua-resty-core)
[ -x /usr/sbin/haproxy ] || missing+=(haproxy)
command -v iptables-restore >/dev/null 2>&1 || missing+=(iptables)
command -v conntrack >/dev/null 2>&1 || missing+=(conntrack)
command -v ip >/dev/null 2>&1 || missing+=(iproute2)

if [ ${#missing[@]} -eq 0 ]; then
  log "all installed: $(/usr/sbin/nginx -v 2>&1), $(/usr/sbin/haproxy -v | head -n1 | cut -d' ' -f1-3), $(iptables-restore --version 2>&1)"
  exit 0
fi
log "installing ${missing[*]} (apt-get update first)"
start=$SECONDS
# shellcheck source=apt-install.sh
. "$(dirname "${BASH_SOURCE[0]}")/apt-install.sh"
apt_install "${missing[@]}"
log "installed in $((SECONDS - start)) s"
