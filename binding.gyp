# tensorrt-node's addon for node-gyp and prebuildify; CMakeLists.txt builds the same
# sources (native/sources.json) for cmake-js. scripts/gyp-config.cjs answers what
# the toolkit and header settings are (see its comment and README "Building from source").
{
  "variables": {
    "tnp_cuda_root%": "<!(node scripts/gyp-config.cjs cuda)",
    "tnp_uv_include%": "<!(node scripts/gyp-config.cjs uv-include)",
    "tnp_trt10_include%": "<!(node scripts/gyp-config.cjs trt-include 10)",
    "tnp_trt11_include%": "<!(node scripts/gyp-config.cjs trt-include 11)",
    "tnp_provider10%": "<!(node scripts/gyp-config.cjs provider 10)",
    "tnp_provider11%": "<!(node scripts/gyp-config.cjs provider 11)"
  },
  "target_defaults": {
    "cflags_cc": ["-std=c++17", "-fexceptions", "-frtti", "-Wall", "-Wextra"],
    "cflags_cc!": ["-fno-exceptions", "-fno-rtti", "-std=gnu++17"],
    "cflags": ["-fvisibility=hidden"],
    "ldflags": ["-Wl,--exclude-libs,ALL"]
  },
  "targets": [
    {
      "target_name": "tensorrt_node",
      "sources": ["<!@(node scripts/gyp-config.cjs sources addon)"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      # libstdc++ linked in (hidden by --exclude-libs): the prebuilt addon then asks nothing of
      # the system's C++ library, which is older than the builder's on many servers. Its
      # interface to Node (N-API) and to the TensorRT providers (provider_abi.h) is C only.
      "ldflags": ["-static-libstdc++", "-static-libgcc"],
      "defines": [
        "NAPI_VERSION=8",
        "NAPI_CPP_EXCEPTIONS",
        "NODE_ADDON_API_DISABLE_DEPRECATED",
        "NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS",
        "TNP_BUILD_SYSTEM=\"node-gyp\""
      ],
      "conditions": [
        ["tnp_uv_include!=''", {
          "defines": ["TNP_WITH_UV"],
          "cflags_cc": ["-isystem", "<(tnp_uv_include)"]
        }],
        ["tnp_cuda_root!=''", {
          "sources": ["<!@(node scripts/gyp-config.cjs sources addon_cuda)"],
          "defines": ["TNP_WITH_CUDA"],
          "include_dirs": ["<(tnp_cuda_root)/include"],
          "libraries": ["<(tnp_cuda_root)/lib64/libcudart_static.a", "-ldl", "-lrt", "-lpthread"]
        }, {
          "libraries": ["-ldl"]
        }]
      ]
    },
    # The providers link libstdc++ in too: they meet TensorRT through its virtual interfaces
    # and C types only, and TensorRT's own libraries bring the system's libstdc++ they need.
    {
      "target_name": "tensorrt_node_provider_trt10",
      "conditions": [
        ["tnp_provider10==1", {
          "type": "shared_library",
          "product_prefix": "",
          "product_dir": "<(PRODUCT_DIR)",
          "sources": ["<!@(node scripts/gyp-config.cjs sources provider)"],
          "defines": ["TNP_TRT_MAJOR=10"],
          "cflags_cc": ["-isystem", "<(tnp_trt10_include)", "-isystem", "<(tnp_cuda_root)/include", "-Werror"],
          "include_dirs": ["native"],
          "ldflags": ["-Wl,--no-undefined", "-Wl,--version-script=<(module_root_dir)/native/tensorrt/provider.map", "-static-libstdc++", "-static-libgcc"],
          "libraries": ["-ldl"]
        }, {
          "type": "none"
        }]
      ]
    },
    {
      "target_name": "tensorrt_node_provider_trt11",
      "conditions": [
        ["tnp_provider11==1", {
          "type": "shared_library",
          "product_prefix": "",
          "product_dir": "<(PRODUCT_DIR)",
          "sources": ["<!@(node scripts/gyp-config.cjs sources provider)"],
          "defines": ["TNP_TRT_MAJOR=11"],
          "cflags_cc": ["-isystem", "<(tnp_trt11_include)", "-isystem", "<(tnp_cuda_root)/include", "-Werror"],
          "include_dirs": ["native"],
          "ldflags": ["-Wl,--no-undefined", "-Wl,--version-script=<(module_root_dir)/native/tensorrt/provider.map", "-static-libstdc++", "-static-libgcc"],
          "libraries": ["-ldl"]
        }, {
          "type": "none"
        }]
      ]
    }
  ]
}
