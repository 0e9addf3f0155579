#!/usr/bin/env bash
# Builds the control-plane binaries envtest and `make run` need (kube-apiserver,
# etcd, kubectl) from Go sources through the module proxy, into
# bin/k8s/<version>/. There is no prebuilt download on our machines; the build
# takes about five minutes the first time and is a no-op once the binaries exist.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
version=${K8S_VERSION:-1.37.2}
out="$root/bin/k8s/$version"
minor=${version#*.}; minor=${minor%%.*}

if [[ -x "$out/kube-apiserver" && -x "$out/etcd" && -x "$out/kubectl" ]]; then
  exit 0
fi
mkdir -p "$out"

# The version the binaries report, so `kubectl version` and /version tell the truth.
pkg=k8s.io/component-base/version
ldflags="-s -w -X $pkg.gitVersion=v$version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean"

build() { # module-dir output package
  local dir=$1 name=$2 pkg=$3
  [[ -x "$out/$name" ]] && return 0
  echo "building $name into $out (first build takes a few minutes)" >&2
  (cd "$root/hack/controlplane/$dir" && CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o "$out/$name.tmp" "$pkg")
  mv "$out/$name.tmp" "$out/$name"
}

build kubernetes kube-apiserver k8s.io/kubernetes/cmd/kube-apiserver
build kubernetes kubectl k8s.io/kubernetes/cmd/kubectl
build etcd etcd go.etcd.io/etcd/server/v3
