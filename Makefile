# dlcsync Makefile, in the shape of the kubebuilder go/v4 scaffold.

# Version stamped into every binary, the image labels and the release; expanded once, so that a
# recipe that touches the tree cannot turn it into "-dirty" half way.
ifeq ($(origin VERSION), undefined)
VERSION := $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
endif
# Image reference the installers name and `make image-push` pushes to.
IMG ?= ghcr.io/dlcsync/dlcsync:$(VERSION)
# Creation time of the image and its files: the HEAD commit's, so that a rebuild has the same digest.
SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null || echo 0)
export SOURCE_DATE_EPOCH
IMAGE_PLATFORMS ?= linux/amd64,linux/arm64

# Get the currently used golang install path (in GOPATH/bin, unless GOBIN is set)
ifeq (,$(shell go env GOBIN))
GOBIN=$(shell go env GOPATH)/bin
else
GOBIN=$(shell go env GOBIN)
endif

# Setting SHELL to bash allows bash commands to be executed by recipes.
SHELL = /usr/bin/env bash -o pipefail
.SHELLFLAGS = -ec

# Our CI and some developer machines set GOFLAGS=-mod=... or a toolchain; pin what we rely on.
export GOTOOLCHAIN ?= local

.PHONY: all
all: build

##@ General

.PHONY: help
help: ## Display this help.
	@awk 'BEGIN {FS = ":.*##"; printf "\nUsage:\n  make \033[36m<target>\033[0m\n"} /^[a-zA-Z_0-9-]+:.*?##/ { printf "  \033[36m%-18s\033[0m %s\n", $$1, $$2 } /^##@/ { printf "\n\033[1m%s\033[0m\n", substr($$0, 5) } ' $(MAKEFILE_LIST)

##@ Development

