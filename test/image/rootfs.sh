#!/usr/bin/env bash
# rootfs.sh <image id>: the image's root filesystem unpacked for runc, and its OCI configuration, cached
# outside the repository by image id (written to a temporary directory, then renamed). Prints the
# directory, which holds rootfs/ and image.json (`buildah inspect`: .OCIv1.config is the image's
# configuration). runc runs it read-only: it only creates the mount points it is given, so one copy
# serves every run.
set -euo pipefail

id=${1:?usage: rootfs.sh <image id>}
cache_home=${XDG_CACHE_HOME:-${HOME:+$HOME/.cache}}
cache=${WAVE_IMAGE_CACHE:-${cache_home:-/var/tmp}/wave-image}
dir=$cache/rootfs-${id:0:12}
log() { printf '[image] %s\n' "$*" >&2; }

if [ ! -f "$dir/image.json" ]; then
  mkdir -p "$cache"
  start=$SECONDS
  tmp=$(mktemp -d "$cache/.rootfs.XXXXXX")
  ctr=
  cleanup() {
    [ -z "$ctr" ] || { buildah umount "$ctr" >/dev/null 2>&1; buildah rm "$ctr" >/dev/null 2>&1; } || true
    rm -rf "$tmp"
  }
  trap cleanup EXIT
  ctr=$(buildah from --quiet --pull=never "$id")
  mnt=$(buildah mount "$ctr")
  cp -a "$mnt" "$tmp/rootfs"
  buildah inspect --type image "$id" >"$tmp/image.json"
  # Complete only once renamed into place.
  rm -rf "$dir"
  mv "$tmp" "$dir"
  log "unpacked ${id:0:12} into $dir in $((SECONDS - start))s"
fi
# Each run marks its copy as used; others' unused for an hour are stale (a test runs for minutes, and
# another checkout's may be running from its own copy right now).
touch "$dir"
find "$cache" -mindepth 1 -maxdepth 1 -name 'rootfs-*' ! -path "$dir" -mmin +60 -exec rm -rf {} +
echo "$dir"
