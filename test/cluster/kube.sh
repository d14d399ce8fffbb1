# Which Kubernetes the local control plane is: KUBE names a minor release with a module under
# test/cluster/k8s/ (1.37, 1.34, ...), or `newest` (the default) or `oldest`, the two ends of the range wave
# supports. Adding a release is adding its folder. Sourced by build.sh and cluster.sh; needs $here.

kube_minors() { (cd "$here/k8s" && ls -d -- */ | tr -d / | sort -V); }

# Prints the minor release KUBE selects, or fails naming the releases there are.
kube_minor() {
  local want=${KUBE:-newest} all
  all=$(kube_minors)
  case "$want" in
    newest) tail -n 1 <<<"$all" ;;
    oldest) head -n 1 <<<"$all" ;;
    *)
      if grep -qxF -- "$want" <<<"$all"; then
        echo "$want"
      else
        echo "KUBE=$want: no module for it under test/cluster/k8s/ (there are: $(echo $all); or newest, oldest)" >&2
        return 1
      fi
      ;;
  esac
}

# The exact version (v1.37.2) that the module of a minor release builds.
kube_version() { awk '$1 == "k8s.io/kubernetes" { print $2 }' "$here/k8s/$1/go.mod"; }
