#!/usr/bin/env bash
# A real single-node Kubernetes for the suite test/kube (issue 19), every process inside a network namespace
# of its own (`fgk-kube`), entered with `nsenter --net=` (not `ip netns exec`, which remounts /sys and hides
# the cgroups from the kubelet). DESIGN.md §7 lists what this VM needs and why.
#
#   kube-cluster.sh up BIN_DIR   remove what an earlier run left, then start etcd, kube-apiserver,
#                                kube-controller-manager, kube-scheduler, containerd, kubelet and kube-proxy
#                                (iptables mode); wait for the node Ready; print the settings as KEY=value lines
#   kube-cluster.sh down         stop every process, remove the containers, mounts, the namespace (its
#                                iptables rules and routes go with it) and every file; safe to run any time
#   kube-cluster.sh import TAR   import an image archive (`docker save`) into containerd's k8s.io namespace
#
# Network: the node IP sits on the namespace's lo (no dummy devices here) with a blackhole default route; the
# pods are on a bridge made up front; a veth pair joins the root namespace, where the suite's load client
# runs, and routes the service and pod ranges and the node IP through it. Nothing else touches the root
# namespace, and the veth and its routes go with the namespace.
set -euo pipefail

NS=fgk-kube
NETNS=/var/run/netns/$NS
STATE=${KUBE_STATE:-/var/lib/fgk-kube}
RUN=/run/fgk-kube
NODE=fgk-node
NODE_IP=10.250.0.1
HOST_IP=10.250.1.1
PEER_IP=10.250.1.2
HOST_VETH=fgkkube0
PEER_VETH=fgkkube1
BRIDGE=fgkkbr0
POD_CIDR=10.244.0.0/24
POD_GW=10.244.0.1
SERVICE_CIDR=10.97.0.0/24
PAUSE_IMAGE=registry.k8s.io/pause:3.10.1
SOCK=$RUN/containerd.sock
RUNC_ROOT=$RUN/runc

