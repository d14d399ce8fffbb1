#!/usr/bin/env bash
# Stand-ins for the Dockerfile's two base images, made from parts these machines can reach: Debian
# bookworm from Debian's packages (mmdebstrap) and the Node 24 binary of the pinned `node` devDependency
# (npm ci). The real ones come from registries that are not reachable here.
#
#   build: like node:24-bookworm-slim: a minimal Debian with apt and a shell, node at /usr/local/bin/node,
#          npm (from the npm registry) at /usr/local/lib/node_modules/npm, a `node` user 1000.
#   run:   like gcr.io/distroless/nodejs24-debian12:nonroot: Debian's libraries extracted from their
#          packages without running any maintainer script (as distroless does), no shell, no package
#          manager, no /bin at all; node at /nodejs/bin/node, user nonroot 65532, CA bundle, tzdata.
#
# The root filesystems are cached as tarballs outside the repository, keyed by this file, node's and npm's
# versions and the Debian sources; each is written to a temporary directory and renamed into place, so an
# interrupted run leaves nothing half-written behind. Imported into the containers storage as
# localhost/wave-standin-{build,run}:<key>. Prints `NODE_BUILD_IMAGE=...` and `NODE_RUN_IMAGE=...` on stdout;
# progress goes to stderr.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
cache_home=${XDG_CACHE_HOME:-${HOME:+$HOME/.cache}}
cache=${WAVE_IMAGE_CACHE:-${cache_home:-/var/tmp}/wave-image}
suite=bookworm
mirror=${WAVE_DEBIAN_MIRROR:-http://deb.debian.org/debian}
security_mirror=${WAVE_DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
# The npm the build stage runs (the real node:24 image ships an npm 11 too).
npm_version=${WAVE_STANDIN_NPM_VERSION:-11.21.2}
node=$root/node_modules/node/bin/node

log() { printf '[image] %s\n' "$*" >&2; }
need() { command -v "$1" >/dev/null || { log "$1 is missing: $2"; exit 1; }; }
need mmdebstrap 'apt-get install mmdebstrap (the stand-ins are Debian bookworm from its packages)'
need buildah 'apt-get install buildah'
[ -x "$node" ] || { log "$node is missing: run npm ci (the pinned node devDependency ships it)"; exit 1; }

node_version=$("$node" --version)
case "$node_version" in
  v24.*) ;;
  *) log "$node is $node_version, not Node 24"; exit 1 ;;
esac
sources=(
  "deb $mirror $suite main"
  "deb $mirror $suite-updates main"
  "deb $security_mirror $suite-security main"
)
key=$( (cat "${BASH_SOURCE[0]}"; echo "$node_version $npm_version"; printf '%s\n' "${sources[@]}") | sha256sum | cut -c1-12)
dir=$cache/standins-$key
mkdir -p "$cache"

# Docs, manuals and locales are not part of either real image's job; leave them out of the packages.
slim=(
  --dpkgopt='path-exclude=/usr/share/doc/*'
  --dpkgopt='path-include=/usr/share/doc/*/copyright'
  --dpkgopt='path-exclude=/usr/share/man/*'
  --dpkgopt='path-exclude=/usr/share/info/*'
  --dpkgopt='path-exclude=/usr/share/locale/*'
  --dpkgopt='path-exclude=/usr/share/lintian/*'
)

# <tarball>: the build stage's base.
make_build_rootfs() {
  local tarball=$1 npm_tgz
  npm_tgz=$(cd "$tmp" && npm pack --silent --cache "$tmp/npm-cache" "npm@$npm_version")
  mmdebstrap --quiet --variant=minbase --include=ca-certificates "${slim[@]}" \
    --customize-hook="install -D -m 0755 '$node' \"\$1/usr/local/bin/node\"" \
    --customize-hook="mkdir -p \"\$1/usr/local/lib/node_modules/npm\" && tar -xzf '$tmp/$npm_tgz' --strip-components=1 --no-same-owner -C \"\$1/usr/local/lib/node_modules/npm\"" \
    --customize-hook='ln -s ../lib/node_modules/npm/bin/npm-cli.js "$1/usr/local/bin/npm"' \
    --customize-hook='ln -s ../lib/node_modules/npm/bin/npx-cli.js "$1/usr/local/bin/npx"' \
    --customize-hook='echo "node:x:1000:1000::/home/node:/bin/bash" >>"$1/etc/passwd" && echo "node:x:1000:" >>"$1/etc/group" && mkdir -p "$1/home/node" && chown 1000:1000 "$1/home/node"' \
    --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*' \
    "$suite" "$tarball" "${sources[@]}" >&2
}

