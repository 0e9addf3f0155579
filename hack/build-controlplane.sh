#!/usr/bin/env bash
# Builds the control-plane binaries envtest and `make run` need (kube-apiserver,
# etcd, kubectl) from Go sources through the module proxy, into
# $KUBEBUILDER_ASSETS (the Makefile's bin/k8s/<version>/). There is no prebuilt
# download on our machines; the build takes 10-15 minutes on 2 busy cores the
# first time (kube-apiserver is most of it) and is a no-op once the binaries
# exist.
#
# A kubectl on PATH within one minor of <version> (kubectl's supported version
# skew) is used instead of building one: <assets>/kubectl is then a symlink to
# it, so whatever runs <assets>/kubectl runs it. Without one, or with one too
# old or too new, kubectl is built as the rest.
#
# Everything it says goes to stderr; stdout stays empty.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
version=${K8S_VERSION:-1.37.2}
out=${KUBEBUILDER_ASSETS:-$root/bin/k8s/$version}
major=${version%%.*}
minor=${version#*.}; minor=${minor%%.*}

# client_version KUBECTL prints the version the kubectl at KUBECTL reports
# (gitVersion, such as v1.37.2 or v1.36.4-gke.100), or fails.
client_version() {
  local v
  v=$("$1" version --client -o json 2>/dev/null | sed -n 's/^ *"gitVersion": *"\(v[0-9][^"]*\)".*/\1/p') || return 1
  [[ -n $v ]] && echo "$v"
}

# within_skew VERSION: whether VERSION (v1.36.4...) is within one minor of $version.
within_skew() {
  local maj=${1#v} min=${1#v*.}
  maj=${maj%%.*} min=${min%%.*}
  [[ $maj == "$major" && $min =~ ^[0-9]+$ ]] && (( 10#$min >= minor - 1 && 10#$min <= minor + 1 ))
}

# A linked kubectl is checked on every run: the one on PATH may have been
# upgraded or removed since.
if [[ -L $out/kubectl ]]; then
  v=$(client_version "$out/kubectl") || v=""
  if [[ -z $v ]] || ! within_skew "$v"; then
    echo "$out/kubectl links to $(readlink "$out/kubectl"), which is ${v:-gone or not kubectl} now, not within one minor of v$version: choosing again" >&2
    rm "$out/kubectl"
  fi
fi
if [[ -x $out/kube-apiserver && -x $out/etcd && -x $out/kubectl ]]; then
  exit 0
fi
mkdir -p "$out"

if [[ ! -x $out/kubectl ]]; then
  if ! path=$(command -v kubectl); then
    echo "no kubectl on PATH: building kubectl v$version" >&2
  elif ! v=$(client_version "$path"); then
    echo "$path does not report its version (kubectl version --client -o json): building kubectl v$version" >&2
  elif ! within_skew "$v"; then
    echo "kubectl $v ($path) is not within one minor of v$version: building kubectl v$version" >&2
  else
    [[ $path == /* ]] || path=$PWD/$path
    ln -sfn "$path" "$out/kubectl"
    echo "using kubectl $v from $path (linked as $out/kubectl)" >&2
  fi
fi

# The version the binaries report, so `kubectl version` and /version tell the truth.
pkg=k8s.io/component-base/version
ldflags="-s -w -X $pkg.gitVersion=v$version -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean"

elapsed() { printf '%dm%02ds' $(($1 / 60)) $(($1 % 60)); }

ticker=""
trap '[[ -z $ticker ]] || kill "$ticker" 2>/dev/null' EXIT
started=$SECONDS

build() { # module-dir output package estimate
  local dir=$1 name=$2 pkg=$3 estimate=$4 start=$SECONDS
  [[ -x $out/$name ]] && return 0
  echo "building $name v$version from source into $out (first run only; $estimate)" >&2
  # A line every 30 s, so that a first run is never a silent terminal. sleep
  # is kept off stdout and stderr: it outlives the loop by up to 30 s, and
  # would hold the pipes of whoever reads them.
  while sleep 30 &>/dev/null; do
    echo "building $name v$version from source: $(elapsed $((SECONDS - start))) so far (first run only; $estimate)" >&2
  done &
  ticker=$!
  (cd "$root/hack/controlplane/$dir" && CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o "$out/$name.tmp" "$pkg")
  kill "$ticker"
  ticker=""
  mv "$out/$name.tmp" "$out/$name"
  echo "built $name v$version in $(elapsed $((SECONDS - start)))" >&2
}

build kubernetes kube-apiserver k8s.io/kubernetes/cmd/kube-apiserver "about 5-15 minutes on 2 cores, depending on how busy they are"
build kubernetes kubectl k8s.io/kubernetes/cmd/kubectl "under a minute after kube-apiserver"
build etcd etcd go.etcd.io/etcd/server/v3 "about 1-2 minutes"
echo "control plane v$version ready in $out after $(elapsed $((SECONDS - started))), reused from now on" >&2
