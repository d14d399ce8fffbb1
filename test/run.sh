#!/usr/bin/env bash
# Runs the tap suites: `unit`, `integration`, `all` (both), `scale` (the long scenarios at scale: a
# failover with 2,000 Deployments, a minute of a flapping Secret; CI runs them, `make test` does not), or
# `api`: the integration tests that touch the
# Kubernetes API surface wave depends on (webhook registration and matchConditions, admission, scheduling
# gates, the sync loop's rollouts, install and the chart), which CI also runs on the oldest supported
# release (KUBE=oldest). Integration tests get a control plane of their own in .local/test-cluster (never
# the one `make up` / `make demo` runs wave in, whose wave would act on the tests' workloads too): started
# for the run and stopped afterwards, unless it was already up. KUBE selects its release (test/cluster/kube.sh).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

suite=${1:-all}
case "$suite" in
  unit) paths=('test/unit/**/*.test.ts') ;;
  integration) paths=('test/integration/**/*.test.ts') ;;
  api)
    paths=()
    for f in control-plane webhook sync install helm; do paths+=("test/integration/$f.test.ts"); done
    ;;
  scale) paths=('test/scale/**/*.test.ts') ;;
  all) paths=('test/unit/**/*.test.ts' 'test/integration/**/*.test.ts') ;;
  *) echo "usage: [KUBE=1.37|1.34|newest|oldest] test/run.sh unit|integration|api|scale|all" >&2; exit 2 ;;
esac

export WAVE_CLUSTER_DIR=${WAVE_CLUSTER_DIR:-$PWD/.local/test-cluster}
if [ "$suite" != unit ]; then
  # The control plane, and helm and the CRDs for the install tests (cached: seconds when warm).
  bash test/cluster/build.sh
  # Read whole before matching: `status | grep -q` under pipefail fails when grep stops reading first,
  # and the control plane was then left running.
  if grep -q stopped <<<"$(bash test/cluster/cluster.sh status)"; then
    trap 'bash test/cluster/cluster.sh down' EXIT
  fi
  bash test/cluster/cluster.sh up
fi

# Node's compile cache, outside the repository like the control plane's builds: the suites start node
# hundreds of times (each test file, each wave they run), and compiling the same modules each time was
# about half of each start's CPU.
export NODE_COMPILE_CACHE=${NODE_COMPILE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/wave-cluster/node-compile-cache}

# The scenarios at scale measure what one controller does on the whole machine: one at a time.
jobs=()
[ "$suite" = scale ] && jobs=(--jobs=1)
npx --no-install tap "${jobs[@]}" "${paths[@]}"
