#!/usr/bin/env bash
# The local Kubernetes control plane wave's tests, demo and benchmarks run against: etcd, kube-apiserver
# (RBAC and admission webhooks on), kube-controller-manager, kube-scheduler and kwok playing one node, all
# on 127.0.0.1 with free ports. State lives in .local/ (gitignored).
#
#   cluster.sh up                 start everything (idempotent) and wait until the node is Ready
#   cluster.sh down               stop every process started here and free every port
#   cluster.sh status             say what runs
#   cluster.sh stop <component>   stop one component (e.g. kube-apiserver, for restart tests)
#   cluster.sh start <component>  start it again with the same flags and ports
#
# WAVE_CLUSTER_DIR=<dir> puts a second control plane's state, logs and kubeconfig in <dir>.
# KUBE=<minor>|newest|oldest chooses the Kubernetes release (kube.sh); newest by default.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
# shellcheck source=kube.sh
. "$here/kube.sh"
# WAVE_CLUSTER_DIR runs a second, private control plane (tests that restart the apiserver use one).
local_dir=${WAVE_CLUSTER_DIR:-$root/.local}
state=$local_dir/cluster
logs=$local_dir/logs
bin=$root/.local/bin
kubeconfig=$local_dir/kubeconfig
components=(etcd kube-apiserver kube-controller-manager kube-scheduler kwok)
node_name=kwok-node-0

