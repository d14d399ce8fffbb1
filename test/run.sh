#!/usr/bin/env bash
# Runs the tap suites: `unit`, `integration` or `all`. Integration tests get a control plane of their own
# in .local/test-cluster (never the one `make up` / `make demo` runs wave in, whose wave would act on the
# tests' workloads too): started for the run and stopped afterwards, unless it was already up.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

suite=${1:-all}
case "$suite" in
  unit) paths=('test/unit/**/*.test.ts') ;;
  integration) paths=('test/integration/**/*.test.ts') ;;
  all) paths=('test/**/*.test.ts') ;;
  *) echo "usage: test/run.sh unit|integration|all" >&2; exit 2 ;;
esac

export WAVE_CLUSTER_DIR=${WAVE_CLUSTER_DIR:-$PWD/.local/test-cluster}
if [ "$suite" != unit ]; then
  # The control plane, and helm and the CRDs for the install tests (cached: seconds when warm).
  bash test/cluster/build.sh
  if bash test/cluster/cluster.sh status | grep -q stopped; then
    trap 'bash test/cluster/cluster.sh down' EXIT
  fi
  bash test/cluster/cluster.sh up
fi

npx --no-install tap "${paths[@]}"
