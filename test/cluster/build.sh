#!/usr/bin/env bash
# Builds the local control plane from Go modules, once per machine: one multi-call binary (etcd,
# kube-apiserver, kube-controller-manager, kube-scheduler, kubectl), kwok, and helm (for the chart's
# tests); and fetches the CRDs of crds.list. Binaries and the Go caches live outside the repository, keyed
# by the versions and sources, so a warm machine only links them into .local/. Progress goes to stderr.
set -euo pipefail

# --control-plane: only what `cluster.sh up` needs (make demo, make up); not helm and the CRDs.
control_plane_only=false
case "${1:-}" in
  --control-plane) control_plane_only=true ;;
  '') ;;
  *) echo "usage: build.sh [--control-plane]" >&2; exit 2 ;;
esac

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
cache=${WAVE_CLUSTER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/wave-cluster}

k8s_version=$(awk '$1 == "k8s.io/kubernetes" { print $2 }' "$here/go.mod")
etcd_version=$(awk '$1 == "go.etcd.io/etcd/server/v3" { print $2 }' "$here/go.mod")
kwok_version=$(cat "$here/kwok.version")
helm_version=$(cat "$here/helm.version")
ldflags='-s -w'
# The version the apiserver reports (/version, kubectl version): clients check it, e.g. a chart's kubeVersion.
k8s_minor=$(echo "$k8s_version" | cut -d. -f2)
k8s_ldflags="$ldflags"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  k8s_ldflags+=" -X $pkg.gitVersion=$k8s_version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$k8s_minor -X $pkg.gitTreeState=clean"
done
sources_key=$( (cat "$here/go.mod" "$here/go.sum" "$here/kwok.version" "$here"/cmd/*/*.go; echo "$k8s_ldflags") | sha256sum | cut -c1-12)
bin=$cache/k8s-$k8s_version-etcd-$etcd_version-kwok-$kwok_version-$sources_key/bin

export GOTOOLCHAIN=local GOFLAGS= CGO_ENABLED=0
export GOMODCACHE=$cache/gomod GOCACHE=$cache/gocache

log() { printf '[cluster-build] %s\n' "$*" >&2; }

# go build -v and go install -v name each package as it is compiled; count them against the dependency
# total (? when unknown).
build_with_progress() { # <label> <total> <build|install> <args...>
  local label=$1 total=$2 verb=$3
  shift 3
  local start=$SECONDS
  go "$verb" -v "$@" 2>&1 | awk -v label="$label" -v total="$total" -v start="$start" '
    /^(#|go: |[^ ]+\.go:)/ || /error/ { print; fflush(); next }   # compiler output and errors verbatim
    { n++; if (n % 50 == 0) { printf "[cluster-build] %s: %d/%d packages\n", label, n, total; fflush() } }
  ' >&2
  local rc=${PIPESTATUS[0]}
  [ "$rc" -eq 0 ] || { log "$label: go build failed (exit $rc)"; return "$rc"; }
  log "$label: built in $((SECONDS - start))s"
}

if [ -x "$bin/k8s" ] && [ -x "$bin/kwok" ]; then
  log "using cached binaries in $bin"
else
  command -v go >/dev/null || { log "go is not installed: the control plane is built from Go modules (Go >= 1.24)"; exit 1; }
  log "cold build of Kubernetes $k8s_version, etcd $etcd_version and kwok $kwok_version into $bin"
  log "(on 2 cores this takes a while; later runs reuse it)"
  tmp=$(mktemp -d "$cache/.build.XXXXXX")
  trap 'rm -rf "$tmp"' EXIT
  start=$SECONDS

  cd "$here"
  log "downloading modules"
  go mod download
  total=$(go list -deps ./cmd/k8s | wc -l)
  build_with_progress "k8s multi-call binary" "$total" build -trimpath -ldflags="$k8s_ldflags" -o "$tmp/k8s" ./cmd/k8s

  # kwok pins a newer client-go than Kubernetes $k8s_version, so it is its own module build.
  log "downloading kwok $kwok_version"
  (cd "$tmp" && GOBIN="$tmp" go install -trimpath -ldflags="$ldflags" "sigs.k8s.io/kwok/cmd/kwok@$kwok_version")
  log "kwok built"

  mkdir -p "$(dirname "$bin")"
  rm -rf "$bin"
  mv "$tmp" "$bin"
  trap - EXIT
  log "cold build finished in $((SECONDS - start))s"
fi

# kwok >= 0.8 has no built-in stages: give it upstream's "fast" node and pod stages and node leases.
if [ ! -s "$bin/kwok-stages.yaml" ]; then
  kwok_dir=$(go mod download -json "sigs.k8s.io/kwok@$kwok_version" | awk -F'"' '$2 == "Dir" { print $4 }')
  stages=$kwok_dir/kustomize/stage
  for f in node/fast/node-initialize.yaml node/heartbeat-with-lease/node-heartbeat-with-lease.yaml \
    pod/fast/pod-ready.yaml pod/fast/pod-complete.yaml pod/fast/pod-delete.yaml; do
    printf -- '---\n'
    cat "$stages/$f"
  done >"$bin/kwok-stages.yaml.tmp"
  mv "$bin/kwok-stages.yaml.tmp" "$bin/kwok-stages.yaml"
fi

if ! $control_plane_only; then
  # helm renders the chart in manifests/helm (test/integration/helm.test.ts); its own module build, cached
  # apart from the control plane so a helm bump rebuilds only helm.
  helm_dir=$cache/helm-$helm_version-$(echo "$ldflags" | sha256sum | cut -c1-8)
  if [ -x "$helm_dir/helm" ]; then
    log "using cached helm in $helm_dir"
  else
    command -v go >/dev/null || { log "go is not installed: helm is built from Go modules (Go >= 1.26)"; exit 1; }
    log "cold build of helm $helm_version into $helm_dir"
    tmp_helm=$(mktemp -d "$cache/.helm.XXXXXX")
    trap 'rm -rf "$tmp_helm"' EXIT
    (cd "$tmp_helm" && GOBIN="$tmp_helm" build_with_progress "helm $helm_version" '?' install -trimpath \
      -ldflags="$ldflags" "helm.sh/helm/v4/cmd/helm@$helm_version")
    rm -rf "$helm_dir"
    mv "$tmp_helm" "$helm_dir"
    trap - EXIT
  fi

  # The CRDs of crds.list, from the module proxy (cached in GOMODCACHE).
  crds=$root/.local/crds
  mkdir -p "$crds"
  grep -v '^#' "$here/crds.list" | while read -r module file; do
    [ -n "$module" ] || continue
    target=$crds/$(basename "$file")
    [ -s "$target" ] && continue
    dir=$(cd "$cache" && go mod download -json "$module" | awk -F'"' '$2 == "Dir" { print $4 }')
    [ -s "$dir/$file" ] || { log "$module has no $file"; exit 1; }
    install -m 0644 "$dir/$file" "$target.tmp"
    mv "$target.tmp" "$target"
    log "CRD $(basename "$file") from $module"
  done
fi

mkdir -p "$root/.local/bin"
for name in etcd kube-apiserver kube-controller-manager kube-scheduler kubectl; do
  ln -sfn "$bin/k8s" "$root/.local/bin/$name"
done
ln -sfn "$bin/kwok" "$root/.local/bin/kwok"
ln -sfn "$bin/kwok-stages.yaml" "$root/.local/bin/kwok-stages.yaml"
$control_plane_only || ln -sfn "$helm_dir/helm" "$root/.local/bin/helm"