.PHONY: manifests
manifests: controller-gen ## Generate CRDs and the RBAC ClusterRole from the markers in the code.
	"$(CONTROLLER_GEN)" rbac:roleName=manager-role crd:allowDangerousTypes=true paths="./..." output:crd:artifacts:config=config/crd/bases
	@# The Helm chart ships the same CRDs, manager rules and snapshot writers policy.
	cp config/crd/bases/*.yaml charts/dlcsync/files/crds/
	cp config/rbac/role.yaml charts/dlcsync/files/manager-role.yaml
	cp config/admission/snapshot_writers_policy.yaml charts/dlcsync/files/snapshot-writers-policy.yaml
	cp docs/recipes/prometheusrule.yaml charts/dlcsync/files/prometheusrule.yaml
	cp docs/recipes/grafana-dashboard.json charts/dlcsync/files/grafana-dashboard.json
	@# The Prometheus Operator CRDs test/deploy creates the chart's monitoring objects against,
	@# generated from the API module go.mod names (the project generates its own with controller-gen).
	rm -rf $(MONITORING_CRDS) && mkdir -p $(MONITORING_CRDS)/all
	"$(CONTROLLER_GEN)" crd:crdVersions=v1,maxDescLen=0 paths=github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1 \
	  output:crd:dir=$(MONITORING_CRDS)/all
	mv $(MONITORING_CRDS)/all/monitoring.coreos.com_servicemonitors.yaml $(MONITORING_CRDS)/all/monitoring.coreos.com_prometheusrules.yaml \
	  $(MONITORING_CRDS)/ && rm -rf $(MONITORING_CRDS)/all

.PHONY: docs
docs: crd-ref-docs helm-docs ## Write docs/reference.md (the API reference) from api/v1alpha1 and the chart's README from its values.yaml.
	"$(CRD_REF_DOCS)" --source-path=./api/v1alpha1 --config=hack/crd-ref-docs.yaml --renderer=markdown \
	  --output-path=docs/reference.md >/dev/null
	@# --documentation-strict-mode is not used: it also demands comments on every parent key. Every
	@# leaf value has a "# --" comment instead; TestEveryChartValueIsDocumented checks it.
	"$(HELM_DOCS)" --chart-search-root charts --sort-values-order file --skip-version-footer --log-level warning

.PHONY: generate
generate: controller-gen ## Generate DeepCopy methods.
	"$(CONTROLLER_GEN)" object:headerFile="hack/boilerplate.go.txt" paths="./..."

# Files that `make manifests generate` writes; they are committed and must be current.
MONITORING_CRDS = test/deploy/testdata/prometheus-operator-crds
GENERATED_FILES = config/crd/bases config/rbac/role.yaml api/v1alpha1/zz_generated.deepcopy.go \
	charts/dlcsync/files charts/dlcsync/README.md docs/reference.md $(MONITORING_CRDS)

.PHONY: verify-generated
verify-generated: controller-gen crd-ref-docs helm-docs ## Fail when committed generated files are stale (regenerates them).
	@before=$$(find $(GENERATED_FILES) -type f | sort | xargs sha256sum); \
	$(MAKE) --no-print-directory manifests generate docs >/dev/null; \
	after=$$(find $(GENERATED_FILES) -type f | sort | xargs sha256sum); \
	if [ "$$before" != "$$after" ]; then \
	  echo "Generated files were stale and have been regenerated; review and commit them:"; \
	  diff <(echo "$$before") <(echo "$$after") || true; exit 1; \
	fi

.PHONY: fmt
fmt: ## Run go fmt against code.
	go fmt ./...

.PHONY: vet
vet: ## Run go vet against code.
	go vet ./...

# Note: lint before the tests, so that CI (.ci/run is `make test`) fails on a finding, and soon.
.PHONY: test
# The manager binary is built once here for every package that runs it (test/memory, test/monitoring,
# test/identity), instead of once per package.
test: verify-generated fmt vet lint setup-envtest helm ## Run lint and every test (unit and envtest) against a real kube-apiserver and etcd.
	go build -o bin/manager-for-tests ./cmd/manager
	KUBEBUILDER_ASSETS="$$($(ENVTEST_SETUP) 2>/dev/null)" HELM="$(HELM)" DLCSYNC_TEST_MANAGER_BINARY="$(CURDIR)/bin/manager-for-tests" \
	  go test ./... -count=1 -timeout 20m $(TEST_ARGS)

# The quick look: one size, one run, a small fleet.
BENCH_QUICK_ARGS = --sizes 1000 --runs 1 --baseline-runs 1 --fleet small

.PHONY: bench-quick
bench-quick: ## A 5-minute look at make bench's figures (writes docs/benchmarks.md too; do not commit it).
	$(MAKE) --no-print-directory bench BENCH_ARGS="$(BENCH_QUICK_ARGS)"

.PHONY: bench
bench: setup-envtest ## Run the benchmarks and write docs/benchmarks.md (speed and memory targets live here, not in tests).
	go test ./internal/... -run '^$$' -bench . -benchmem -count 1
	go build -o bin/manager ./cmd/manager
	go build -o bin/bench ./cmd/bench
	KUBEBUILDER_ASSETS="$$($(ENVTEST_SETUP) 2>/dev/null)" bin/bench --manager bin/manager --out docs/benchmarks.md $(BENCH_ARGS)

.PHONY: lint
lint: golangci-lint ## Run golangci-lint, with the Kube API Linter on api/ (make test runs it).
	"$(GOLANGCI_LINT)" run

.PHONY: lint-fix
lint-fix: golangci-lint ## Run golangci-lint and apply its fixes.
	"$(GOLANGCI_LINT)" run --fix

##@ Demo

.PHONY: demo
demo: setup-envtest ## Run dlcsync locally on a simulated PAI-DLC: make demo [DEMO_ARGS="--for 90s"].
	@echo "==> Building the demo (manager, simulator, control plane driver)"; start=$$(date +%s); \
	  go build -o bin/demo ./cmd/demo; echo "    done in $$(( $$(date +%s) - start ))s"
	@KUBEBUILDER_ASSETS="$$($(ENVTEST_SETUP) 2>/dev/null)" bin/demo $(DEMO_ARGS)

##@ Build

LDFLAGS = -X github.com/dlcsync/dlcsync/internal/version.Version=$(VERSION)

.PHONY: build
build: manifests generate fmt vet ## Build the manager and the simulator into bin/.
	go build -ldflags "$(LDFLAGS)" -o bin/manager ./cmd/manager
	go build -ldflags "$(LDFLAGS)" -o bin/dlcsim ./cmd/dlcsim

.PHONY: build-plugin
build-plugin: ## Build the kubectl plugin into bin/kubectl-dlcsync, its completion helper beside it (put bin/ on PATH for `kubectl dlcsync`).
	go build -ldflags "$(LDFLAGS)" -o bin/kubectl-dlcsync ./cmd/kubectl-dlcsync
	@# kubectl 1.26+ completes `kubectl dlcsync <TAB>` through kubectl_complete-dlcsync on the PATH.
	install -m 0755 plugins/kubectl_complete-dlcsync bin/kubectl_complete-dlcsync

.PHONY: run
run: manifests generate fmt vet ## Run the manager from your host against the current kubeconfig.
	go run -ldflags "$(LDFLAGS)" ./cmd/manager $(RUN_ARGS)

# hack/image: the static manager per platform on an empty base, written as an OCI layout (no Docker).
IMAGE_TOOL = go run ./hack/image --version "$(VERSION)" --platforms "$(IMAGE_PLATFORMS)"

.PHONY: image
image: ## Build the multi-arch manager image without Docker into dist/image (an OCI layout); prints its digest.
	$(IMAGE_TOOL) --out dist/image

.PHONY: image-push
image-push: ## Build the image and push its index: make image-push IMG=registry.example.com/dlcsync:v1.2.3.
	$(IMAGE_TOOL) --out dist/image --push "$(IMG)"

.PHONY: build-installer
build-installer: manifests generate kustomize ## Write dist/install.yaml: CRDs and everything needed to deploy, naming IMG.
	@# Note: the image is set in a copy of config/, so that the committed kustomization never changes.
	mkdir -p dist
	tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && cp -r config "$$tmp/" && \
	  (cd "$$tmp/config/manager" && "$(KUSTOMIZE)" edit set image controller=${IMG}) && \
	  "$(KUSTOMIZE)" build "$$tmp/config/default" > dist/install.yaml

# The chart's version: VERSION when it is SemVer (v1.2.3 -> 1.2.3), else the one in Chart.yaml.
CHART_VERSION ?= $(shell v="$(VERSION)"; v="$${v#v}"; echo "$$v" | grep -Eq '^[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?$$' \
	&& echo "$$v" || sed -n 's/^version: *//p' charts/dlcsync/Chart.yaml)

