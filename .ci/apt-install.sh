# Sourced by the .ci/*-setup.sh scripts: apt_install PKG... installs Debian packages quietly, with a
# policy-rc.d in place for the time of the install so that no package's init script starts a system
# service (a system nginx/HAProxy on port 80, a system containerd or etcd beside the suite's own).
apt_install() {
  export DEBIAN_FRONTEND=noninteractive
  local policy=/usr/sbin/policy-rc.d created=0 status=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' > "$policy"
    chmod +x "$policy"
    created=1
  fi
  apt-get update -qq && apt-get install -y -qq --no-install-recommends "$@" >/dev/null || status=$?
  if [ "$created" -eq 1 ]; then rm -f "$policy"; fi
  return "$status"
}
