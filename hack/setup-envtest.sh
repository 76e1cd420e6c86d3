#!/usr/bin/env bash
# Builds the control-plane binaries that envtest needs (etcd, kube-apiserver), kube-controller-manager
# (the tests that watch the garbage collector run it beside envtest) and kubectl from Go modules,
# because no download site is reachable from our machines or CI. The result lands in the folder
# setup-envtest itself uses, so other tools find it too; a second run is a no-op and a folder that
# lacks one binary gets only that one built.
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

# The binaries built from k8s.io/kubernetes (etcd comes from its own module).
KUBE_BINARIES=(kube-apiserver kube-controller-manager kubectl)

have_all() {
  local dir="$1" b
  for b in etcd "${KUBE_BINARIES[@]}"; do
    [[ -x "$dir/$b" ]] || return 1
  done
}

if [[ -n "${KUBEBUILDER_ASSETS:-}" ]] && [[ -x "$KUBEBUILDER_ASSETS/etcd" && -x "$KUBEBUILDER_ASSETS/kube-apiserver" ]]; then
  log "using KUBEBUILDER_ASSETS=$KUBEBUILDER_ASSETS as provided"
  # Note: downloaded envtest archives carry no kube-controller-manager; only the garbage collection
  # tests need it, and they fail naming this script when it is missing.
  [[ -x "$KUBEBUILDER_ASSETS/kube-controller-manager" ]] ||
    log "warning: no kube-controller-manager in $KUBEBUILDER_ASSETS; the garbage collection tests need one"
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

# build_kube BINARY... builds the named k8s.io/kubernetes/cmd/ binaries in one go build, so the
# packages they share compile once.
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
    local b pkgs=()
    for b in "$@"; do pkgs+=("k8s.io/kubernetes/cmd/$b"); done
    "$GO" build -trimpath -ldflags "$ldflags" -o out/ "${pkgs[@]}"
    for b in "$@"; do
      mv "out/$b" "$ASSETS_DIR/$b"
      log "$b: $(du -h "$ASSETS_DIR/$b" | cut -f1)"
    done
  )
}

total_start=$SECONDS
log "building control plane ${K8S_VERSION} (etcd ${ETCD_VERSION}) into $ASSETS_DIR; the first build takes about 11 minutes on 2 cores, more on a busy machine"
[[ -x "$ASSETS_DIR/etcd" ]] || timed "building etcd v$ETCD_VERSION" build_etcd
missing=()
for b in "${KUBE_BINARIES[@]}"; do
  [[ -x "$ASSETS_DIR/$b" ]] || missing+=("$b")
done
if (( ${#missing[@]} > 0 )); then
  timed "building ${missing[*]} v$K8S_VERSION" build_kube "${missing[@]}"
fi
# Note: no `| head` here: with pipefail, the SIGPIPE it can send etcd fails the whole script.
etcd_version=$("$ASSETS_DIR/etcd" --version)
printf '%s\n' "${etcd_version%%$'\n'*}" >&2
"$ASSETS_DIR/kube-apiserver" --version >&2
"$ASSETS_DIR/kube-controller-manager" --version >&2
log "control plane ready in $((SECONDS - total_start))s"
echo "$ASSETS_DIR"