# <tarball>: the run stage's base. Packages are extracted, not installed (as distroless does: no
# maintainer script runs); their dependencies (debconf, perl, openssl, mawk) come along, and every
# executable but node is removed afterwards, with dpkg's and apt's state, so nothing can run a shell.
make_run_rootfs() {
  local tarball=$1 rootfs=$tmp/run-rootfs
  mmdebstrap --quiet --variant=extract \
    --include=base-files,netbase,tzdata,libc6,libgcc-s1,libstdc++6,libssl3,ca-certificates \
    "$suite" "$rootfs" "${sources[@]}" >&2
  (
    cd "$rootfs"
    cat usr/share/ca-certificates/mozilla/*.crt >etc/ssl/certs/ca-certificates.crt
    rm -rf bin sbin usr/bin usr/sbin usr/games usr/local/bin usr/local/sbin usr/share/perl* \
      usr/lib/x86_64-linux-gnu/perl* usr/share/debconf usr/share/doc usr/share/man usr/share/info \
      usr/share/locale usr/share/lintian var/cache/debconf var/lib/dpkg var/lib/apt var/cache/apt \
      var/log/* etc/apt etc/dpkg etc/hostname etc/resolv.conf usr/lib/ssl/misc
    install -D -m 0755 "$node" nodejs/bin/node
    printf '%s\n' root:x:0:0:root:/root:/sbin/nologin nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin \
      nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin >etc/passwd
    printf '%s\n' root:x:0: nobody:x:65534: tty:x:5: staff:x:50: nonroot:x:65532: >etc/group
    install -d -m 0700 root
    install -d -m 0700 -o 65532 -g 65532 home/nonroot
    install -d -m 1777 tmp
  )
  tar --numeric-owner -C "$rootfs" -cf "$tarball" .
  rm -rf "$rootfs"
}

tmp=
cleanup() { [ -z "$tmp" ] || rm -rf "$tmp"; }
trap cleanup EXIT
mkdir -p "$dir"
for stage in build run; do
  if [ -f "$dir/$stage.tar" ]; then
    log "stand-in $stage root filesystem cached in $dir"
    continue
  fi
  start=$SECONDS
  log "making the $stage stand-in's root filesystem (Debian $suite, node $node_version, npm $npm_version) into $dir"
  tmp=$(mktemp -d "$cache/.standin-$stage.XXXXXX")
  "make_${stage}_rootfs" "$tmp/$stage.tar"
  mv "$tmp/$stage.tar" "$dir/$stage.tar"
  rm -rf "$tmp"
  tmp=
  log "$stage stand-in made in $((SECONDS - start))s"
done

# Older stand-ins (another recipe, node or npm) are not used by anything any more.
for old in "$cache"/standins-*; do
  [ "$old" = "$dir" ] || [ ! -d "$old" ] || { log "removing $old"; rm -rf "$old"; }
done

# The build stage's npm must trust what this machine's npm trusts: here the npm registry is reached
# through a TLS-inspecting proxy whose CA only the host's bundle holds (npm config get cafile). A real
# build behind such a proxy needs the same; the run stage needs none of it.
# (npm's cache in ours: with an empty HOME, npm would make a directory named ~ in the working directory.)
ca_file=${WAVE_IMAGE_BUILD_CA-$(npm config get cafile --cache "$cache/.npm" 2>/dev/null || true)}
[ "$ca_file" != null ] && [ "$ca_file" != undefined ] || ca_file=${NODE_EXTRA_CA_CERTS:-}
build_tag=$key
if [ -n "$ca_file" ] && [ -f "$ca_file" ]; then
  build_tag=$key-ca$(sha256sum "$ca_file" | cut -c1-8)
else
  ca_file=
fi

# <name> <tarball> <extra file or ''> <buildah config args...>: a one-layer image from the root
# filesystem, unless present.
import_image() {
  local name=$1 tarball=$2 extra=$3 ctr
  shift 3
  if buildah inspect --type image "$name" >/dev/null 2>&1; then return; fi
  log "importing $name"
  ctr=$(buildah from --quiet scratch)
  buildah add --quiet "$ctr" "$tarball" / >/dev/null
  if [ -n "$extra" ]; then
    buildah copy --quiet "$ctr" "$extra" /usr/local/share/wave-build-ca.crt >/dev/null
    set -- "$@" --env NODE_EXTRA_CA_CERTS=/usr/local/share/wave-build-ca.crt
  fi
  buildah config --created-by "stand-in base image (test/image/standins.sh)" "$@" "$ctr"
  buildah commit --quiet --rm "$ctr" "$name" >/dev/null
}

build_image=localhost/wave-standin-build:$build_tag
run_image=localhost/wave-standin-run:$key
import_image "$build_image" "$dir/build.tar" "$ca_file" \
  --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin --env NODE_VERSION="${node_version#v}" \
  --cmd node
import_image "$run_image" "$dir/run.tar" '' \
  --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  --env SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
  --user 65532 --workingdir /home/nonroot --entrypoint '["/nodejs/bin/node"]'
for old in $(buildah images --format '{{.Name}}:{{.Tag}}' | grep -E '^localhost/wave-standin-(build|run):' || true); do
  [ "$old" = "$build_image" ] || [ "$old" = "$run_image" ] || buildah rmi "$old" >/dev/null 2>&1 || true
done
echo "NODE_BUILD_IMAGE=$build_image"
echo "NODE_RUN_IMAGE=$run_image"
