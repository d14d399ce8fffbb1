#!/usr/bin/env bash
# Builds the local control plane from Go modules, once per machine and Kubernetes release: one multi-call
# binary (etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubectl) from the module of the
# release KUBE selects (kube.sh: newest by default), kwok, helm (for the chart's tests) and promtool (for
# the chart's alerts) and the Argo Rollouts controller (for the tests of Rollouts); and fetches the CRDs of
# crds.list. Binaries and the Go caches live outside the repository, keyed by the versions and sources, so a
# warm machine only links them into .local/bin.
# Progress goes to stderr.
#
# Works on a new machine: no cache folder, a HOME that is an empty folder, or a cache an interrupted
# build left half-written (every build goes to a temporary folder, moved into place only when complete).
set -euo pipefail

# --control-plane: only what `cluster.sh up` needs (make demo, make up); not helm, promtool, the Argo Rollouts
# controller and the CRDs.
# --cache-only: build into the cache and link nothing into .local/bin, so a release can be built while the
# tests run on another (.ci/run builds the oldest one during the newest one's tests).
control_plane_only=false
link=true
for arg in "$@"; do
  case "$arg" in
    --control-plane) control_plane_only=true ;;
    --cache-only) link=false ;;
    *) echo "usage: [KUBE=1.37|1.34|newest|oldest] build.sh [--control-plane] [--cache-only]" >&2; exit 2 ;;
  esac
done

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
# shellcheck source=kube.sh
. "$here/kube.sh"

log() { printf '[cluster-build] %s\n' "$*" >&2; }

if [ -z "${WAVE_CLUSTER_CACHE:-}" ] && [ -z "${XDG_CACHE_HOME:-}" ] && [ -z "${HOME:-}" ]; then
  log "HOME is not set: set HOME, XDG_CACHE_HOME or WAVE_CLUSTER_CACHE to say where the build cache goes"
  exit 1
fi
cache=${WAVE_CLUSTER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/wave-cluster}
mkdir -p "$cache"
cache=$(cd "$cache" && pwd)
# Temporary folders of builds killed before their own clean-up ran (a build takes minutes, not hours).
find "$cache" -maxdepth 1 -name '.build-*' -mmin +360 -exec rm -rf {} + 2>/dev/null || true

