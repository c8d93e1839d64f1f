# Sourced by scripts that need a package from the npm registry as files (Node binaries, npm):
# `unpack <package> <version> <dir>` unpacks <package>@<version> into <dir>/package, once.
unpack() {
  if [ ! -d "$3/package" ]; then
    rm -rf "$3" && mkdir -p "$3"
    local tarball
    tarball=$(npm pack --silent --pack-destination "$3" "$1@$2")
    tar -xzf "$3/$tarball" -C "$3" && rm "$3/$tarball"
  fi
}
