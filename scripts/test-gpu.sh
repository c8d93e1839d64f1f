#!/usr/bin/env bash
# The GPU check (`npm run test:gpu`): one prepared script for a lent GPU
# (an H200 here), not part of `npm test`. Three modes:
#
#   npm run test:gpu -- --prepare   on the CPU machine, before the device run: fills .gpu-carry/
#                                   (git-ignored) with what the device machine lacks - the node
#                                   binary (xz), Node's N-API headers, the GPU run bundled into one
#                                   .mjs, MNIST data with the quantizer's INT8 model and ONNX
#                                   Runtime reference logits - and prints the device call to make.
#   npm run test:gpu                on the GPU machine: finds node (else unpacks the carried one),
#                                   builds the addon with CUDA and native/gpu_check for the GPU it
#                                   finds (sm_90 on an H200), runs the checks, prints one table.
#   npm run test:gpu -- --dry-run   anywhere: node detection, argument parsing, the nvcc compile of
#                                   native/gpu_check, and the table with every row pending.
#
# Options: --calls N (default 100000: the leak check's calls), --out DIR (default $OUT, else build/gpu-check).
# The TensorRT part runs where TensorRT is on the device (TENSORRT_ROOT=<sdk>, or libnvinfer.so.10/11
# from ldconfig or pip's tensorrt_libs with headers carried by --prepare): it builds the real providers
# and compares MNIST FP32 and INT8 engines with ONNX Runtime. Without TensorRT the table says so.
set -uo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
mode=gpu
calls=100000
out="${OUT:-$root/build/gpu-check/out}"
while [ "$#" -gt 0 ]; do
  case "$1" in
    --prepare) mode=prepare ;;
    --dry-run) mode=dry-run ;;
    --calls) calls="$2"; shift ;;
    --out) out="$2"; shift ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    *) echo "test:gpu: unknown argument $1 (try --help)" >&2; exit 2 ;;
  esac
  shift
done
case "$calls" in ''|*[!0-9]*) echo "test:gpu: --calls needs a number, got '$calls'" >&2; exit 2 ;; esac

carry="$root/.gpu-carry"
work="$root/build/gpu-check"
mkdir -p "$work" "$out"
say() { printf '[test:gpu] %s\n' "$*" >&2; }

# Node >= 20 on the PATH, else the binary carried in .gpu-carry/node.xz.
find_node() {
  local carried_only="${1:-}"
  if [ -z "$carried_only" ] && command -v node >/dev/null 2>&1 && node -e 'process.exit(+process.versions.node.split(".")[0] >= 20 ? 0 : 1)'; then
    say "node $(node -v) at $(command -v node)"
    return 0
  fi
  if [ -f "$carry/node.xz" ]; then
    mkdir -p /tmp/tnp-node/bin
    if command -v xz >/dev/null 2>&1; then
      xz -dc "$carry/node.xz" > /tmp/tnp-node/bin/node || return 1
    else  # no xz-utils: Python's lzma reads the same file
      python3 -c 'import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2], "wb"))' \
        "$carry/node.xz" /tmp/tnp-node/bin/node || return 1
    fi
    chmod +x /tmp/tnp-node/bin/node
    export PATH="/tmp/tnp-node/bin:$PATH"
    say "node $(node -v) unpacked from .gpu-carry/node.xz"
    return 0
  fi
  say "no Node.js >= 20 here and no .gpu-carry/node.xz: run 'npm run test:gpu -- --prepare' on the CPU machine and carry .gpu-carry"
  return 1
}

nvcc_bin() {
  if command -v nvcc >/dev/null 2>&1; then command -v nvcc; elif [ -x /usr/local/cuda/bin/nvcc ]; then echo /usr/local/cuda/bin/nvcc; fi
}

# Compiles the loopback provider, the bandwidth probe and a libnvinfer stand-in for `arch` (e.g. 90).
build_gpu_check() {
  local arch="$1" nvcc
  nvcc="$(nvcc_bin)"
  [ -n "$nvcc" ] || { say "nvcc not found"; return 1; }
  mkdir -p "$work/providers"
  "$nvcc" -std=c++17 -O2 -arch="sm_$arch" -shared -Xcompiler -fPIC,-fvisibility=hidden,-Wall,-Wextra -cudart static \
    -o "$work/providers/tensorrt_node_provider_trt11.so" native/gpu_check/loopback_provider.cu || return 1
  "$nvcc" -std=c++17 -O2 -arch="sm_$arch" -o "$work/bandwidth" native/gpu_check/bandwidth.cu || return 1
  cc -shared -fPIC -DFAKE_VERSION=110000 -DWITH_PARSER -o "$work/libnvinfer-standin.so" test/tensorrt/fixtures/fake_nvinfer.c || return 1
  say "built native/gpu_check for sm_$arch"
}

