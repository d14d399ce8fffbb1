#!/usr/bin/env bash
# make demo: the local control plane and wave, an example app, a ConfigMap change and the rollout it
# causes, shown as it happens; the cluster stays up afterwards (make down stops it).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
local_dir=${WAVE_CLUSTER_DIR:-$PWD/.local}
export KUBECONFIG=$local_dir/kubeconfig
kubectl() { "$PWD/.local/bin/kubectl" "$@"; }
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
node=$PWD/node_modules/.bin/node

say "Starting the local control plane and wave (make up)"
bash test/up.sh up >/dev/null

say "Applying the demo app: Deployment wave-demo/greeter consumes a ConfigMap and a Secret"
kubectl delete namespace wave-demo --ignore-not-found --wait=true >/dev/null
kubectl apply -f manifests/examples/demo-app.yaml
kubectl -n wave-demo rollout status deployment/greeter --timeout=120s
before=$(kubectl -n wave-demo get deployment greeter -o jsonpath='{.spec.template.metadata.annotations.wave\.pusher\.com/config-hash}')
echo "config hash stamped at creation: $before"
kubectl -n wave-demo get replicasets,pods -o wide

say "Changing the ConfigMap: GREETING hello -> bonjour"
kubectl -n wave-demo patch configmap greeter-settings --type merge -p '{"data":{"GREETING":"bonjour"}}'
started=$(date +%s%N)
after=$before
for _ in $(seq 1 300); do
  after=$(kubectl -n wave-demo get deployment greeter -o jsonpath='{.spec.template.metadata.annotations.wave\.pusher\.com/config-hash}')
  [ "$after" != "$before" ] && break
  sleep 0.1
done
[ "$after" != "$before" ] || { echo "wave did not roll the Deployment within 30 s; see $local_dir/logs/wave.log" >&2; exit 1; }
ms=$((($(date +%s%N) - started) / 1000000))
echo "wave stamped the new hash after ${ms} ms: $after"

say "The rollout, as Kubernetes carries it out (ReplicaSets and pods, old to new)"
for _ in $(seq 1 60); do
  kubectl -n wave-demo get replicasets -o custom-columns='REPLICASET:.metadata.name,DESIRED:.spec.replicas,READY:.status.readyReplicas,HASH:.spec.template.metadata.annotations.wave\.pusher\.com/config-hash' | sed 's/^/  /'
  kubectl -n wave-demo get pods -o custom-columns='POD:.metadata.name,PHASE:.status.phase,DELETING:.metadata.deletionTimestamp' | sed 's/^/  /'
  if kubectl -n wave-demo rollout status deployment/greeter --watch=false | grep -q 'successfully rolled out' &&
    [ "$(kubectl -n wave-demo get pods --no-headers | wc -l)" -eq 2 ]; then
    break
  fi
  echo '  ...'
  sleep 1
done
kubectl -n wave-demo rollout status deployment/greeter --timeout=60s

say "What wave sees now (wave explain)"
"$node" src/cli/main.ts explain deployment/greeter -n wave-demo --kubeconfig "$KUBECONFIG"

say "Events on the Deployment"
kubectl -n wave-demo get events --field-selector involvedObject.name=greeter \
  -o custom-columns='REASON:.reason,MESSAGE:.message' | grep -E 'REASON|Config' || true

replicasets=$(kubectl -n wave-demo get replicasets --no-headers | wc -l)
cat <<MSG

Try more (the cluster stays up):
  export KUBECONFIG=$KUBECONFIG PATH=$PWD/.local/bin:\$PATH
  kubectl -n wave-demo patch secret greeter-credentials --type merge -p '{"stringData":{"api-token":"demo-token-2"}}'
  kubectl -n wave-demo get replicasets -w
  $node src/cli/main.ts explain deployment/greeter -n wave-demo
Logs: $local_dir/logs/wave.log.   Stop everything: make down
MSG
echo "demo: ConfigMap change rolled wave-demo/greeter in ${ms} ms (hash ${before:0:12} -> ${after:0:12}), ${replicasets} ReplicaSets, rollout complete"
