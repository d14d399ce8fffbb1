#!/usr/bin/env bash
# `make image`: builds the image from the project's own Dockerfile, unchanged, with buildah, on local
# stand-ins of its two base images (standins.sh: the real ones come from registries these machines cannot
# reach), then prints the image's size and the size of each layer.
#
# The image is tagged localhost/wave:src-<key>, keyed by the build context (what .dockerignore lets in),
# the Dockerfile and the stand-ins, and localhost/wave:dev; a second run with the same sources reuses it
# without building (--rebuild builds anyway, through buildah's layer cache). --compressed also prints the
# gzip-compressed sizes, what a registry stores and a node pulls (`make image` does). The last line of
# stdout is `IMAGE_ID=<id>`. Progress goes to stderr.
set -euo pipefail

rebuild=false compressed=false
for arg in "$@"; do
  case "$arg" in
    --rebuild) rebuild=true ;;
    --compressed) compressed=true ;;
    *) echo "usage: build.sh [--rebuild] [--compressed]" >&2; exit 2 ;;
  esac
done

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
log() { printf '[image] %s\n' "$*" >&2; }
for tool in buildah podman; do
  command -v "$tool" >/dev/null || { log "$tool is missing: apt-get install $tool"; exit 1; }
done

# What a run killed mid-way left in the cache: temporary directories, never renamed into place.
cache_home=${XDG_CACHE_HOME:-${HOME:+$HOME/.cache}}
cache=${WAVE_IMAGE_CACHE:-${cache_home:-/var/tmp}/wave-image}
[ ! -d "$cache" ] || find "$cache" -mindepth 1 -maxdepth 1 -name '.*' -mmin +120 -exec rm -rf {} +

start=$SECONDS
standins=$(bash "$here/standins.sh")
NODE_BUILD_IMAGE=$(sed -n 's/^NODE_BUILD_IMAGE=//p' <<<"$standins")
NODE_RUN_IMAGE=$(sed -n 's/^NODE_RUN_IMAGE=//p' <<<"$standins")
log "stand-ins ready in $((SECONDS - start))s: $NODE_BUILD_IMAGE, $NODE_RUN_IMAGE"

# The build context exactly as .dockerignore lets it in, plus the Dockerfile and the stand-ins' ids.
key=$(
  cd "$root"
  find package.json package-lock.json tsconfig.json tsconfig.build.json src Dockerfile .dockerignore \
    -type f -print0 | sort -z | xargs -0 sha256sum
  for base in "$NODE_BUILD_IMAGE" "$NODE_RUN_IMAGE"; do buildah inspect --type image --format '{{.FromImageID}}' "$base"; done
)
key=$(sha256sum <<<"$key" | cut -c1-12)
image=localhost/wave:src-$key

if ! $rebuild && buildah inspect --type image "$image" >/dev/null 2>&1; then
  log "$image is built from these sources already"
else
  start=$SECONDS
  log "buildah bud of $root/Dockerfile"
  # chroot isolation: RUN steps work here as root without the namespaces podman's runtimes cannot set up
  # in this sandbox (docs: containers-here). --pull=never: nothing may come from a registry.
  buildah bud --isolation=chroot --layers --force-rm --pull=never \
    --build-arg "NODE_BUILD_IMAGE=$NODE_BUILD_IMAGE" --build-arg "NODE_RUN_IMAGE=$NODE_RUN_IMAGE" \
    -f "$root/Dockerfile" -t "$image" "$root" >&2
  log "built in $((SECONDS - start))s"
fi
buildah tag "$image" localhost/wave:dev
# Images of other sources made over an hour ago (a newer one may be another checkout's, about to be
# unpacked); buildah's layer cache (untagged) stays, so the next change still builds warm.
for old in $(podman images --filter 'reference=localhost/wave:src-*' --filter until=1h \
  --format '{{.Repository}}:{{.Tag}}' | grep '^localhost/wave:src-' || true); do
  [ "$old" = "$image" ] || buildah rmi "$old" >/dev/null 2>&1 || true
done
id=$(buildah inspect --type image --format '{{.FromImageID}}' "$image")

# Sizes as the storage holds them (uncompressed, as on a node's disk).
size=$(podman image inspect --format '{{.Size}}' "$id")
human() { numfmt --to=iec --suffix=B --format='%.1f' "$1"; }
echo "image $image (localhost/wave:dev), id ${id:0:12}: $(human "$size") uncompressed"
echo "layers, base first:"
podman history --no-trunc --format '{{.Size}}	{{.CreatedBy}}' "$id" | tac |
  awk -F '\t' '$1 !~ /^0 ?B$/ { sub(/^\/bin\/sh -c #\(nop\) /, "", $2); printf "  %9s  %s\n", $1, substr($2, 1, 100) }'
if $compressed; then
  oci=$(mktemp -d "$cache/.oci.XXXXXX")
  trap 'rm -rf "$oci"' EXIT
  buildah push --quiet --compression-format gzip "$id" "oci:$oci/layout:wave" >/dev/null
  "$root/node_modules/node/bin/node" -e '
    const { readFileSync } = require("node:fs");
    const blob = (d) => JSON.parse(readFileSync(`${process.argv[1]}/blobs/${d.replace(":", "/")}`, "utf8"));
    const index = JSON.parse(readFileSync(`${process.argv[1]}/index.json`, "utf8"));
    const layers = blob(index.manifests[0].digest).layers.map((l) => l.size);
    const mb = (n) => `${(n / 1e6).toFixed(1)} MB`;
    console.log(`compressed (gzip): ${mb(layers.reduce((a, b) => a + b, 0))}; layers, base first: ${layers.map(mb).join(", ")}`);
  ' "$oci/layout"
fi
echo "IMAGE_ID=$id"
