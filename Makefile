# Everything installs itself: a venv from pyproject.toml, Go binaries built into ~/.cache/milvusops.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# pytest-xdist workers for `make test`: each starts its own control plane and Milvus standalone; 3 broke a Milvus
# restarted after SIGKILL under the extra load (docs/design/development.md)
TEST_WORKERS ?= 2
# mypy's cache outside the checkout, so a fresh clone (CI) checks only what changed: 18 s cold, 1 s warm
MYPY_CACHE_DIR ?= $(HOME)/.cache/milvusops/mypy

.PHONY: test lint unit e2e testenv demo manifests lock release bench clean

# `make release REGISTRY=host:port` also pushes there; no registry is named by default (dist/ only).
# RELEASE_PUSH=chart pushes only the chart (the public CI pushes a multi-arch image with buildx itself)
REGISTRY ?=
RELEASE_PUSH ?= image chart

test: lint testenv  ## the CI gate: lint, types, unit and e2e tests against a real API server and Milvus
	$(BIN)/python -m pytest -n $(TEST_WORKERS)

lint: $(VENV)/.installed
	$(BIN)/ruff check operator tests bench
	$(BIN)/ruff format --check operator tests bench
	$(BIN)/mypy --cache-dir $(MYPY_CACHE_DIR)
	$(BIN)/lint-imports
	$(BIN)/hadolint Dockerfile

unit: $(VENV)/.installed
	$(BIN)/python -m pytest -m "not e2e"

e2e: $(VENV)/.installed
	$(BIN)/python -m pytest -m e2e

demo: $(VENV)/.installed  ## local control plane + Milvus + operator + examples, status printed
	$(BIN)/python -m tests.testenv demo

bench: $(VENV)/.installed  ## every benchmark in one environment, e.g. make bench BENCH_ARGS="--resources 20"
	$(BIN)/python -m bench.all $(BENCH_ARGS)

manifests: $(VENV)/.installed  ## copy crds/ into the chart; regenerate deploy/crds.yaml and deploy/operator.yaml from it
	$(BIN)/python -m tests.testenv manifests

lock: $(VENV)/.installed  ## pin the image's dependencies with hashes (requirements.lock) after a change to pyproject.toml
	$(BIN)/python -m tests.testenv lock

release: $(VENV)/.installed  ## dist/: the image as an OCI archive, its CycloneDX SBOM, the packaged chart; pushed with REGISTRY
	$(BIN)/python -m tests.testenv release $(if $(REGISTRY),--registry $(REGISTRY) --push "$(RELEASE_PUSH)")

testenv: $(VENV)/.installed  ## build (or reuse) kube-apiserver, kube-controller-manager, etcd, kubectl, helm, kstatus
	$(BIN)/python -m tests.testenv build

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
