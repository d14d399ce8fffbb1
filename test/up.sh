#!/usr/bin/env bash
# make up / make down: the local control plane plus wave (webhook registered with the apiserver, sync
# loop running) in the background, for exploration.
#   test/up.sh up     start both (idempotent), wait until wave is ready, print the KUBECONFIG to use
#   test/up.sh down   stop wave, then the control plane
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
local_dir=${WAVE_CLUSTER_DIR:-$PWD/.local}
pidfile=$local_dir/wave.pid
log=$local_dir/logs/wave.log
node=$PWD/node_modules/.bin/node

wave_alive() { [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; }

up() {
  bash test/cluster/cluster.sh up
  if wave_alive; then
    echo "[up] wave already runs (pid $(cat "$pidfile"))" >&2
  else
    mkdir -p "$local_dir/logs"
    # One replica: no Lease to wait for. --webhook-port 0: any free port; the registration names it.
    setsid "$node" src/cli/main.ts serve --kubeconfig "$local_dir/kubeconfig" --self-signed \
      --register-webhook --webhook-configuration wave-local --bind-address 127.0.0.1 \
      --webhook-port 0 --health-port 0 --no-leader-election >"$log" 2>&1 </dev/null &
    echo $! >"$pidfile"
    local deadline=$((SECONDS + 60)) port=
    until [ -n "$port" ] && curl -fs "http://127.0.0.1:$port/readyz" >/dev/null 2>&1; do
      wave_alive || { echo "[up] wave exited; see $log:" >&2; tail -n 20 "$log" >&2; exit 1; }
      [ "$SECONDS" -lt "$deadline" ] || { echo "[up] wave not ready after 60s; see $log" >&2; exit 1; }
      port=$(sed -n 's/.*"healthPort":\([0-9]*\).*/\1/p' "$log" | head -n 1)
      sleep 0.2
    done
    echo "[up] wave is ready (pid $(cat "$pidfile"), logs $log, metrics http://127.0.0.1:$port/metrics)" >&2
  fi
  echo "export KUBECONFIG=$local_dir/kubeconfig   # kubectl: $PWD/.local/bin/kubectl"
}

down() {
  if wave_alive; then
    kill -TERM "$(cat "$pidfile")"
    for _ in $(seq 1 100); do wave_alive || break; sleep 0.1; done
    wave_alive && kill -KILL "$(cat "$pidfile")"
  fi
  rm -f "$pidfile"
  bash test/cluster/cluster.sh down
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  *) echo "usage: test/up.sh up|down" >&2; exit 2 ;;
esac
