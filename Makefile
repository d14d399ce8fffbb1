# The README's commands. Every npm script runs on the Node 24 that `npm ci` brings (the pinned `node`
# devDependency), whatever node the machine has.
SHELL := /bin/bash
NPM := npm --loglevel=error
# The Kubernetes release of the local control plane: a minor with a module under test/cluster/k8s/, or
# newest (the default) or oldest, e.g. make test KUBE=1.34. The build cache keys on it.
KUBE ?= newest
export KUBE

.PHONY: all build lint format test test-unit test-integration test-scale test-api certs cluster-build cluster-up cluster-down cluster-status clean

all: build

node_modules/.package-lock.json: package.json package-lock.json
	$(NPM) ci

build: node_modules/.package-lock.json
	$(NPM) run -s build

lint: node_modules/.package-lock.json
	$(NPM) run -s lint

format: node_modules/.package-lock.json
	$(NPM) run -s format

# Everything: unit tests, then integration tests against the local control plane (started for the run
# and stopped afterwards unless it was already up).
test: node_modules/.package-lock.json
	bash test/run.sh all

test-unit: node_modules/.package-lock.json
	bash test/run.sh unit

test-integration: node_modules/.package-lock.json
	bash test/run.sh integration

# The long scenarios at scale (failover with 2,000 Deployments, a flapping Secret): minutes each, so CI
# runs them and `make test` does not.
test-scale: node_modules/.package-lock.json
	bash test/run.sh scale

# The integration tests that touch the Kubernetes API surface; CI runs them on KUBE=oldest too.
test-api: node_modules/.package-lock.json
	bash test/run.sh api

# A local CA and serving certificate in webhook-certs/ (webhook-certs/README.md); run again, it keeps
# them, renews them when due and repairs broken files.
certs: node_modules/.package-lock.json
	$(NPM) run -s wave -- certs local --out webhook-certs

# The control plane, kwok, and helm and the CRDs the install tests use, from Go modules; cached in
# ~/.cache/wave-cluster, so only the first run compiles.
cluster-build:
	bash test/cluster/build.sh

cluster-up: node_modules/.package-lock.json
	bash test/cluster/cluster.sh up

cluster-down:
	bash test/cluster/cluster.sh down

cluster-status:
	bash test/cluster/cluster.sh status

# Webhook requests/s and latency against a bare fastify route (bench/README.md). BENCH_ARGS passes flags,
# e.g. make bench-webhook BENCH_ARGS='--mode api --concurrency 32'.
.PHONY: bench-webhook
bench-webhook: node_modules/.package-lock.json
	$(NPM) run -s bench:webhook -- $(BENCH_ARGS)

# Sync-loop latency, fanout and memory against a private control plane (bench/README.md), e.g.
# make bench-sync BENCH_ARGS='--scenario latency --updates 100'.
.PHONY: bench-sync
bench-sync: node_modules/.package-lock.json
	$(NPM) run -s bench:sync -- $(BENCH_ARGS)

# Failover of two replicas over 2,000 Deployments against a private control plane (bench/README.md), e.g.
# make bench-failover BENCH_ARGS='--deployments 500'.
.PHONY: bench-failover
bench-failover: node_modules/.package-lock.json
	$(NPM) run -s bench:failover -- $(BENCH_ARGS)

# The control plane and wave in the background, for exploration; make down stops both.
.PHONY: up down demo
# The example app rolled by a ConfigMap change, shown as it happens; the cluster stays up (make down).
demo: node_modules/.package-lock.json
	bash test/demo.sh

up: node_modules/.package-lock.json
	bash test/up.sh up

down:
	bash test/up.sh down

clean: down
	rm -rf dist coverage .tap .local

# The image from the Dockerfile, built with buildah on local stand-ins of its base images (their registries
# are not reachable here; README "The image"), cached in ~/.cache/wave-image; prints its size and its
# layers'. test/integration/image.test.ts runs it with runc as a cluster would.
.PHONY: image
image: node_modules/.package-lock.json
	bash test/image/build.sh --compressed
