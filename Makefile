# Waygate for Kubernetes. `make help` lists the targets.

K8S_VERSION ?= 1.37.2
ENVTEST_ASSETS := $(CURDIR)/bin/k8s/$(K8S_VERSION)
export KUBEBUILDER_ASSETS := $(ENVTEST_ASSETS)

CONTROLLER_GEN := go tool controller-gen
GOLANGCI_LINT_VERSION ?= v2.15.0
GOLANGCI_LINT := $(CURDIR)/bin/golangci-lint-$(GOLANGCI_LINT_VERSION)

.DEFAULT_GOAL := help

##@ Everyday

.PHONY: help
help: ## Show this help.
	@awk 'BEGIN {FS = ":.*##"} /^[a-zA-Z_-]+:.*##/ { printf "  %-18s %s\n", $$1, $$2 } /^##@/ { printf "\n%s\n", substr($$0, 5) }' $(MAKEFILE_LIST)

.PHONY: run
run: envtest-assets build ## Start a local control plane with the operator, the gate and samples (Ctrl-C stops it).
	go build -o bin/waygate-local ./hack/local
	@# exec: make's SIGTERM reaches the launcher itself, which stops what it started.
	exec bin/waygate-local --manager bin/manager --gate bin/gate

.PHONY: test
test: envtest-assets test-deps ## Run all tests (unit and envtest) with the race detector.
	go test -race -count=1 ./...

.PHONY: verify
verify: generate manifests chart lint ## Check generated code, manifests, the chart and go.mod are committed; vet and lint.
	go vet ./...
	@go mod tidy -diff || { echo "go.mod/go.sum are not tidy: run 'go mod tidy' and commit the result"; exit 1; }
	@git diff --exit-code -- api config charts || { echo "generated files are out of date: run 'make generate manifests chart' and commit the result"; exit 1; }
	@test -z "$$(git status --porcelain -- api config charts)" || { git status --porcelain -- api config charts; echo "untracked generated files: run 'make generate manifests chart' and commit the result"; exit 1; }

.PHONY: bench-audit
bench-audit: envtest-assets build ## Measure the audit pipeline: throughput, latency, operator memory (BENCH_ARGS=--profile=DIR for CPU profiles).
	go run ./hack/bench-audit --manager bin/manager $(BENCH_ARGS)

.PHONY: bench-flags
bench-flags: ## Measure the flag engine: evaluations in-process (flagd's anchor: static 1,860 ns/25 allocs, one rule 9,000 ns/102 allocs).
	go test -run '^$$' -bench . -benchmem ./pkg/flags/

.PHONY: bench-gate
bench-gate: envtest-assets build test-deps ## Measure the gate: decisions in-process, forward-auth with wrk against nginx, Redis against memory, apply → enforced, OFREP with wrk (BENCH_ARGS=--phases=ofrep for that alone).
	go test -run '^$$' -bench . -benchmem ./internal/gate/
	go test -run '^$$' -bench ForwardAuth -benchmem ./internal/dataplane/
	go run ./hack/bench-gate --manager bin/manager --gate bin/gate $(BENCH_ARGS)

.PHONY: bench-scale
bench-scale: envtest-assets build test-deps ## Measure the gate and operator at scale: 50,000 RouteGates and 5,000 RateLimitPolicies over 500 namespaces (BENCH_ARGS=--routes=N --namespaces=M for smaller runs): memory, apply → enforced at rest and during a bulk update, snapshot builds, forward-auth.
	go run ./hack/bench-gate --manager bin/manager --gate bin/gate --phases=scale $(BENCH_ARGS)

##@ Build

.PHONY: build
build: ## Build the operator into bin/manager, the gate into bin/gate, the dashboard into bin/dashboard and the CLI into bin/waygate.
	@echo "building the operator, the gate, the dashboard and the CLI into bin/ (the first build takes about 3 minutes on 2 cores; later ones seconds)"
	go build -o bin/manager ./cmd/manager
	go build -o bin/gate ./cmd/gate
	go build -o bin/dashboard ./cmd/dashboard
	go build -o bin/waygate ./cmd/waygate

VERSION ?= v0.1.0
PLATFORMS ?= linux/amd64,linux/arm64

.PHONY: images
images: ## Build the operator, gate and dashboard images (no Docker: static binaries, non-root, PLATFORMS) into the OCI layout dist/images.
	go run ./hack/images --out dist/images --version $(VERSION) --platforms $(PLATFORMS)

.PHONY: push
push: ## Push the images of dist/images to REGISTRY (e.g. REGISTRY=ghcr.io/waygate-dev) as waygate-<component>:$(VERSION).
	@test -n "$(REGISTRY)" || { echo "set REGISTRY, e.g. make push REGISTRY=ghcr.io/waygate-dev"; exit 1; }
	go run ./hack/images --out dist/images --version $(VERSION) --push $(REGISTRY)

.PHONY: release
release: envtest-assets ## Write a release into dist/ (VERSION=vX.Y.Z): the images, install.yaml, crds.yaml, the Helm chart, the CLI archives and the krew manifest, naming the images in REGISTRY (default ghcr.io/waygate-dev); make push pushes them.
	go run ./hack/release --out dist --version $(VERSION) --registry $(or $(REGISTRY),ghcr.io/waygate-dev)

INSTALL_DIR ?= $(shell go env GOPATH)/bin

.PHONY: install-cli
install-cli: build ## Install the CLI as waygate and as the kubectl plugin kubectl-waygate into INSTALL_DIR (default: go env GOPATH/bin).
	install -D -m 0755 bin/waygate $(INSTALL_DIR)/waygate
	ln -sf waygate $(INSTALL_DIR)/kubectl-waygate
	@echo "installed $(INSTALL_DIR)/waygate and $(INSTALL_DIR)/kubectl-waygate; make sure $(INSTALL_DIR) is on your PATH"

.PHONY: envtest-assets
envtest-assets: ## Build kube-apiserver, etcd and kubectl from source into bin/k8s/$(K8S_VERSION) (once; a kubectl on PATH within one minor is linked instead).
	K8S_VERSION=$(K8S_VERSION) ./hack/build-controlplane.sh

.PHONY: test-deps
test-deps: ## Install nginx, Caddy, Redis, wrk, Node with npm and Chromium (apt-get) when missing: see hack/test-deps.sh.
	./hack/test-deps.sh

.PHONY: generate
generate: ## Generate deepcopy code.
	$(CONTROLLER_GEN) object:headerFile=hack/boilerplate.go.txt paths=./api/...

.PHONY: manifests
manifests: ## Generate CRDs, RBAC and webhook configurations.
	$(CONTROLLER_GEN) crd rbac:roleName=waygate-manager webhook paths=./... \
		output:crd:artifacts:config=config/crd/bases \
		output:rbac:artifacts:config=config/rbac \
		output:webhook:artifacts:config=config/webhook

.PHONY: chart
chart: envtest-assets ## Generate the Helm chart's templates (charts/waygate/templates) from config/.
	go run ./hack/chart

.PHONY: lint
lint: $(GOLANGCI_LINT) ## Run golangci-lint.
	$(GOLANGCI_LINT) run ./...

$(GOLANGCI_LINT):
	GOBIN=$(CURDIR)/bin go install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_LINT_VERSION)
	mv $(CURDIR)/bin/golangci-lint $@

##@ Deploy

.PHONY: deploy
deploy: ## Install Waygate into the cluster of the current kubeconfig context.
	kubectl apply -k config/default
