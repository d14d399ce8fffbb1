# The README's commands. Every npm script runs on the Node 24 that `npm ci` brings (the pinned `node`
# devDependency), whatever node the machine has.
SHELL := /bin/bash
NPM := npm --loglevel=error

.PHONY: all build lint format test test-unit test-integration cluster-build cluster-up cluster-down cluster-status clean

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

cluster-build:
	bash test/cluster/build.sh

cluster-up: node_modules/.package-lock.json
	bash test/cluster/cluster.sh up

cluster-down:
	bash test/cluster/cluster.sh down

cluster-status:
	bash test/cluster/cluster.sh status

clean: cluster-down
	rm -rf dist coverage .tap .local
