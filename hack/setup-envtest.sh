#!/usr/bin/env bash
# Builds the control-plane binaries that envtest needs (etcd, kube-apiserver) and kubectl from Go
# modules, because no download site is reachable from our machines or CI. The result lands in the
# folder setup-envtest itself uses, so other tools find it too, and a second run is a no-op.
#
# Usage: hack/setup-envtest.sh            builds what is missing, prints the assets folder last
#        KUBEBUILDER_ASSETS=/dir hack/...  uses /dir as is when it already holds the binaries
#
# Why a wrapper module: k8s.io/kubernetes replaces its staging modules (k8s.io/api, ...) with local
# folders, which `go install pkg@version` refuses. A throwaway module that replaces each of them by
# its published tag builds the same code.
set -euo pipefail

K8S_VERSION="${ENVTEST_K8S_VERSION:-1.37.2}"
ETCD_VERSION="${ENVTEST_ETCD_VERSION:-3.6.16}"
STAGING_VERSION="v0.${K8S_VERSION#1.}"
ASSETS_ROOT="${ENVTEST_ASSETS_ROOT:-$HOME/.local/share/kubebuilder-envtest/k8s}"
ASSETS_DIR="$ASSETS_ROOT/${K8S_VERSION}-linux-amd64"
WORK_ROOT="${ENVTEST_BUILD_DIR:-$HOME/.cache/dlcsync/envtest-build}"
GO="${GO:-go}"

log() { printf '[setup-envtest] %s\n' "$*" >&2; }
die() { printf '[setup-envtest] ERROR: %s\n' "$*" >&2; exit 1; }

have_all() {
  local dir="$1"
  [[ -x "$dir/etcd" && -x "$dir/kube-apiserver" && -x "$dir/kubectl" ]]
}

if [[ -n "${KUBEBUILDER_ASSETS:-}" ]] && [[ -x "$KUBEBUILDER_ASSETS/etcd" && -x "$KUBEBUILDER_ASSETS/kube-apiserver" ]]; then
  log "using KUBEBUILDER_ASSETS=$KUBEBUILDER_ASSETS as provided"
  echo "$KUBEBUILDER_ASSETS"
  exit 0
fi

if have_all "$ASSETS_DIR"; then
  log "control plane ${K8S_VERSION} already present in $ASSETS_DIR"
  echo "$ASSETS_DIR"
  exit 0
fi

command -v "$GO" >/dev/null || die "go is not on PATH"
mkdir -p "$ASSETS_DIR" "$WORK_ROOT"
export CGO_ENABLED=0 GOFLAGS="-buildvcs=false -mod=mod" GOTOOLCHAIN="${GOTOOLCHAIN:-local}"

# timed NAME CMD... runs CMD and reports how long it took, or fails naming the step.
timed() {
  local name="$1"; shift
  local start=$SECONDS
  log "$name ..."
  if ! "$@"; then
    die "$name failed after $((SECONDS - start))s (see the output above)"
  fi
  log "$name done in $((SECONDS - start))s"
}

build_etcd() {
  local dir="$WORK_ROOT/etcd-$ETCD_VERSION"
  mkdir -p "$dir"
  (
    cd "$dir"
    [[ -f go.mod ]] || "$GO" mod init envtest.local/etcd >/dev/null 2>&1
    "$GO" mod edit -require "go.etcd.io/etcd/server/v3@v$ETCD_VERSION"
    "$GO" mod download go.etcd.io/etcd/server/v3
    # The server module's root package is etcd's main package.
    "$GO" build -trimpath -o "$ASSETS_DIR/etcd.tmp" go.etcd.io/etcd/server/v3
    mv "$ASSETS_DIR/etcd.tmp" "$ASSETS_DIR/etcd"
  )
}

build_kube() {
  local dir="$WORK_ROOT/kubernetes-$K8S_VERSION"
  mkdir -p "$dir"
  (
    cd "$dir"
    [[ -f go.mod ]] || "$GO" mod init envtest.local/kubernetes >/dev/null 2>&1
    "$GO" mod edit -require "k8s.io/kubernetes@v$K8S_VERSION"
    local kmod
    kmod=$("$GO" mod download -json "k8s.io/kubernetes@v$K8S_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
    [[ -f "$kmod" ]] || die "could not read the go.mod of k8s.io/kubernetes@v$K8S_VERSION"
    # Every `k8s.io/foo => ./staging/src/k8s.io/foo` becomes `k8s.io/foo => k8s.io/foo v0.x.y`.
    local staged
    staged=$(sed -n 's#^[[:space:]]*\(k8s.io/[^[:space:]]*\)[[:space:]]*=>[[:space:]]*\./staging/.*#\1#p' "$kmod")
    [[ -n "$staged" ]] || die "no staging replacements found in $kmod"
    local m
    for m in $staged; do
      "$GO" mod edit -replace "$m=$m@$STAGING_VERSION"
    done
    local minor="${K8S_VERSION#1.}"; minor="${minor%%.*}"
    local ldflags="-s -w -X k8s.io/component-base/version.gitVersion=v$K8S_VERSION -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor -X k8s.io/component-base/version.gitTreeState=clean"
    mkdir -p out
    "$GO" build -trimpath -ldflags "$ldflags" -o out/ k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kubectl
    mv out/kube-apiserver "$ASSETS_DIR/kube-apiserver"
    mv out/kubectl "$ASSETS_DIR/kubectl"
  )
}

total_start=$SECONDS
log "building control plane ${K8S_VERSION} (etcd ${ETCD_VERSION}) into $ASSETS_DIR; the first build takes about 20 minutes on 2 cores"
[[ -x "$ASSETS_DIR/etcd" ]] || timed "building etcd v$ETCD_VERSION" build_etcd
if [[ ! -x "$ASSETS_DIR/kube-apiserver" || ! -x "$ASSETS_DIR/kubectl" ]]; then
  timed "building kube-apiserver and kubectl v$K8S_VERSION" build_kube
fi
# Note: no `| head` here: with pipefail, the SIGPIPE it can send etcd fails the whole script.
etcd_version=$("$ASSETS_DIR/etcd" --version)
printf '%s\n' "${etcd_version%%$'\n'*}" >&2
"$ASSETS_DIR/kube-apiserver" --version >&2
log "control plane ready in $((SECONDS - total_start))s"
echo "$ASSETS_DIR"
