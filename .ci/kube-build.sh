#!/usr/bin/env bash
# Builds Kubernetes' server binaries and kubectl from the Go module proxy, through the wrapper module in
# .ci/kube/ (go.mod requires k8s.io/kubernetes and replaces each staging module by its published v0.Y.Z;
# go.sum pins every module). The binaries are cached per version outside the clone, in
# $KUBE_CACHE/vX.Y.Z/bin (default /var/cache/fastify-graceful-k8s/kube), so a second run skips the build.
# Progress goes to stderr; stdout gets one line, the directory of the binaries. Needs Go >= 1.25
# (/usr/local/go/bin or PATH). A cold build's time is written to $KUBE_CACHE/vX.Y.Z/build.txt.
set -euo pipefail
exec 3>&1 1>&2
cd "$(dirname "${BASH_SOURCE[0]}")/kube"
KUBE_VERSION=v1.35.4
cache=${KUBE_CACHE:-/var/cache/fastify-graceful-k8s/kube}/$KUBE_VERSION
bin=$cache/bin
commands=(kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl)
export PATH=/usr/local/go/bin:$PATH GOTOOLCHAIN=local GOFLAGS=-mod=readonly CGO_ENABLED=0

if ! command -v go >/dev/null; then
  echo "kube-build: no Go toolchain (looked in /usr/local/go/bin and PATH); install Go >= 1.25" >&2
  exit 2
fi
grep -q "^require k8s.io/kubernetes $KUBE_VERSION\$" go.mod || {
  echo "kube-build: .ci/kube/go.mod does not require k8s.io/kubernetes $KUBE_VERSION; keep them on one release" >&2
  exit 2
}

complete=1
for c in "${commands[@]}"; do [ -x "$bin/$c" ] || complete=0; done
if [ "$complete" = 1 ] && [ "$("$bin/kubectl" version --client -o json 2>/dev/null | grep -o '"gitVersion": *"[^"]*"' | grep -o 'v[0-9.]*')" = "$KUBE_VERSION" ]; then
  echo "kube-build: Kubernetes $KUBE_VERSION cached in $bin ($(cat "$cache/build.txt" 2>/dev/null || echo 'build time not recorded'))"
  echo "$bin" >&3
  exit 0
fi

minor=$(echo "$KUBE_VERSION" | cut -d. -f2)
now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ldflags+=" -X $pkg.gitVersion=$KUBE_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
  ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=$now"
done
mkdir -p "$cache"
tmp=$(mktemp -d "$cache/build.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
echo "kube-build: downloading the modules of Kubernetes $KUBE_VERSION (go.sum pinned)"
go mod download
echo "kube-build: building ${commands[*]} (a cold build takes tens of minutes on 2 cores; go's -x output is not shown)"
started=$SECONDS
go build -trimpath -ldflags "$ldflags" -o "$tmp/" $(printf 'k8s.io/kubernetes/cmd/%s ' "${commands[@]}") &
build=$!
while kill -0 "$build" 2>/dev/null; do
  sleep 60 & wait $! || true
  kill -0 "$build" 2>/dev/null && echo "kube-build: still building ($((SECONDS - started))s)"
done
wait "$build"
echo "kube-build: built in $((SECONDS - started))s"
rm -rf "$bin"
chmod 755 "$tmp"
mv "$tmp" "$bin"
trap - EXIT
echo "cold build: $((SECONDS - started)) s on $(nproc) cores with $(go version | cut -d' ' -f3), $(date -u +%Y-%m-%d)" > "$cache/build.txt"
"$bin/kubectl" version --client
echo "$bin" >&3
