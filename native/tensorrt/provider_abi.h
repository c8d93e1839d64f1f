// The C ABI between the addon and a TensorRT provider shared object.
//
// TensorRT's C++ ABI changes between majors (vtable slots, enum values), so the
// provider source is compiled once per major against that major's headers
// (tensorrt_node_provider_trt10.so, ..._trt11.so). The addon never includes a
// TensorRT header: it talks to the provider only through this file, which is
// plain C, so the two sides can be built by different compilers and at
// different times. Rules of the boundary:
//   - every handle is opaque; memory handed out is released by the side that
//     allocated it (tnp_blob_free for blobs);
//   - no C++ exception crosses it: every call returns a TnpStatus and fills a
//     TnpError on failure;
//   - the provider links no CUDA runtime: streams and device pointers are
//     void* created by the addon;
//   - TensorRT calls run on the CUDA device current on the calling thread: the
//     addon selects it before calling in.
#ifndef TNP_PROVIDER_ABI_H
#define TNP_PROVIDER_ABI_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

// Bumped on any incompatible change of the structs or functions below.
#define TNP_PROVIDER_ABI_VERSION 1
#define TNP_MAX_DIMS 8
#define TNP_ENTRY_SYMBOL "tnp_provider_get"

typedef enum TnpStatus {
  TNP_OK = 0,
  TNP_E_INVALID = 1,   // bad argument: unknown tensor name, wrong rank...
  TNP_E_LIBRARY = 2,   // TensorRT missing a symbol, or its factory refused us
  TNP_E_VERSION = 3,   // library major differs from the provider's headers
  TNP_E_PARSE = 4,     // the ONNX parser rejected the model
  TNP_E_BUILD = 5,     // the builder failed (message from TensorRT's log)
  TNP_E_RUNTIME = 6,   // deserialize / context / enqueue failed
  TNP_E_CANCELLED = 7, // the progress callback asked to stop
  TNP_E_INTERNAL = 8   // anything else (out of memory, unexpected exception)
} TnpStatus;

// Filled on failure. For TNP_E_PARSE the first failing ONNX node is named.
typedef struct TnpError {
  char message[1024];
  int32_t node_index;  // -1 when not about a node
  char node_name[256];
  char op_type[64];
} TnpError;

// TensorRT data types as the provider reports them (stable across majors).
typedef enum TnpDataType {
  TNP_DT_UNKNOWN = 0,
  TNP_DT_FLOAT32 = 1,
  TNP_DT_FLOAT16 = 2,
  TNP_DT_INT8 = 3,
  TNP_DT_INT32 = 4,
  TNP_DT_BOOL = 5,
  TNP_DT_UINT8 = 6,
  TNP_DT_FP8 = 7,
  TNP_DT_BF16 = 8,
  TNP_DT_INT64 = 9,
  TNP_DT_INT4 = 10,
  TNP_DT_FP4 = 11
} TnpDataType;

typedef struct TnpDims {
  int32_t nb_dims;
  int64_t d[TNP_MAX_DIMS];  // -1 for a dynamic axis
} TnpDims;

// One engine input or output. Strings are owned by the engine.
typedef struct TnpTensorDesc {
  const char* name;
  int32_t is_input;
  TnpDataType dtype;
  TnpDims shape;  // as built; -1 on dynamic axes
  // For inputs: the optimization profile 0 range (equal to shape when static).
  TnpDims min, opt, max;
} TnpTensorDesc;

// min/opt/max of one input for the optimization profile.
typedef struct TnpShapeRange {
  const char* name;
  TnpDims min, opt, max;
} TnpShapeRange;

typedef enum TnpProgressEvent {
  TNP_PROGRESS_PHASE_START = 0,
  TNP_PROGRESS_STEP = 1,
  TNP_PROGRESS_PHASE_FINISH = 2
} TnpProgressEvent;

// Called from TensorRT's builder thread. Return 0 to go on, non-zero to cancel.
typedef int32_t (*TnpProgressFn)(void* user, TnpProgressEvent event, const char* phase, const char* parent,
                                 int32_t step, int32_t nb_steps);