log() { printf '[cluster] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

kubectl() { "$bin/kubectl" --kubeconfig "$kubeconfig" "$@"; }

alive() { # <component>
  local pid
  [ -f "$state/$1.pid" ] || return 1
  pid=$(cat "$state/$1.pid")
  kill -0 "$pid" 2>/dev/null
}

free_ports() { # <n>: n distinct free TCP ports on 127.0.0.1, held open together so none repeats
  node -e '
    const net = require("net");
    const n = Number(process.argv[1]), servers = [];
    const next = () => {
      if (servers.length === n) {
        console.log(servers.map((s) => s.address().port).join(" "));
        servers.forEach((s) => s.close());
        return;
      }
      const s = net.createServer();
      s.listen(0, "127.0.0.1", () => { servers.push(s); next(); });
    };
    next();' "$1"
}

pki() {
  local dir=$state/pki
  mkdir -p "$dir"
  cd "$dir"
  openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=wave-test-ca" \
    -keyout ca.key -out ca.crt 2>/dev/null
  issue() { # <name> <subject> <extensions>
    openssl req -newkey rsa:2048 -nodes -subj "$2" -keyout "$1.key" -out "$1.csr" 2>/dev/null
    openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days 30 \
      -extfile <(printf '%s\n' "$3") -out "$1.crt" 2>/dev/null
  }
  issue apiserver "/CN=kube-apiserver" \
    "subjectAltName=IP:127.0.0.1,IP:10.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc
extendedKeyUsage=serverAuth"
  issue admin "/O=system:masters/CN=wave-test-admin" "extendedKeyUsage=clientAuth"
  openssl genrsa -out sa.key 2048 2>/dev/null
  openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
  cd - >/dev/null
}

write_kubeconfig() { # <apiserver port>
  cat >"$kubeconfig" <<KUBECONFIG
apiVersion: v1
kind: Config
clusters:
- name: wave-local
  cluster:
    server: https://127.0.0.1:$1
    certificate-authority: $state/pki/ca.crt
users:
- name: admin
  user:
    client-certificate: $state/pki/admin.crt
    client-key: $state/pki/admin.key
contexts:
- name: wave-local
  context: {cluster: wave-local, user: admin}
current-context: wave-local
KUBECONFIG
}

# Each component's command line is saved so `start` can bring one back exactly as it was.
save_commands() {
  local etcd_port etcd_peer api_port kcm_port sched_port kwok_port
  read -r etcd_port etcd_peer api_port kcm_port sched_port kwok_port <<<"$(free_ports 6)"
  local pki=$state/pki
  # The binaries themselves, not .local/bin's links: a restarted component stays on the release it ran,
  # whatever build.sh linked since. The multi-call binary takes the component as its first argument.
  local k8s kwok
  k8s=$(readlink -f "$bin/kubectl")
  kwok=$(readlink -f "$bin/kwok")
  printf '%s\n' "$api_port" >"$state/apiserver.port"
  save() { local name=$1; shift; printf '%q ' "$@" >"$state/$name.cmd"; }
  save etcd "$k8s" etcd --name wave-local --data-dir "$state/etcd" \
    --listen-client-urls "http://127.0.0.1:$etcd_port" --advertise-client-urls "http://127.0.0.1:$etcd_port" \
    --listen-peer-urls "http://127.0.0.1:$etcd_peer" --initial-advertise-peer-urls "http://127.0.0.1:$etcd_peer" \
    --initial-cluster "wave-local=http://127.0.0.1:$etcd_peer" --listen-metrics-urls "" \
    --unsafe-no-fsync --log-level warn --quota-backend-bytes 8589934592
  save kube-apiserver "$k8s" kube-apiserver \
    --etcd-servers "http://127.0.0.1:$etcd_port" \
    --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$api_port" \
    --tls-cert-file "$pki/apiserver.crt" --tls-private-key-file "$pki/apiserver.key" \
    --client-ca-file "$pki/ca.crt" --authorization-mode RBAC \
    --service-account-issuer https://kubernetes.default.svc.cluster.local \
    --service-account-key-file "$pki/sa.pub" --service-account-signing-key-file "$pki/sa.key" \
    --api-audiences https://kubernetes.default.svc.cluster.local \
    --service-cluster-ip-range 10.0.0.0/24 --endpoint-reconciler-type none \
    --enable-admission-plugins MutatingAdmissionWebhook,ValidatingAdmissionWebhook \
    --allow-privileged --profiling=false --v 1
  save kube-controller-manager "$k8s" kube-controller-manager \
    --kubeconfig "$kubeconfig" --authentication-kubeconfig "$kubeconfig" --authorization-kubeconfig "$kubeconfig" \
    --bind-address 127.0.0.1 --secure-port "$kcm_port" --leader-elect=false \
    --service-account-private-key-file "$pki/sa.key" --root-ca-file "$pki/ca.crt" \
    --cluster-signing-cert-file "$pki/ca.crt" --cluster-signing-key-file "$pki/ca.key" \
    --controllers '*,-nodeipam' --profiling=false --v 1 \
    --kube-api-qps 200 --kube-api-burst 400 --concurrent-deployment-syncs 10 --concurrent-replicaset-syncs 10
  save kube-scheduler "$k8s" kube-scheduler \
    --kubeconfig "$kubeconfig" --authentication-kubeconfig "$kubeconfig" --authorization-kubeconfig "$kubeconfig" \
    --bind-address 127.0.0.1 --secure-port "$sched_port" --leader-elect=false --profiling=false --v 1 \
    --kube-api-qps 200 --kube-api-burst 400
  save kwok "$kwok" --kubeconfig "$kubeconfig" --config "$(readlink -f "$bin/kwok-stages.yaml")" --manage-all-nodes=false --manage-single-node "$node_name" \
    --cidr 10.244.0.1/16 --node-ip 10.0.1.1 --node-lease-duration-seconds 40 \
    --server-address "127.0.0.1:$kwok_port"
}

start_component() { # <component>
  local name=$1
  [ -f "$state/$name.cmd" ] || die "no saved command for $name: run 'cluster.sh up' first"
  alive "$name" && { log "$name already runs"; return; }
  # setsid: each component leads its own process group, so stopping it leaves nothing behind.
  eval "exec setsid $(cat "$state/$name.cmd")" >>"$logs/$name.log" 2>&1 </dev/null &
  echo $! >"$state/$name.pid"
}

stop_component() { # <component>
  local name=$1 pid i
  [ -f "$state/$name.pid" ] || return 0
  pid=$(cat "$state/$name.pid")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 1 100); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL -- "-$pid" 2>/dev/null || true
  fi
  rm -f "$state/$name.pid"
}

