#!/usr/bin/env bash
# Compile check of the TensorRT providers, with no TensorRT library needed.
#
#   npm run check:tensorrt -- <tensorrt-headers-10>/include <tensorrt-headers-11>/include [...]
#
# For each header folder: compiles native/tensorrt/provider.cc into
# tensorrt_node_provider_trt<major>.so with -Wall -Wextra -Werror (TensorRT's
# headers as system includes), links it with --no-undefined and without
# libnvinfer, checks that it exports tnp_provider_get alone, then loads it
# against stand-in libnvinfer builds (right major, wrong major, a missing
# symbol) and checks its answers. Then compiles the addon-side TensorRT files
# (which include no TensorRT header) the same way, with CUDA where found.
# The headers are fetched code: never commit them nor anything built here
# (output goes to build/tensorrt-check/, which git ignores).
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
out="$root/build/tensorrt-check"
cuda="${CUDA_HOME:-/usr/local/cuda}"
cxx="${CXX:-g++}"
cc="${CC:-cc}"

if [ "$#" -eq 0 ]; then
  echo "usage: npm run check:tensorrt -- <headers-10.x/include> <headers-11.x/include> [...]" >&2
  echo "Clone https://github.com/NVIDIA/TensorRT at a tag (v10.16, v11.0) and pass its include/ folder;" >&2
  echo "before 10.14 NvOnnxParser.h lives in https://github.com/onnx/onnx-tensorrt (release/10.x-GA): copy it in." >&2
  exit 2
fi
if [ ! -f "$cuda/include/cuda_runtime_api.h" ]; then
  echo "check:tensorrt: TensorRT's headers include cuda_runtime_api.h; set CUDA_HOME (looked in $cuda)" >&2
  exit 2
fi

warn=(-Wall -Wextra -Werror)
mkdir -p "$out"
failures=0
pass() { printf '  ok    %s\n' "$1"; }
flunk() { printf '  FAIL  %s\n' "$1"; failures=$((failures + 1)); }

# Stand-in libraries (see the fixture's comment): one per major, a wrong one, one without a symbol.
fake="$root/test/tensorrt/fixtures/fake_nvinfer.c"
"$cc" -shared -fPIC -o "$out/fake10.so" -DFAKE_VERSION=101600 -DWITH_PARSER "$fake"
"$cc" -shared -fPIC -o "$out/fake11.so" -DFAKE_VERSION=110000 -DWITH_PARSER "$fake"
"$cc" -shared -fPIC -o "$out/fake9.so" -DFAKE_VERSION=90300 "$fake"
"$cc" -shared -fPIC -o "$out/fake_noruntime.so" -DFAKE_VERSION=110000 -DOMIT_RUNTIME "$fake"
"$cc" -o "$out/provider_smoke" native/tensorrt/check/provider_smoke.c -ldl

for inc in "$@"; do
  if [ ! -f "$inc/NvInfer.h" ] || [ ! -f "$inc/NvOnnxParser.h" ]; then
    echo "check:tensorrt: $inc must hold NvInfer.h and NvOnnxParser.h" >&2
    exit 2
  fi
  read -r major minor patch < <(printf '#include <NvInferVersion.h>\nNV_TENSORRT_MAJOR NV_TENSORRT_MINOR NV_TENSORRT_PATCH\n' |
    "$cxx" -E -P -isystem "$inc" -x c++ - | tail -n 1)
  label="$major.$minor.$patch"
  dir="$out/$label"
  mkdir -p "$dir"
  so="$dir/tensorrt_node_provider_trt$major.so"
  echo "TensorRT $label headers: $inc"
  if "$cxx" -std=c++17 -O2 -fPIC -shared -fvisibility=hidden -fvisibility-inlines-hidden "${warn[@]}" \
      -isystem "$inc" -isystem "$cuda/include" -Inative/tensorrt \
      native/tensorrt/provider.cc -o "$so" \
      -Wl,--no-undefined -Wl,--version-script=native/tensorrt/provider.map -ldl; then
    pass "provider.cc compiles with ${warn[*]} and links without libnvinfer -> ${so#"$root"/}"
  else
    flunk "provider.cc against $label"
    continue
  fi
  exports="$(nm -D --defined-only "$so" | awk '{print $3}' | tr '\n' ' ')"
  [ "$exports" = "tnp_provider_get " ] && pass "exports only tnp_provider_get" || flunk "exports: $exports"
  if readelf -d "$so" | grep -q 'NEEDED.*\(nvinfer\|cudart\)'; then flunk "links libnvinfer or cudart"; else pass "no libnvinfer/cudart dependency"; fi

  other=$([ "$major" = 10 ] && echo 11 || echo 10)
  r="$("$out/provider_smoke" "$so" "$out/fake$major.so" "$out/fake$major.so")"
  [[ "$r" == *"status=0"*"can_build=1 load_status=2"* ]] && pass "accepts libnvinfer $major.x; NULL factory -> TNP_E_LIBRARY ($r)" || flunk "right major: $r"
  r="$("$out/provider_smoke" "$so" "$out/fake$other.so")"
  [[ "$r" == *"status=3"* ]] && pass "refuses libnvinfer $other.x with TNP_E_VERSION" || flunk "wrong major: $r"
  r="$("$out/provider_smoke" "$so" "$out/fake9.so")"
  [[ "$r" == *"status=3"* ]] && pass "refuses libnvinfer 9.x with TNP_E_VERSION" || flunk "9.x: $r"
  if [ "$major" = 11 ]; then
    r="$("$out/provider_smoke" "$so" "$out/fake_noruntime.so")"
    [[ "$r" == *"status=2"*"createInferRuntime_INTERNAL"* ]] && pass "missing symbol -> TNP_E_LIBRARY naming it" || flunk "missing symbol: $r"
  fi
done

# Addon-side files: no TensorRT header, N-API and (where found) CUDA.
addon_files=()
while IFS= read -r f; do addon_files+=("$f"); done < <(node -e '
  const s = require("./native/sources.json");
  for (const f of [...(s.addon || []), ...(s.addon_cuda || [])]) if (f.startsWith("native/tensorrt/") && f.endsWith(".cc")) console.log(f);')
node_inc="$(node -p "require('path').join(process.execPath, '..', '..', 'include', 'node')")"
napi_inc="$(node -p "require('node-addon-api').include_dir")"
for f in "${addon_files[@]}"; do
  for cuda_flag in "" "-DTNP_WITH_CUDA"; do
    if "$cxx" -std=c++17 -fsyntax-only -fPIC "${warn[@]}" $cuda_flag -DNAPI_VERSION=8 -DNODE_ADDON_API_DISABLE_DEPRECATED \
        -DNAPI_CPP_EXCEPTIONS -isystem "$node_inc" -isystem "$napi_inc" -isystem "$cuda/include" \
        -Inative/tensorrt -Inative/src -Inative "$f"; then
      pass "$f ${cuda_flag:-(no CUDA)}"
    else
      flunk "$f ${cuda_flag:-(no CUDA)}"
    fi
  done
done

if [ "$failures" -ne 0 ]; then
  echo "check:tensorrt: $failures check(s) failed" >&2
  exit 1
fi
echo "check:tensorrt: all checks passed"