# The kubectl plugin's platforms (krew's, and the template's: plugins/dlcsync.yaml).
PLUGIN_PLATFORMS ?= linux/amd64 linux/arm64 darwin/amd64 darwin/arm64 windows/amd64
# krew wants a vX.Y.Z spec.version: VERSION when it is one, else v0.0.0-<VERSION> (an untagged tree).
PLUGIN_VERSION ?= $(shell v="$(VERSION)"; echo "$$v" | grep -Eq '^v[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?$$' \
	&& echo "$$v" || echo "v0.0.0-$$v" | tr -c '0-9A-Za-z.\n-' '-')

.PHONY: release-plugin
release-plugin: ## Write dist/: a kubectl-dlcsync archive per platform and the krew manifest dist/dlcsync.yaml (validated by krew's validator).
	rm -rf dist/plugin dist/kubectl-dlcsync_*.tar.gz dist/dlcsync.yaml
	@# Static, path-free binaries: the same sources, toolchain and VERSION give the same bytes.
	for p in $(PLUGIN_PLATFORMS); do os=$${p%/*}; arch=$${p#*/}; ext=; [ "$$os" = windows ] && ext=.exe; \
	  CGO_ENABLED=0 GOOS=$$os GOARCH=$$arch go build -trimpath -ldflags "-s -w $(LDFLAGS)" \
	    -o "dist/plugin/$${os}_$${arch}/kubectl-dlcsync$$ext" ./cmd/kubectl-dlcsync || exit 1; done
	go run ./hack/krew-release --tag "$(PLUGIN_VERSION)" --template plugins/dlcsync.yaml --out dist \
	  --include plugins/kubectl_complete-dlcsync $(if $(wildcard LICENSE),--include LICENSE) dist/plugin/*
	rm -rf dist/plugin

.PHONY: release
release: build-installer helm release-plugin ## Write dist/: install.yaml, the packaged chart, the image (layout and tarball), its SBOMs, the plugin's archives and krew manifest, SHA256SUMS.
	rm -rf dist/image dist/sbom dist/*.tgz dist/*.oci.tar dist/SHA256SUMS dist/image.digest
	"$(HELM)" package charts/dlcsync --version "$(CHART_VERSION)" --app-version "$(VERSION)" --destination dist
	$(IMAGE_TOOL) --out dist/image --sbom-dir dist/sbom > dist/image.digest
	@# A tarball of the layout, for `crane push`/`skopeo copy oci-archive:` and the checksums.
	tar --sort=name --mtime="@$(SOURCE_DATE_EPOCH)" --owner=0 --group=0 --numeric-owner \
	  -C dist/image -cf "dist/dlcsync-image-$(VERSION).oci.tar" .
	cd dist && sha256sum install.yaml *.tgz *.oci.tar image.digest sbom/*.json kubectl-dlcsync_*.tar.gz dlcsync.yaml > SHA256SUMS
	@echo "Release $(VERSION) in dist/ (image $$(cat dist/image.digest)):"; cat dist/SHA256SUMS

##@ Deployment

ifndef ignore-not-found
  ignore-not-found = false
endif

.PHONY: install
install: manifests kustomize kubectl ## Install CRDs into the cluster of the current kubeconfig.
	"$(KUSTOMIZE)" build config/crd | "$(KUBECTL)" apply -f -

.PHONY: uninstall
uninstall: manifests kustomize kubectl ## Uninstall CRDs. ignore-not-found=true ignores missing resources.
	"$(KUSTOMIZE)" build config/crd | "$(KUBECTL)" delete --ignore-not-found=$(ignore-not-found) -f -

.PHONY: deploy
deploy: manifests kustomize kubectl ## Deploy the manager to the cluster of the current kubeconfig.
	cd config/manager && "$(KUSTOMIZE)" edit set image controller=${IMG}
	"$(KUSTOMIZE)" build config/default | "$(KUBECTL)" apply -f -

.PHONY: undeploy
undeploy: kustomize kubectl ## Undeploy the manager. ignore-not-found=true ignores missing resources.
	"$(KUSTOMIZE)" build config/default | "$(KUBECTL)" delete --ignore-not-found=$(ignore-not-found) -f -

##@ Dependencies

## Location to install dependencies to
LOCALBIN ?= $(shell pwd)/bin
$(LOCALBIN):
	mkdir -p "$(LOCALBIN)"

## Tool Binaries
CRD_REF_DOCS ?= $(LOCALBIN)/crd-ref-docs
HELM ?= $(LOCALBIN)/helm
HELM_DOCS ?= $(LOCALBIN)/helm-docs
KUSTOMIZE ?= $(LOCALBIN)/kustomize
CONTROLLER_GEN ?= $(LOCALBIN)/controller-gen
GOLANGCI_LINT ?= $(LOCALBIN)/golangci-lint
ENVTEST_SETUP ?= hack/setup-envtest.sh

## Tool Versions
CRD_REF_DOCS_VERSION ?= v0.3.0
HELM_VERSION ?= v3.22.0
HELM_DOCS_VERSION ?= v1.14.2
KUSTOMIZE_VERSION ?= v5.8.1
CONTROLLER_TOOLS_VERSION ?= v0.23.0
# golangci-lint and the Kube API Linter it is built with are pinned in hack/lint/go.mod (bump with
# `go -C hack/lint get <module>@<version> && go -C hack/lint mod tidy`); the binary's name carries both.
GOLANGCI_LINT_VERSION ?= $(shell awk '$$1 == "github.com/golangci/golangci-lint/v2" {print $$2}' hack/lint/go.mod)
KUBE_API_LINTER_VERSION ?= $(shell awk '$$1 == "sigs.k8s.io/kube-api-linter" {print $$2}' hack/lint/go.mod)
ENVTEST_K8S_VERSION ?= 1.37.2
export ENVTEST_K8S_VERSION

# kubectl: the one built beside the control plane (hack/setup-envtest.sh), unless KUBECTL is set.
KUBECTL ?= $(HOME)/.local/share/kubebuilder-envtest/k8s/$(ENVTEST_K8S_VERSION)-linux-amd64/kubectl

.PHONY: kustomize
kustomize: $(KUSTOMIZE) ## Download kustomize locally if necessary.
$(KUSTOMIZE): $(LOCALBIN)
	$(call go-install-tool,$(KUSTOMIZE),sigs.k8s.io/kustomize/kustomize/v5,$(KUSTOMIZE_VERSION))

.PHONY: helm-docs
helm-docs: $(HELM_DOCS) ## Download helm-docs locally if necessary.
$(HELM_DOCS): $(LOCALBIN)
	$(call go-install-tool,$(HELM_DOCS),github.com/norwoodj/helm-docs/cmd/helm-docs,$(HELM_DOCS_VERSION))

.PHONY: crd-ref-docs
crd-ref-docs: $(CRD_REF_DOCS) ## Download crd-ref-docs locally if necessary.
$(CRD_REF_DOCS): $(LOCALBIN)
	$(call go-install-tool,$(CRD_REF_DOCS),github.com/elastic/crd-ref-docs,$(CRD_REF_DOCS_VERSION))

.PHONY: helm
helm: $(HELM) ## Download helm locally if necessary.
$(HELM): $(LOCALBIN)
	$(call go-install-tool,$(HELM),helm.sh/helm/v3/cmd/helm,$(HELM_VERSION))

.PHONY: controller-gen
controller-gen: $(CONTROLLER_GEN) ## Download controller-gen locally if necessary.
$(CONTROLLER_GEN): $(LOCALBIN)
	$(call go-install-tool,$(CONTROLLER_GEN),sigs.k8s.io/controller-tools/cmd/controller-gen,$(CONTROLLER_TOOLS_VERSION))

.PHONY: setup-envtest
setup-envtest: ## Build kube-apiserver, etcd, kube-controller-manager (the garbage collector of the tests) and kubectl from Go modules into the setup-envtest folder (once).
	@$(ENVTEST_SETUP) >/dev/null

.PHONY: kubectl
kubectl: setup-envtest ## Build kubectl (with the control plane) if necessary.

.PHONY: golangci-lint
golangci-lint: $(LOCALBIN) ## Build golangci-lint with the Kube API Linter (hack/lint) locally if necessary.
	@# Note: what `golangci-lint custom` would build, built from the module proxy (see hack/lint/README.md).
	@# Checked at every run (not a file target), so that a version bump in hack/lint/go.mod rebuilds it.
	@bin="$(GOLANGCI_LINT)-$(GOLANGCI_LINT_VERSION)-kal-$(KUBE_API_LINTER_VERSION)"; \
	[ -f "$$bin" ] && [ "$$(readlink -- "$(GOLANGCI_LINT)" 2>/dev/null)" = "$$bin" ] || { \
	  set -e; echo "Building golangci-lint $(GOLANGCI_LINT_VERSION) with kube-api-linter $(KUBE_API_LINTER_VERSION)"; \
	  rm -f "$(GOLANGCI_LINT)"; \
	  go build -C hack/lint -ldflags "-s -w -X 'main.version=$(GOLANGCI_LINT_VERSION:v%=%)-kal-$(KUBE_API_LINTER_VERSION)'" -o "$$bin" . ; \
	}; \
	ln -sf "$$bin" "$(GOLANGCI_LINT)"

# go-install-tool will 'go install' any package with custom target and name of binary, if it doesn't exist
# $1 - target path with name of binary
# $2 - package url which can be installed
# $3 - specific version of package
define go-install-tool
@[ -f "$(1)-$(3)" ] && [ "$$(readlink -- "$(1)" 2>/dev/null)" = "$(1)-$(3)" ] || { \
set -e; \
package=$(2)@$(3) ;\
echo "Downloading $${package}" ;\
rm -f "$(1)" ;\
GOBIN="$(LOCALBIN)" go install $${package} ;\
mv "$(LOCALBIN)/$$(basename "$(1)")" "$(1)-$(3)" ;\
} ;\
ln -sf "$$(realpath "$(1)-$(3)")" "$(1)"
endef