if [ "$mode" = prepare ]; then
  mkdir -p "$carry"
  command -v node >/dev/null || { say "prepare needs node here"; exit 1; }
  if [ ! -f "$carry/node.xz" ] || [ "$(command -v node)" -nt "$carry/node.xz" ]; then
    say "compressing $(command -v node) (about 2 minutes on 2 cores)"
    xz -T2 -6 -c "$(readlink -f "$(command -v node)")" > "$carry/node.xz.tmp" && mv "$carry/node.xz.tmp" "$carry/node.xz"
  fi
  nodeinc="$(node -p "require('path').join(process.execPath, '..', '..', 'include', 'node')")"
  [ -f "$nodeinc/node_api.h" ] || nodeinc=/usr/include/node
  mkdir -p "$carry/node-include"
  cp "$nodeinc"/{node_api.h,node_api_types.h,js_native_api.h,js_native_api_types.h} "$carry/node-include/"
  # What the bundle cannot hold travels packed beside it: ONNX Runtime (a native addon; Linux x64
  # files only) and onnx-proto with its protobufjs 6 (loaded through createRequire).
  if [ ! -f "$carry/node-modules.tar.xz" ] || [ package-lock.json -nt "$carry/node-modules.tar.xz" ]; then
    say "packing onnxruntime-node (linux x64) and onnx-proto for the device"
    tar -C node_modules --exclude='onnx-proto/node_modules/protobufjs/dist' --exclude='onnx-proto/node_modules/protobufjs/cli' -cf - \
      onnxruntime-node/package.json onnxruntime-node/dist onnxruntime-node/bin/napi-v6/linux/x64 onnxruntime-common \
      onnx-proto @protobufjs | xz -T2 -6 > "$carry/node-modules.tar.xz.tmp" && mv "$carry/node-modules.tar.xz.tmp" "$carry/node-modules.tar.xz"
  fi
  npx esbuild test/gpu/run.ts --bundle --platform=node --format=esm --target=node20 --outfile="$carry/gpu-run.mjs" \
    --external:onnxruntime-node --external:onnxruntime-common \
    --banner:js="import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" --log-level=warning || exit 1
  # Optional: TensorRT headers for a device machine that has the libraries but no SDK
  # (TNP_TRT_HEADERS_10=/path/include TNP_TRT_HEADERS_11=/path/include). Never committed.
  for major in 10 11; do
    var="TNP_TRT_HEADERS_$major"
    if [ -n "${!var:-}" ]; then
      rm -rf "$carry/trt-include-$major" && cp -r "${!var}" "$carry/trt-include-$major" && say "carrying TensorRT $major headers from ${!var}"
    fi
  done
  if [ -d ../shared/data/mnist ]; then
    node --import tsx test/gpu/prepare.ts ../shared/data/mnist "$carry/mnist" || exit 1
  else
    say "../shared/data/mnist absent: the TensorRT part will have no MNIST data"
  fi
  du -sh "$carry" >&2
  cat >&2 <<EOF
[test:gpu] ready. On the device tool, one call (carry is relative to the repo root):
  run(command: "bash scripts/test-gpu.sh", carry: [".gpu-carry", "node_modules/node-addon-api"], timeout_s: 540)
EOF
  exit 0
fi

if [ "$mode" = dry-run ]; then
  find_node || say "(dry run: continuing with whatever node is here)"
  if [ -f "$carry/node.xz" ]; then  # the device machine's path too: unpack the carried node and run it
    ( PATH="$PATH"; find_node carried && say "carried node runs: $(/tmp/tnp-node/bin/node -e 'console.log(process.version)')" ) ||
      { say "the carried node does not unpack or run"; exit 1; }
  fi
  [ -d "$carry" ] && say ".gpu-carry present ($(du -sh "$carry" | cut -f1))" || say ".gpu-carry absent: the device run needs '--prepare' first"
  if [ -n "$(nvcc_bin)" ]; then build_gpu_check 90 || { say "nvcc compile of native/gpu_check failed"; exit 1; }; else say "no nvcc here: gpu_check compile not checked"; fi
  if [ -f "$carry/gpu-run.mjs" ]; then
    node "$carry/gpu-run.mjs" --dry-run --out "$out" --calls "$calls"
  else
    node --import tsx test/gpu/run.ts --dry-run --out "$out" --calls "$calls"
  fi
  exit $?
fi

# ---- on the GPU machine ----
set -e
find_node
command -v nvidia-smi >/dev/null || { say "nvidia-smi not found: this is not a GPU machine (try --dry-run)"; exit 1; }
gpu="$(nvidia-smi --query-gpu=name,driver_version,compute_cap,memory.total --format=csv,noheader | head -n 1)"
arch="$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader | head -n 1 | tr -d ' .')"
say "GPU: $gpu (sm_$arch)"

