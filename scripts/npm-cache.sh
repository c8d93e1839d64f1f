# Sourced by scripts that need a package from the npm registry as files (Node binaries, npm):
# `unpack <package> <version> <dir>` unpacks <package>@<version> into <dir>/package, once.
# The versions they pin, in one place: the Node lines CI tests beside the machine's Node
# (the first also runs prebuild:portable's build) and the npm it installs with (npm 12 needs
# Node ^22.22.2, ^24.15.0 or >= 26).
NODE_LINES=(22.23.5 24.22.3 26.12.1)
# Lines that also run the whole suite in CI (the installed package is checked on every line):
# the newest; Node 20, the machine's own, runs it before. Node 22 sits between 20 and 24 and its
# suite took ~140 s of a CI run that neared 20 minutes; 24's went too in session 32, when CI
# took 1294 s on an AMD VM (each suite ~200 s; 24 sits between 20 and 26, and Float16Array,
# which Node 20 lacks, is tested on 26).
SUITE_LINES=(26.12.1)
NPM_VERSION=12.2.2
# The other package managers the packed package is installed with (scripts/test-package-managers.sh):
# pnpm's native build for linux-x64 (the pnpm package itself downloads it at install) and yarn 1.
PNPM_VERSION=12.21.0
YARN_VERSION=1.22.22
unpack() {
  if [ ! -d "$3/package" ]; then
    rm -rf "$3" && mkdir -p "$3"
    local tarball
    tarball=$(npm pack --silent --pack-destination "$3" "$1@$2")
    tar -xzf "$3/$tarball" -C "$3" && rm "$3/$tarball"
  fi
}