wait_for() { # <what> <seconds> <command...>
  local what=$1 seconds=$2 deadline
  shift 2
  deadline=$((SECONDS + seconds))
  until "$@" >/dev/null 2>&1; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      log "$what not ready after ${seconds}s; last lines of the logs:"
      tail -n 5 "$logs"/*.log >&2 || true
      return 1
    fi
    sleep 0.2
  done
}

apiserver_ready() { kubectl get --raw /readyz; }
node_ready() {
  [ "$(kubectl get node "$node_name" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}')" = True ]
}
default_sa() { kubectl -n default get serviceaccount default; }

create_node() {
  kubectl apply -f - >/dev/null <<NODE
apiVersion: v1
kind: Node
metadata:
  name: $node_name
  annotations:
    node.alpha.kubernetes.io/ttl: "0"
    kwok.x-k8s.io/node: fake
  labels:
    type: kwok
    kubernetes.io/hostname: $node_name
    kubernetes.io/os: linux
    kubernetes.io/arch: amd64
status:
  allocatable: {cpu: "64", memory: 256Gi, pods: "1000"}
  capacity: {cpu: "64", memory: 256Gi, pods: "1000"}
NODE
}

is_up() {
  local c
  for c in "${components[@]}"; do alive "$c" || return 1; done
  apiserver_ready >/dev/null 2>&1
}

up() {
  local start=$SECONDS t0 want
  want=$(kube_version "$(kube_minor)")
  if is_up; then
    local runs
    runs=$(cat "$state/kube-version" 2>/dev/null || echo unknown)
    [ "$runs" = "$want" ] || die "this control plane runs Kubernetes $runs, not $want (KUBE=${KUBE:-newest}): 'cluster.sh down' first"
    log "already up (Kubernetes $runs): export KUBECONFIG=$kubeconfig"
    return
  fi
  down quiet
  "$here/build.sh" --control-plane
  mkdir -p "$state" "$logs"
  echo "$want" >"$state/kube-version"
  rm -f "$logs"/*.log
  pki
  save_commands
  write_kubeconfig "$(cat "$state/apiserver.port")"
  t0=$(date +%s%N)
  start_component etcd
  start_component kube-apiserver
  wait_for "kube-apiserver /readyz" 90 apiserver_ready
  start_component kube-controller-manager
  start_component kube-scheduler
  start_component kwok
  create_node
  wait_for "node $node_name" 60 node_ready
  wait_for "default ServiceAccount" 60 default_sa
  local ms=$((($(date +%s%N) - t0) / 1000000))
  log "Kubernetes $want up in $((ms / 1000)).$(printf '%03d' $((ms % 1000)))s (control plane start; $((SECONDS - start))s in all)"
  log "kubectl: $bin/kubectl --kubeconfig $kubeconfig"
}

down() {
  local c quiet=${1:-}
  for ((i = ${#components[@]} - 1; i >= 0; i--)); do stop_component "${components[$i]}"; done
  rm -rf "$state"
  [ -n "$quiet" ] || log "down"
}

status() {
  local c
  [ -f "$state/kube-version" ] && echo "Kubernetes $(cat "$state/kube-version")"
  for c in "${components[@]}"; do
    if alive "$c"; then echo "$c running (pid $(cat "$state/$c.pid"))"; else echo "$c stopped"; fi
  done
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) status ;;
  stop) stop_component "${2:?component}" ;;
  start) mkdir -p "$logs"; start_component "${2:?component}" ;;
  *) sed -n '2,14s/^# \{0,1\}//p' "$0" >&2; exit 2 ;;
esac
