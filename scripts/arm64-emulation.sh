# Sourced by scripts that run arm64 programs on an x64 machine (prebuild-portable.sh loads the
# arm64 prebuild with them, test-node-lines.sh installs the package on an arm64 Node): qemu's
# user-mode emulation, run through binfmt_misc so that the Node processes an arm64 Node starts
# are emulated too. Needs root. qemu comes from Debian 12's backports (10.x, static), unpacked
# into .cache/qemu, not installed: Debian 12's own 7.2 shows arm64 programs the host's
# /proc/cpuinfo, and onnxruntime's CPU detection crashes on it. The arm64 C and C++ libraries
# are Debian 11's, from the cross compiler in prebuild:portable's tree (QEMU_LD_PREFIX).
arm64_binfmt=/proc/sys/fs/binfmt_misc
arm64_entry=tensorrt-node-aarch64
arm64_sysroot_in_tree=/usr/aarch64-linux-gnu

arm64_fetch_qemu() {
  [ ! -x .cache/qemu/usr/bin/qemu-aarch64 ] || return 0
  rm -rf .cache/qemu .cache/apt && mkdir -p .cache/qemu .cache/apt/lists/partial .cache/apt/cache/archives/partial
  echo "deb ${DEBIAN_MIRROR:-http://deb.debian.org/debian} bookworm-backports main" > .cache/apt/sources.list
  local apt_private=(-o Dir::Etc::SourceList="$PWD/.cache/apt/sources.list" -o Dir::Etc::SourceParts=/dev/null
    -o Dir::State::Lists="$PWD/.cache/apt/lists" -o Dir::Cache="$PWD/.cache/apt/cache"
    -o Acquire::Retries=3 -o APT::Sandbox::User=root)
  apt-get "${apt_private[@]}" -q update
  (cd .cache/qemu && apt-get "${apt_private[@]}" download qemu-user && dpkg-deb -x qemu-user_*.deb . && rm qemu-user_*.deb)
  # Only the arm64 emulator and its binfmt line are used (the package holds every target's).
  find .cache/qemu/usr/bin -type f ! -name qemu-aarch64 -delete
  rm -rf .cache/qemu/usr/libexec .cache/qemu/usr/share/doc .cache/qemu/usr/share/man
}

# F: the kernel opens qemu now and keeps it, so it serves inside a chroot as well.
arm64_register() {
  [ -e "$arm64_binfmt/register" ] || mount -t binfmt_misc binfmt_misc "$arm64_binfmt" || {
    echo "arm64 emulation: binfmt_misc is not available here" >&2
    return 1
  }
  arm64_unregister # one left by a run cut short
  sed -e "s#^:qemu-aarch64:#:$arm64_entry:#" -e "s#:[^:]*:[A-Z]*\$#:$PWD/.cache/qemu/usr/bin/qemu-aarch64:F#" \
    .cache/qemu/usr/share/qemu/binfmt.d/qemu-aarch64.conf > "$arm64_binfmt/register"
}

arm64_unregister() {
  [ ! -e "$arm64_binfmt/$arm64_entry" ] || echo -1 > "$arm64_binfmt/$arm64_entry"
}