minor=$(kube_minor)
module=$here/k8s/$minor
k8s_version=$(kube_version "$minor")
etcd_version=$(awk '$1 == "go.etcd.io/etcd/server/v3" { print $2 }' "$module/go.mod")
go_version=$(awk '$1 == "go" { print $2 }' "$module/go.mod")
kwok_version=$(cat "$here/kwok.version")
helm_version=$(cat "$here/helm.version")
# The module version of a Prometheus release: v0.316.0 is Prometheus 3.16.0.
promtool_version=$(cat "$here/promtool.version")
ldflags='-s -w'
# The version the apiserver reports (/version, kubectl version): clients check it, e.g. a chart's kubeVersion.
k8s_ldflags="$ldflags"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  k8s_ldflags+=" -X $pkg.gitVersion=$k8s_version -X $pkg.gitMajor=1 -X $pkg.gitMinor=${minor#*.} -X $pkg.gitTreeState=clean"
done
key() { cat "$@" | sha256sum | cut -c1-12; } # <files...>
k8s_dir=$cache/k8s-$k8s_version-etcd-$etcd_version-$(key "$module/go.mod" "$module/go.sum" "$here"/cmd/k8s/*.go <(echo "$k8s_ldflags"))
# kwok pins its own client-go, whatever the release: one build serves every control plane.
kwok_dir=$cache/kwok-$kwok_version-$(key "$here/kwok.version" <(echo "$ldflags"))
helm_dir=$cache/helm-$helm_version-$(echo "$ldflags" | sha256sum | cut -c1-8)
promtool_ldflags="$ldflags -X github.com/prometheus/common/version.Version=$promtool_version"
# Without Prometheus's service discoveries (AWS, Azure, GCE, Kubernetes...: the remove_all_sd tag of
# plugins/): promtool checks and tests rules with none of them, and they are most of its cold compile.
promtool_tags=remove_all_sd
promtool_dir=$cache/promtool-$promtool_version-$(key "$here/promtool.version" <(echo "$promtool_ldflags $promtool_tags"))
# Argo Rollouts, like Kubernetes, pins staging modules with replace lines, which `go install module@version`
# refuses: its wrapper module (argo-rollouts/go.mod) names the controller as a tool and pins the version.
argo_module=$here/argo-rollouts
argo_version=$(awk '$1 == "github.com/argoproj/argo-rollouts" { print $2 }' "$argo_module/go.mod")
argo_ldflags="$ldflags -X github.com/argoproj/argo-rollouts/utils/version.version=${argo_version#v}"
argo_dir=$cache/argo-rollouts-$argo_version-$(key "$argo_module/go.mod" "$argo_module/go.sum" <(echo "$argo_ldflags"))
argo_go=$(awk '$1 == "go" { print $2 }' "$argo_module/go.mod")
# Its CRDs come from crds.list: the same release, or the tests would run a controller on another schema.
grep -q "^github.com/argoproj/argo-rollouts@$argo_version " "$here/crds.list" || {
  log "crds.list names no Argo Rollouts CRD of $argo_version, the release argo-rollouts/go.mod builds"
  exit 1
}

export GOTOOLCHAIN=local GOFLAGS= CGO_ENABLED=0
export GOMODCACHE=$cache/gomod GOCACHE=$cache/gocache

tmps=()
trap 'rm -rf "${tmps[@]}"' EXIT
scratch() { # <name>: sets tmp to a new folder in the cache, removed at exit unless moved into place
  tmp=$(mktemp -d "$cache/.build-$1.XXXXXX")
  tmps+=("$tmp")
}
# Moves a finished build into place in one rename, so a reader sees all of it or none.
publish() { # <temporary folder> <final folder>
  rm -rf "$2"
  mv "$1" "$2"
}

need_go() { # <what>
  command -v go >/dev/null || { log "go is not installed: $1 is built from Go modules (Go >= $go_version)"; exit 1; }
}

# The Go for Argo Rollouts and the CRD modules, whose go.mod may ask for a newer patch release than the
# machine's Go (argo-rollouts v1.10.2: go 1.26.10): the local Go when it is new enough, else exactly that
# release, which go fetches once as a module through the proxy (into GOMODCACHE).
argo_toolchain() {
  local have
  have=$(go env GOVERSION)
  have=${have#go}
  have=${have%% *}
  if [ "$(printf '%s\n%s\n' "$argo_go" "$have" | sort -V | head -n 1)" = "$argo_go" ]; then
    echo local
  else
    echo "go$argo_go"
  fi
}

# go build -v and go install -v name each package as it is compiled; count them against the dependency
# total (? when unknown).
build_with_progress() { # <label> <total> <build|install> <args...>
  local label=$1 total=$2 verb=$3
  shift 3
  local start=$SECONDS
  go "$verb" -v "$@" 2>&1 | awk -v label="$label" -v total="$total" '
    /^(#|go: |[^ ]+\.go:)/ || /error/ { print; fflush(); next }   # compiler output and errors verbatim
    { n++; if (n % 50 == 0) { printf "[cluster-build] %s: %d/%s packages\n", label, n, total; fflush() } }
  ' >&2
  local rc=${PIPESTATUS[0]}
  [ "$rc" -eq 0 ] || { log "$label: go $verb failed (exit $rc)"; return "$rc"; }
  log "$label: built in $((SECONDS - start))s"
}

if [ -x "$k8s_dir/k8s" ]; then
  log "Kubernetes $k8s_version: using the cached binary in $k8s_dir"
else
  need_go "Kubernetes $k8s_version"
  log "cold build of Kubernetes $k8s_version and etcd $etcd_version into $k8s_dir"
  log "(on 2 cores this takes several minutes; later runs reuse it)"
  scratch k8s
  # The module of the release, with the one main package every release shares.
  mkdir "$tmp/src"
  cp "$module/go.mod" "$module/go.sum" "$here"/cmd/k8s/*.go "$tmp/src/"
  (
    cd "$tmp/src"
    log "downloading modules"
    go mod download
    build_with_progress "Kubernetes $k8s_version" "$(go list -deps . | wc -l)" build -trimpath \
      -ldflags="$k8s_ldflags" -o "$tmp/k8s" .
  )
  rm -rf "$tmp/src"
  publish "$tmp" "$k8s_dir"
fi

if [ -x "$kwok_dir/kwok" ] && [ -s "$kwok_dir/kwok-stages.yaml" ]; then
  log "kwok $kwok_version: using the cached binary in $kwok_dir"
else
  need_go "kwok $kwok_version"
  log "cold build of kwok $kwok_version into $kwok_dir"
  scratch kwok
  (cd "$tmp" && GOBIN="$tmp" build_with_progress "kwok $kwok_version" '?' install -trimpath \
    -ldflags="$ldflags" "sigs.k8s.io/kwok/cmd/kwok@$kwok_version")
  # kwok >= 0.8 has no built-in stages: give it upstream's "fast" node and pod stages and node leases.
  kwok_src=$(cd "$tmp" && go mod download -json "sigs.k8s.io/kwok@$kwok_version" | awk -F'"' '$2 == "Dir" { print $4 }')
  for f in node/fast/node-initialize.yaml node/heartbeat-with-lease/node-heartbeat-with-lease.yaml \
    pod/fast/pod-ready.yaml pod/fast/pod-complete.yaml pod/fast/pod-delete.yaml; do
    printf -- '---\n'
    cat "$kwok_src/kustomize/stage/$f"
  done >"$tmp/kwok-stages.yaml"
  publish "$tmp" "$kwok_dir"
fi

if ! $control_plane_only; then
  # helm renders the chart in manifests/helm (test/integration/helm.test.ts); its own module build, cached
  # apart from the control plane so a helm bump rebuilds only helm.
  if [ -x "$helm_dir/helm" ]; then
    log "helm $helm_version: using the cached binary in $helm_dir"
  else
    need_go "helm $helm_version"
    log "cold build of helm $helm_version into $helm_dir"
    scratch helm
    (cd "$tmp" && GOBIN="$tmp" build_with_progress "helm $helm_version" '?' install -trimpath \
      -ldflags="$ldflags" "helm.sh/helm/v4/cmd/helm@$helm_version")
    publish "$tmp" "$helm_dir"
  fi

  # promtool checks and unit-tests the chart's PrometheusRule (test/integration/alerts.test.ts); built from
  # the Prometheus module like helm, cached apart so a Prometheus bump rebuilds only promtool.
  if [ -x "$promtool_dir/promtool" ]; then
    log "promtool $promtool_version: using the cached binary in $promtool_dir"
  else
    need_go "promtool $promtool_version"
    log "cold build of promtool $promtool_version into $promtool_dir"
    scratch promtool
    (cd "$tmp" && GOBIN="$tmp" build_with_progress "promtool $promtool_version" '?' install -trimpath \
      -tags="$promtool_tags" -ldflags="$promtool_ldflags" "github.com/prometheus/prometheus/cmd/promtool@$promtool_version")
    publish "$tmp" "$promtool_dir"
  fi

  # The Argo Rollouts controller (test/support/argo-rollouts.ts runs it against the test control plane).
  if [ -x "$argo_dir/rollouts-controller" ]; then
    log "Argo Rollouts $argo_version: using the cached binary in $argo_dir"
  else
    need_go "Argo Rollouts $argo_version"
    log "cold build of the Argo Rollouts $argo_version controller into $argo_dir"
    scratch argo-rollouts
    mkdir "$tmp/src"
    cp "$argo_module/go.mod" "$argo_module/go.sum" "$tmp/src/"
    (
      cd "$tmp/src"
      GOTOOLCHAIN=$(argo_toolchain)
      export GOTOOLCHAIN
      controller=github.com/argoproj/argo-rollouts/cmd/rollouts-controller
      build_with_progress "Argo Rollouts $argo_version" "$(go list -deps "$controller" | wc -l)" build -trimpath \
        -ldflags="$argo_ldflags" -o "$tmp/rollouts-controller" "$controller"
    )
    rm -rf "$tmp/src"
    publish "$tmp" "$argo_dir"
  fi

  # The CRDs of crds.list, from the module proxy (cached in GOMODCACHE).
  crds=$root/.local/crds
  mkdir -p "$crds"
  grep -v '^#' "$here/crds.list" | while read -r mod file; do
    [ -n "$mod" ] || continue
    target=$crds/$(basename "$file")
    [ -s "$target" ] && continue
    # argo-rollouts' go.mod asks for a newer Go than some machines have, even to fetch its files.
    dir=$(cd "$cache" && GOTOOLCHAIN=$(argo_toolchain) go mod download -json "$mod" | awk -F'"' '$2 == "Dir" { print $4 }')
    [ -s "$dir/$file" ] || { log "$mod has no $file"; exit 1; }
    install -m 0644 "$dir/$file" "$target.tmp"
    mv "$target.tmp" "$target"
    log "CRD $(basename "$file") from $mod"
  done
fi

if ! $link; then
  log "Kubernetes $k8s_version (KUBE=${KUBE:-newest}) is in the cache; nothing linked (--cache-only)"
  exit 0
fi

# .local/bin holds the selected release; cluster.sh records which one each control plane runs.
mkdir -p "$root/.local/bin"
for name in etcd kube-apiserver kube-controller-manager kube-scheduler kubectl; do
  ln -sfn "$k8s_dir/k8s" "$root/.local/bin/$name"
done
ln -sfn "$kwok_dir/kwok" "$root/.local/bin/kwok"
ln -sfn "$kwok_dir/kwok-stages.yaml" "$root/.local/bin/kwok-stages.yaml"
if ! $control_plane_only; then
  ln -sfn "$helm_dir/helm" "$root/.local/bin/helm"
  ln -sfn "$promtool_dir/promtool" "$root/.local/bin/promtool"
  ln -sfn "$argo_dir/rollouts-controller" "$root/.local/bin/rollouts-controller"
fi
echo "$k8s_version" >"$root/.local/bin/kube-version.tmp"
mv "$root/.local/bin/kube-version.tmp" "$root/.local/bin/kube-version"
log "Kubernetes $k8s_version (KUBE=${KUBE:-newest}) linked into .local/bin"