// TensorRT log messages (severity as TensorRT numbers it: 0 internal error ... 4 verbose).
typedef void (*TnpLogFn)(void* user, int32_t severity, const char* message);

typedef struct TnpBuildOptions {
  uint32_t struct_size;  // sizeof(TnpBuildOptions) of the caller
  const void* onnx;
  size_t onnx_size;
  const TnpShapeRange* shapes;  // optimization profile; required for dynamic inputs
  int32_t nb_shapes;
  uint64_t workspace_bytes;        // 0: TensorRT's default
  int32_t optimization_level;      // -1: TensorRT's default (3)
  int32_t tiling_level;            // -1: default; needs TensorRT >= 10.8 (gated at run time)
  const void* timing_cache;        // may be NULL
  size_t timing_cache_size;
  TnpProgressFn progress;          // may be NULL
  void* progress_user;
  // For a dynamic input without a range whose only dynamic axis is 0: the
  // profile becomes min 1, opt = max = default_batch_max. 0: such inputs need a range.
  int64_t default_batch_max;
} TnpBuildOptions;

// Bytes owned by the provider; release with blob_free.
typedef struct TnpBlob {
  const void* data;
  size_t size;
  void* owner;
} TnpBlob;

typedef struct TnpLibrary TnpLibrary;
typedef struct TnpEngine TnpEngine;
typedef struct TnpContext TnpContext;

typedef struct TnpProviderApi {
  uint32_t abi_version;   // TNP_PROVIDER_ABI_VERSION
  uint32_t struct_size;   // sizeof(TnpProviderApi)
  int32_t header_version; // NV_TENSORRT_VERSION of the headers it was compiled against (e.g. 101600)
  int32_t header_major;

  // Resolves TensorRT's extern "C" factories from handles the addon dlopened
  // (libnvinfer required; the parser handle may be NULL: then build is unavailable).
  TnpStatus (*library_open)(void* nvinfer_handle, void* parser_handle, TnpLogFn log, void* log_user,
                            TnpLibrary** out, TnpError* err);
  void (*library_close)(TnpLibrary* lib);
  int32_t (*library_version)(const TnpLibrary* lib);        // getInferLibVersion(), e.g. 101600
  int32_t (*library_build_version)(const TnpLibrary* lib);  // getInferLibBuildVersion(), 0 if absent
  int32_t (*library_can_build)(const TnpLibrary* lib);

  // ONNX -> serialized plan (+ updated timing cache). Runs on the caller's thread.
  TnpStatus (*build)(TnpLibrary* lib, const TnpBuildOptions* options, TnpBlob* plan, TnpBlob* timing_cache,
                     TnpError* err);
  void (*blob_free)(TnpBlob* blob);

  TnpStatus (*engine_load)(TnpLibrary* lib, const void* plan, size_t size, TnpEngine** out, TnpError* err);
  void (*engine_free)(TnpEngine* engine);
  int32_t (*engine_io_count)(const TnpEngine* engine);
  TnpStatus (*engine_io_desc)(const TnpEngine* engine, int32_t index, TnpTensorDesc* out, TnpError* err);
  int32_t (*engine_profile_count)(const TnpEngine* engine);

  // One execution context on optimization profile 0, with its own device scratch memory.
  TnpStatus (*context_create)(TnpEngine* engine, void* stream, TnpContext** out, TnpError* err);
  void (*context_free)(TnpContext* ctx);
  TnpStatus (*context_set_input_shape)(TnpContext* ctx, const char* name, const TnpDims* dims, TnpError* err);
  TnpStatus (*context_set_address)(TnpContext* ctx, const char* name, void* device_ptr, TnpError* err);
  TnpStatus (*context_tensor_shape)(const TnpContext* ctx, const char* name, TnpDims* out, TnpError* err);
  TnpStatus (*context_enqueue)(TnpContext* ctx, void* stream, TnpError* err);
} TnpProviderApi;

// The one exported symbol of a provider. Returns NULL when abi_version differs.
typedef const TnpProviderApi* (*TnpProviderGetFn)(uint32_t abi_version);

#ifdef __cplusplus
}
#endif

#endif  // TNP_PROVIDER_ABI_H