# The addon, with CUDA, by plain CMake (cmake-js would fetch Node's headers; they are carried).
nodeinc="$carry/node-include"
[ -f "$nodeinc/node_api.h" ] || nodeinc="$(node -p "require('path').join(process.execPath, '..', '..', 'include', 'node')")"
# TensorRT: an SDK at TENSORRT_ROOT, or libraries on the loader path (ldconfig, or pip's
# tensorrt_libs) with headers carried in .gpu-carry/trt-include-<major> (see --prepare).
trt_args=()
trt_sdk=""
if [ -n "${TENSORRT_ROOT:-}" ] && [ -f "$TENSORRT_ROOT/include/NvInfer.h" ]; then
  trt_sdk="$TENSORRT_ROOT"
  trt_args=(-DTENSORRT_ROOT="$TENSORRT_ROOT")
  export LD_LIBRARY_PATH="$TENSORRT_ROOT/lib:${LD_LIBRARY_PATH:-}"
else
  pylibs="$(python3 -c 'import os, tensorrt_libs; print(os.path.dirname(tensorrt_libs.__file__))' 2>/dev/null || true)"
  [ -n "$pylibs" ] && export LD_LIBRARY_PATH="$pylibs:${LD_LIBRARY_PATH:-}"
  for major in 11 10; do
    if { ldconfig -p 2>/dev/null | grep -q "libnvinfer.so.$major " || ls "$pylibs"/libnvinfer.so.$major* >/dev/null 2>&1; } &&
       [ -f "$carry/trt-include-$major/NvInfer.h" ]; then
      trt_sdk="libnvinfer.so.$major"
      trt_args=(-DTENSORRT_INCLUDE_DIR_$major="$carry/trt-include-$major")
      break
    fi
  done
fi
cmake -S . -B "$work/cmake" -DCMAKE_BUILD_TYPE=Release -DTNP_CUDA=ON -DCMAKE_JS_INC="$nodeinc" \
  -DCMAKE_LIBRARY_OUTPUT_DIRECTORY="$work/addon" "${trt_args[@]}" > "$out/cmake-configure.log" 2>&1 ||
  { tail -n 30 "$out/cmake-configure.log"; exit 1; }
cmake --build "$work/cmake" --parallel "$(nproc)" > "$out/cmake-build.log" 2>&1 || { tail -n 40 "$out/cmake-build.log"; exit 1; }
addon="$work/addon/tensorrt_node.node"
say "addon built: $addon"
build_gpu_check "$arch"

"$work/bandwidth" $((64 << 20)) 20 7 > "$out/bare-bandwidth.json" || { say "bandwidth probe failed: $(cat "$out/bare-bandwidth.json")"; exit 1; }
say "bare cudaMemcpyAsync: $(cat "$out/bare-bandwidth.json")"

# Unpacked where gpu-run.mjs resolves its external imports (Python's tarfile: the image may lack xz).
if [ -f "$carry/node-modules.tar.xz" ] && [ ! -d "$carry/node_modules/onnxruntime-node" ]; then
  python3 -c 'import sys, tarfile; tarfile.open(sys.argv[1]).extractall(sys.argv[2])' "$carry/node-modules.tar.xz" "$carry/node_modules"
fi
runner=(node --expose-gc "$carry/gpu-run.mjs")
[ -f "$carry/gpu-run.mjs" ] || { say "missing .gpu-carry/gpu-run.mjs: run --prepare on the CPU machine"; exit 1; }

# The TensorRT part, with the real SDK, in its own process (the loader decides once per process).
trt_flag=(--tensorrt-skipped "no TensorRT on this machine (TENSORRT_ROOT=<SDK>, or libnvinfer on the loader path with headers carried by --prepare)")
if [ -n "$trt_sdk" ] && [ -d "$carry/mnist" ]; then
  set +e
  TENSORRT_NODE_ADDON_PATH="$addon" "${runner[@]}" --tensorrt "$carry/mnist" --out "$out"
  set -e
  [ -f "$out/trt-rows.json" ] && trt_flag=(--extra-rows "$out/trt-rows.json")
elif [ -n "$trt_sdk" ]; then
  trt_flag=(--tensorrt-skipped "SDK found but .gpu-carry/mnist is missing")
fi

# Everything else through the stand-in provider (a loopback kernel instead of an engine).
set +e
TENSORRT_NODE_ADDON_PATH="$addon" \
TENSORRT_NODE_NVINFER_PATH="$work/libnvinfer-standin.so" \
TENSORRT_NODE_ONNXPARSER_PATH="$work/libnvinfer-standin.so" \
TENSORRT_NODE_PROVIDER_DIR="$work/providers" \
  "${runner[@]}" --bandwidth "$out/bare-bandwidth.json" --out "$out" --driver "$gpu" --calls "$calls" "${trt_flag[@]}" \
  2> "$out/gpu-run.log"
rc=$?
tail -n 5 "$out/gpu-run.log" >&2
exit $rc
