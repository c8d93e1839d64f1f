#!/usr/bin/env bash
# The packed package installed by pnpm and by yarn 1 (scripts/check-install.mjs --pm), as npm
# installs it in .ci/run's own step: no addon built on install (yarn 1 runs `node-gyp rebuild`
# for any package with a binding.gyp, so the package ships none), the addon the loader picks
# from the prebuilds, an engine equal to onnxruntime-node, doctor. pnpm (its linux-x64 build)
# and yarn come from the npm registry, pinned in scripts/npm-cache.sh and kept in .cache/.
#
#   bash scripts/test-package-managers.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/npm-cache.sh
export ONNXRUNTIME_NODE_INSTALL=skip

unpack @pnpm/exe.linux-x64 "$PNPM_VERSION" ".cache/pnpm/$PNPM_VERSION"
unpack yarn "$YARN_VERSION" ".cache/yarn/$YARN_VERSION"
printf '\n::: pnpm %s: the installed package\n' "$PNPM_VERSION"
PATH="$PWD/.cache/pnpm/$PNPM_VERSION/package:$PATH" node scripts/check-install.mjs --pm=pnpm
printf '\n::: yarn %s: the installed package\n' "$YARN_VERSION"
PATH="$PWD/.cache/yarn/$YARN_VERSION/package/bin:$PATH" node scripts/check-install.mjs --pm=yarn