log() { printf '[kube-cluster] +%ds %s\n' "$SECONDS" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
in_ns() { nsenter --net="$NETNS" "$@"; }

# ---------------------------------------------------------------------------------------------- down
pids_of_ours() {
  # Processes whose command line names this cluster's state or run directory (containerd's shims included),
  # and every process inside the namespace.
  # One grep over every command line; "[e]" keeps grep's own command line from matching itself.
  grep -lsaE -e "${STATE%?}[${STATE: -1}]/" -e "${RUN%?}[${RUN: -1}]/" /proc/[0-9]*/cmdline | cut -d/ -f3
  [ -e "$NETNS" ] && ip netns pids "$NS" 2>/dev/null
  true
}

down() {
  # Containers first (runc's own state: works after a SIGKILLed run too), then the processes, then mounts.
  if [ -d "$RUNC_ROOT" ]; then
    local root id
    for root in "$RUNC_ROOT"/*/; do
      [ -d "$root" ] || continue
      for id in $(runc --root "$root" list -q 2>/dev/null); do
        runc --root "$root" kill -a "$id" KILL >/dev/null 2>&1 || true
        runc --root "$root" delete -f "$id" >/dev/null 2>&1 || true
      done
    done
  fi
  local pids pid tries=0
  pids=$(pids_of_ours | sort -u)
  [ -n "$pids" ] && log "stopping $(echo "$pids" | wc -l) processes of the cluster"
  for pid in $pids; do kill -TERM "$pid" 2>/dev/null || true; done
  while [ -n "$(pids_of_ours)" ] && [ $tries -lt 25 ]; do sleep 0.2; tries=$((tries + 1)); done
  for pid in $(pids_of_ours | sort -u); do kill -KILL "$pid" 2>/dev/null || true; done
  # Mounts under the state and run dirs (container root filesystems, shm, pod network namespaces), deepest first.
  local m
  for m in $(awk '{ print $5 }' /proc/self/mountinfo | grep -E "^($STATE|$RUN)/" | sort -r); do
    umount -l "$m" 2>/dev/null || true
  done
  # The kubelet's links in /var/log/containers (a fixed path) to the pods' logs in the state dir.
  local l
  for l in /var/log/containers/*.log; do
    [ -L "$l" ] && case "$(readlink "$l")" in "$STATE"/*) rm -f "$l" ;; esac
  done
  ip link del "$HOST_VETH" 2>/dev/null || true
  if [ -e "$NETNS" ]; then ip netns del "$NS" 2>/dev/null || true; fi
  rm -rf "$STATE" "$RUN"
}

# ---------------------------------------------------------------------------------------------- up
pki() {
  local d=$STATE/pki
  mkdir -p "$d"
  (
    cd "$d"
    openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 2 -subj "/CN=fgk-kube-ca" 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -keyout apiserver.key -out apiserver.csr -subj "/CN=kube-apiserver" 2>/dev/null
    printf 'subjectAltName=IP:%s,IP:10.97.0.1,IP:127.0.0.1,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:localhost\n' "$NODE_IP" > san.ext
    openssl x509 -req -in apiserver.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out apiserver.crt -days 2 -extfile san.ext 2>/dev/null
    openssl genrsa -out sa.key 2048 2>/dev/null
    openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
  )
  TOKEN=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
  printf '%s,admin,admin,"system:masters"\n' "$TOKEN" > "$d/tokens.csv"
  cat > "$STATE/kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: fgk
  cluster:
    server: https://$NODE_IP:6443
    certificate-authority: $d/ca.crt
users:
- name: admin
  user:
    token: $TOKEN
contexts:
- name: fgk
  context: { cluster: fgk, user: admin, namespace: default }
current-context: fgk
EOF
}

network() {
  ip netns add "$NS"
  in_ns ip link set lo up
  in_ns ip addr add "$NODE_IP/32" dev lo
  ip link add "$HOST_VETH" type veth peer name "$PEER_VETH"
  ip link set "$PEER_VETH" netns "$NS"
  ip addr add "$HOST_IP/30" dev "$HOST_VETH"
  ip link set "$HOST_VETH" up
  in_ns ip addr add "$PEER_IP/30" dev "$PEER_VETH"
  in_ns ip link set "$PEER_VETH" up
  in_ns ip link add "$BRIDGE" type bridge
  in_ns ip addr add "$POD_GW/24" dev "$BRIDGE"
  in_ns ip link set "$BRIDGE" up
  in_ns ip route add blackhole default
  in_ns ip route add "$SERVICE_CIDR" dev "$BRIDGE"
  in_ns sysctl -qw net.ipv4.ip_forward=1
  for cidr in "$SERVICE_CIDR" "$POD_CIDR" "$NODE_IP/32"; do ip route add "$cidr" via "$PEER_IP" dev "$HOST_VETH"; done
}

# The pause image, built from Kubernetes' own build/pause/linux/pause.c (in the module cache once the build
# has downloaded k8s.io/kubernetes), packed as an OCI archive by hand: a static binary, one layer.
pause_image() {
  local src=$1 dir=$STATE/pause
  mkdir -p "$dir/rootfs" "$dir/oci/blobs/sha256"
  gcc -Os -static -Wall -Werror -DVERSION="v3.10.1-fgk" -o "$dir/rootfs/pause" "$src"
  strip "$dir/rootfs/pause"
  tar -C "$dir/rootfs" --owner=0 --group=0 --numeric-owner --mtime=@0 -cf "$dir/layer.tar" pause
  local layer diff size cfg cfgsize man mansize
  diff=$(sha256sum "$dir/layer.tar" | cut -d' ' -f1)
  gzip -n -c "$dir/layer.tar" > "$dir/layer.tar.gz"
  layer=$(sha256sum "$dir/layer.tar.gz" | cut -d' ' -f1)
  size=$(stat -c %s "$dir/layer.tar.gz")
  cp "$dir/layer.tar.gz" "$dir/oci/blobs/sha256/$layer"
  printf '{"architecture":"amd64","os":"linux","config":{"Entrypoint":["/pause"],"User":"65535:65535"},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' "$diff" > "$dir/config.json"
  cfg=$(sha256sum "$dir/config.json" | cut -d' ' -f1); cfgsize=$(stat -c %s "$dir/config.json")
  cp "$dir/config.json" "$dir/oci/blobs/sha256/$cfg"
  printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:%s","size":%s}]}' \
    "$cfg" "$cfgsize" "$layer" "$size" > "$dir/manifest.json"
  man=$(sha256sum "$dir/manifest.json" | cut -d' ' -f1); mansize=$(stat -c %s "$dir/manifest.json")
  cp "$dir/manifest.json" "$dir/oci/blobs/sha256/$man"
  printf '{"imageLayoutVersion":"1.0.0"}' > "$dir/oci/oci-layout"
  printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"platform":{"architecture":"amd64","os":"linux"},"annotations":{"io.containerd.image.name":"%s","org.opencontainers.image.ref.name":"3.10.1"}}]}' \
    "$man" "$mansize" "$PAUSE_IMAGE" > "$dir/oci/index.json"
  tar -C "$dir/oci" -cf "$dir/pause.tar" oci-layout index.json blobs
  ctr --address "$SOCK" -n k8s.io images import "$dir/pause.tar" >/dev/null
  ctr --address "$SOCK" -n k8s.io images label "$PAUSE_IMAGE" io.cri-containerd.pinned=pinned >/dev/null
}

# Starts a process inside the namespace, detached, its output in $STATE/logs/NAME.log.
start() {
  local name=$1; shift
  setsid nsenter --net="$NETNS" "$@" > "$STATE/logs/$name.log" 2>&1 < /dev/null &
  echo $! > "$RUN/$name.pid"
}

wait_for() {
  local what=$1 limit=$2 log=$3; shift 3
  local began=$SECONDS next=$((SECONDS + 10))
  until "$@" >/dev/null 2>&1; do
    if [ $((SECONDS - began)) -ge "$limit" ]; then
      log "$what: not within ${limit}s; the end of $log:"
      tail -n 30 "$STATE/logs/$log.log" >&2 || true
      exit 1
    fi
    if [ -n "$log" ] && [ -f "$RUN/$log.pid" ] && ! kill -0 "$(cat "$RUN/$log.pid")" 2>/dev/null; then
      log "$log exited before $what; the end of its log:"
      tail -n 30 "$STATE/logs/$log.log" >&2 || true
      exit 1
    fi
    [ $SECONDS -ge $next ] && { log "waiting for $what ($((SECONDS - began))s)"; next=$((SECONDS + 10)); }
    sleep 0.5
  done
  log "$what ($((SECONDS - began))s)"
}

up() {
  local bin=$1
  for c in kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl; do
    [ -x "$bin/$c" ] || die "$bin/$c is missing: run .ci/kube-build.sh"
  done
  for c in containerd etcd runc iptables-restore nsenter openssl gcc; do
    command -v "$c" >/dev/null || die "$c is missing: run .ci/kube-setup.sh"
  done
  local pause_src
  pause_src=$(ls -d "$(/usr/local/go/bin/go env GOMODCACHE 2>/dev/null || echo /root/go/pkg/mod)"/k8s.io/kubernetes@"$("$bin/kubectl" version --client -o json | grep -o '"gitVersion": *"[^"]*"' | grep -o 'v[0-9.]*')"/build/pause/linux/pause.c 2>/dev/null | head -n1)
  [ -f "$pause_src" ] || die "Kubernetes' build/pause/linux/pause.c is not in the module cache: run .ci/kube-build.sh"
  if ip route show | grep -qE "^(10\.97\.0\.|10\.244\.0\.|$NODE_IP)" && ! ip link show "$HOST_VETH" >/dev/null 2>&1; then
    die "the root namespace already routes 10.97.0.0/24, 10.244.0.0/24 or $NODE_IP (not through $HOST_VETH): the suite needs them"
  fi
  down
  mkdir -p "$STATE/logs" "$STATE/cni" "$RUN" "$STATE/kubelet" "$STATE/pod-logs"
  pki
  network
  log "network namespace $NS: node $NODE_IP (on lo), pods $POD_CIDR on $BRIDGE, services $SERVICE_CIDR; load client at $HOST_IP"

  cat > "$STATE/cni/10-bridge.conflist" <<EOF
{ "cniVersion": "1.0.0", "name": "fgk", "plugins": [
  { "type": "bridge", "bridge": "$BRIDGE", "isGateway": true, "ipMasq": false, "hairpinMode": true,
    "ipam": { "type": "host-local", "ranges": [[{ "subnet": "$POD_CIDR", "gateway": "$POD_GW" }]], "dataDir": "$STATE/cni/ipam" } },
  { "type": "portmap", "capabilities": { "portMappings": true } } ] }
EOF
  cat > "$STATE/containerd.toml" <<EOF
version = 2
root = "$STATE/containerd"
state = "$RUN/containerd"
[grpc]
  address = "$SOCK"
[ttrpc]
  address = "$RUN/containerd-ttrpc.sock"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_IMAGE"
  # CAP_SYS_RESOURCE is not in this VM's bounding set: a negative oom_score_adj (the pause container's -998) fails in runc.
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  enable_selinux = false
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        BinaryName = "$(command -v runc)"
        Root = "$RUNC_ROOT"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$STATE/cni"
EOF
  start containerd containerd --config "$STATE/containerd.toml"
  start etcd etcd --name fgk --data-dir "$STATE/etcd" --listen-client-urls http://127.0.0.1:2379 \
    --advertise-client-urls http://127.0.0.1:2379 --listen-peer-urls http://127.0.0.1:2380 \
    --initial-advertise-peer-urls http://127.0.0.1:2380 --initial-cluster fgk=http://127.0.0.1:2380 \
    --listen-metrics-urls http://127.0.0.1:2381 --quota-backend-bytes 1073741824
  local p=$STATE/pki
  start kube-apiserver "$bin/kube-apiserver" --etcd-servers http://127.0.0.1:2379 \
    --bind-address 0.0.0.0 --advertise-address "$NODE_IP" --secure-port 6443 \
    --tls-cert-file "$p/apiserver.crt" --tls-private-key-file "$p/apiserver.key" --client-ca-file "$p/ca.crt" \
    --token-auth-file "$p/tokens.csv" --authorization-mode Node,RBAC \
    --service-cluster-ip-range "$SERVICE_CIDR" --service-account-issuer https://kubernetes.default.svc \
    --service-account-key-file "$p/sa.pub" --service-account-signing-key-file "$p/sa.key" \
    --kubelet-preferred-address-types InternalIP --allow-privileged=true --profiling=false
  wait_for "kube-apiserver ready" 120 kube-apiserver "$bin/kubectl" --kubeconfig "$STATE/kubeconfig" get --raw /readyz
  start kube-controller-manager "$bin/kube-controller-manager" --kubeconfig "$STATE/kubeconfig" \
    --authentication-kubeconfig "$STATE/kubeconfig" --authorization-kubeconfig "$STATE/kubeconfig" \
    --service-account-private-key-file "$p/sa.key" --root-ca-file "$p/ca.crt" --leader-elect=false \
    --bind-address 127.0.0.1 --cluster-cidr 10.244.0.0/16 --service-cluster-ip-range "$SERVICE_CIDR" --profiling=false
  start kube-scheduler "$bin/kube-scheduler" --kubeconfig "$STATE/kubeconfig" \
    --authentication-kubeconfig "$STATE/kubeconfig" --authorization-kubeconfig "$STATE/kubeconfig" \
    --leader-elect=false --bind-address 127.0.0.1 --profiling=false
  wait_for "containerd answering" 60 containerd ctr --address "$SOCK" version
  pause_image "$pause_src"
  log "pause image built from $pause_src and imported as $PAUSE_IMAGE"

  cat > "$STATE/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
# This VM: cgroup v1 (allowed from 1.35 only with failCgroupV1: false), no swap accounting, cgroupfs.
failCgroupV1: false
failSwapOn: false
cgroupDriver: cgroupfs
cgroupsPerQOS: false
enforceNodeAllocatable: []
address: $NODE_IP
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
authentication:
  anonymous: { enabled: true }
  webhook: { enabled: false }
authorization: { mode: AlwaysAllow }
containerRuntimeEndpoint: unix://$SOCK
podLogsDir: $STATE/pod-logs
evictionHard: { memory.available: "1%", nodefs.available: "1%", nodefs.inodesFree: "1%", imagefs.available: "1%" }
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
serializeImagePulls: false
resolvConf: /etc/resolv.conf
EOF
  start kubelet "$bin/kubelet" --config "$STATE/kubelet.yaml" --kubeconfig "$STATE/kubeconfig" \
    --root-dir "$STATE/kubelet" --hostname-override "$NODE" --node-ip "$NODE_IP"
  start kube-proxy "$bin/kube-proxy" --kubeconfig "$STATE/kubeconfig" --proxy-mode iptables \
    --hostname-override "$NODE" --cluster-cidr 10.244.0.0/16 --conntrack-max-per-core 0 \
    --metrics-bind-address 127.0.0.1:10249 --healthz-bind-address 127.0.0.1:10256 --iptables-localhost-nodeports=false
  wait_for "node $NODE Ready" 180 kubelet "$bin/kubectl" --kubeconfig "$STATE/kubeconfig" wait --for=condition=Ready "node/$NODE" --timeout=2s
  # The pod network is this bridge: tell the node (no node IPAM controller runs with a fixed range).
  "$bin/kubectl" --kubeconfig "$STATE/kubeconfig" patch node "$NODE" -p "{\"spec\":{\"podCIDR\":\"$POD_CIDR\",\"podCIDRs\":[\"$POD_CIDR\"]}}" >/dev/null 2>&1 || true
  wait_for "default ServiceAccount" 60 kube-controller-manager "$bin/kubectl" --kubeconfig "$STATE/kubeconfig" get serviceaccount default
  cat <<EOF
KUBECONFIG=$STATE/kubeconfig
KUBECTL=$bin/kubectl
NETNS=$NS
NETNS_PATH=$NETNS
NODE=$NODE
NODE_IP=$NODE_IP
HOST_IP=$HOST_IP
PEER_IP=$PEER_IP
STATE=$STATE
CONTAINERD_SOCK=$SOCK
EOF
}

import_image() {
  ctr --address "$SOCK" -n k8s.io images import "$1" >&2
}

case "${1:-}" in
  up) [ $# -eq 2 ] || die "usage: $0 up BIN_DIR"; up "$2" ;;
  down) down; log "down: nothing of the cluster is left" ;;
  import) [ $# -eq 2 ] || die "usage: $0 import TAR"; import_image "$2" ;;
  *) die "usage: $0 up BIN_DIR | down | import TAR" ;;
esac
