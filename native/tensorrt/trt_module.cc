// N-API surface of the TensorRT backend (src/backends/tensorrt owns the API users see):
//   tensorrtProvider()                       -> { usable, code, reason, headerVersion, libraryVersion, ... }
//   tensorrtBuild(onnx, options, onProgress?) -> Promise<{ plan, timingCache }>   (off the JS thread)
//   tensorrtLoad(plan, options)              -> Promise<TensorrtEngine>          (CUDA builds only)
//   TensorrtEngine: io(), allocate(), infer(inputs, outputs?), stats(), dispose()
//
// Run path (DESIGN.md decisions 5 and 8): each instance owns a CUDA stream, an
// execution context and device buffers sized for the profile's largest shapes.
// infer() picks a free instance, copies inputs host->device asynchronously
// (straight from pinned Buffers; other Buffers once through pinned staging),
// sets shapes and addresses, enqueues (or replays a captured CUDA graph),
// copies outputs device->host into pinned pool blocks handed to JS as Buffers
// (or into the caller's pinned Buffers; other caller Buffers through a pinned
// block copied over on the JS thread at completion), and records an event that
// the instance's completion thread (completion.h) waits on before it posts the
// request back to the JS thread through a thread-safe function. No cudaMalloc,
// cudaHostAlloc or synchronizing call happens on the JS thread.
#include <napi.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "../src/host_pool.h"
#include "../src/module_registry.h"
#include "completion.h"
#include "cuda_raii.h"
#include "provider_host.h"

namespace tnp::trt {
namespace {

Napi::Error Coded(Napi::Env env, const std::string& code, const std::string& message) {
  Napi::Error e = Napi::Error::New(env, message);
  e.Set("code", code);
  return e;
}

Napi::Error FromStatus(Napi::Env env, TnpStatus status, const TnpError& err, const std::string& what) {
  Napi::Error e = Coded(env, StatusCode(status), what + ": " + err.message);
  e.Set("status", Napi::Number::New(env, static_cast<int32_t>(status)));
  if (err.node_index >= 0) {
    e.Set("node", Napi::Number::New(env, err.node_index));
    e.Set("nodeName", err.node_name);
    e.Set("opType", err.op_type);
  }
  return e;
}

const ProviderHost& RequireProvider(Napi::Env env) {
  const ProviderHost& p = Provider();
  if (!p.usable()) throw Coded(env, p.code, p.reason);
  return p;
}

const char* DtypeName(TnpDataType t) {
  switch (t) {
    case TNP_DT_FLOAT32: return "float32";
    case TNP_DT_FLOAT16: return "float16";
    case TNP_DT_INT8: return "int8";
    case TNP_DT_INT32: return "int32";
    case TNP_DT_BOOL: return "bool";
    case TNP_DT_UINT8: return "uint8";
    case TNP_DT_FP8: return "float8";
    case TNP_DT_BF16: return "bfloat16";
    case TNP_DT_INT64: return "int64";
    case TNP_DT_INT4: return "int4";
    case TNP_DT_FP4: return "float4";
    case TNP_DT_UNKNOWN: break;
  }
  return "unknown";
}

// Bytes per element; 0 for sub-byte types the package does not exchange.
std::size_t ElementSize(TnpDataType t) {
  switch (t) {
    case TNP_DT_FLOAT32:
    case TNP_DT_INT32: return 4;
    case TNP_DT_FLOAT16:
    case TNP_DT_BF16: return 2;
    case TNP_DT_INT8:
    case TNP_DT_BOOL:
    case TNP_DT_UINT8:
    case TNP_DT_FP8: return 1;
    case TNP_DT_INT64: return 8;
    default: return 0;
  }
}

Napi::Array DimsToJs(Napi::Env env, const TnpDims& d) {
  Napi::Array a = Napi::Array::New(env, d.nb_dims > 0 ? d.nb_dims : 0);
  for (int32_t i = 0; i < d.nb_dims; ++i) a.Set(i, static_cast<double>(d.d[i]));
  return a;
}

bool DimsFromJs(const Napi::Value& v, TnpDims* out) {
  if (!v.IsArray()) return false;
  Napi::Array a = v.As<Napi::Array>();
  if (a.Length() > TNP_MAX_DIMS) return false;
  out->nb_dims = static_cast<int32_t>(a.Length());
  for (uint32_t i = 0; i < a.Length(); ++i) {
    Napi::Value x = a.Get(i);
    if (!x.IsNumber()) return false;
    out->d[i] = x.As<Napi::Number>().Int64Value();
  }
  return true;
}

std::size_t Volume(const TnpDims& d) {
  std::size_t n = 1;
  for (int32_t i = 0; i < d.nb_dims; ++i) n *= d.d[i] > 0 ? static_cast<std::size_t>(d.d[i]) : 0;
  return n;
}

int32_t IntOption(const Napi::Object& o, const char* key, int32_t fallback) {
  Napi::Value v = o.Get(key);
  return v.IsNumber() ? v.As<Napi::Number>().Int32Value() : fallback;
}

// ---- provider info ---------------------------------------------------------------

Napi::Value ProviderInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const ProviderHost& p = Provider();
  Napi::Object o = Napi::Object::New(env);
  o.Set("usable", p.usable());
  o.Set("code", p.usable() ? env.Null() : Napi::Value(Napi::String::New(env, p.code)));
  o.Set("reason", p.reason);
  o.Set("abiVersion", TNP_PROVIDER_ABI_VERSION);
  if (p.usable()) {
    o.Set("headerVersion", p.api->header_version);
    o.Set("libraryVersion", p.api->library_version(p.lib));
    o.Set("libraryBuildVersion", p.api->library_build_version(p.lib));
    o.Set("canBuild", p.api->library_can_build(p.lib) != 0);
  }
#ifdef TNP_WITH_CUDA
  o.Set("cuda", true);
#else
  o.Set("cuda", false);
#endif
  return o;
}

// ---- build -------------------------------------------------------------------------

struct ProgressEvent {
  TnpProgressEvent event;
  std::string phase;
  std::string parent;
  int32_t step;
  int32_t nbSteps;
};

// Builds a plan on a libuv worker thread. Progress goes through the worker's
// queue, which node-addon-api drains before OnOK, so every event reaches JS
// before the promise settles.
struct BuildJob {
  std::vector<uint8_t> onnx;
  std::vector<uint8_t> timingCache;
  std::vector<std::string> shapeNames;
  std::vector<TnpShapeRange> shapes;
  TnpBuildOptions options{};
  int device = 0;
  Napi::Function onProgress;  // may be empty
  Napi::Int32Array cancel;    // may be empty: an Int32Array over shared memory, non-zero to stop
};

class BuildWorker : public Napi::AsyncProgressQueueWorker<ProgressEvent> {
 public:
  BuildWorker(Napi::Env env, const ProviderHost& p, Napi::Promise::Deferred deferred, BuildJob&& job)
      : Napi::AsyncProgressQueueWorker<ProgressEvent>(env),
        onnx_(std::move(job.onnx)),
        timingCache_(std::move(job.timingCache)),
        shapeNames_(std::move(job.shapeNames)),
        shapes_(std::move(job.shapes)),
        options_(job.options),
        device_(job.device),
        provider_(p),
        deferred_(deferred) {
    if (!job.onProgress.IsEmpty()) onProgress_ = Napi::Persistent(job.onProgress);
    if (!job.cancel.IsEmpty()) {
      // The reference keeps the shared memory alive while the builder thread reads it.
      cancelRef_ = Napi::Persistent(job.cancel);
      cancel_ = job.cancel.Data();
    }
  }

  ~BuildWorker() override {
    if (plan_.owner != nullptr) provider_.api->blob_free(&plan_);
    if (cache_.owner != nullptr) provider_.api->blob_free(&cache_);
  }

  void Execute(const ExecutionProgress& progress) override {
    std::string deviceNote;
#ifdef TNP_WITH_CUDA
    if (const cudaError_t e = cudaSetDevice(device_); e != cudaSuccess) {
      cudaGetLastError();
      int count = 0;
      const bool anyDevice = cudaGetDeviceCount(&count) == cudaSuccess && count > 0;
      cudaGetLastError();
      deviceNote = "cudaSetDevice(" + std::to_string(device_) + ") failed: " + CudaErrorText(e);
      // Devices exist but not this one: TensorRT would build on whichever this
      // pool thread last selected. With none at all there is no wrong device:
      // TensorRT fails on its own, and its error gets the CUDA text below.
      if (anyDevice) {
        cudaError_ = "TensorRT build: " + deviceNote;
        return;
      }
    }
#endif
    for (std::size_t i = 0; i < shapes_.size(); ++i) shapes_[i].name = shapeNames_[i].c_str();
    options_.struct_size = sizeof options_;
    options_.onnx = onnx_.data();
    options_.onnx_size = onnx_.size();
    options_.shapes = shapes_.data();
    options_.nb_shapes = static_cast<int32_t>(shapes_.size());
    options_.timing_cache = timingCache_.empty() ? nullptr : timingCache_.data();
    options_.timing_cache_size = timingCache_.size();
    if (!onProgress_.IsEmpty() || cancel_ != nullptr) {
      progress_.store(onProgress_.IsEmpty() ? nullptr : &progress, std::memory_order_release);
      options_.progress = &BuildWorker::OnBuilderProgress;
      options_.progress_user = this;
    }
    status_ = provider_.api->build(provider_.lib, &options_, &plan_, &cache_, &err_);
    progress_.store(nullptr, std::memory_order_release);
    if (status_ != TNP_OK && !deviceNote.empty()) {
      const std::string message = std::string(err_.message) + " (" + deviceNote + ")";
      std::snprintf(err_.message, sizeof err_.message, "%s", message.c_str());
    }
  }

  void OnProgress(const ProgressEvent* events, size_t count) override {
    if (onProgress_.IsEmpty()) return;
    Napi::Env env = Env();
    static const char* kinds[] = {"start", "step", "finish"};
    for (size_t i = 0; i < count; ++i) {
      const ProgressEvent& e = events[i];
      Napi::Object o = Napi::Object::New(env);
      o.Set("event", kinds[e.event]);
      o.Set("phase", e.phase);
      if (!e.parent.empty()) o.Set("parent", e.parent);
      o.Set("step", e.step);
      o.Set("steps", e.nbSteps);
      onProgress_.Call({o});
    }
  }

  void OnOK() override {
    Napi::Env env = Env();
    if (!cudaError_.empty()) {
      deferred_.Reject(Coded(env, "ENODEVICE", cudaError_).Value());
      return;
    }
    if (status_ != TNP_OK) {
      deferred_.Reject(FromStatus(env, status_, err_, "TensorRT build failed").Value());
      return;
    }
    Napi::Object result = Napi::Object::New(env);
    result.Set("plan", Napi::Buffer<uint8_t>::Copy(env, static_cast<const uint8_t*>(plan_.data), plan_.size));
    result.Set("timingCache", cache_.size > 0 ? Napi::Value(Napi::Buffer<uint8_t>::Copy(
                                                    env, static_cast<const uint8_t*>(cache_.data), cache_.size))
                                              : env.Null());
    deferred_.Resolve(result);
  }

  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  // TensorRT's builder threads (possibly several at once): copy the event into
  // the worker's queue, which is thread-safe. Called through the provider's C
  // ABI from noexcept TensorRT callbacks, so no exception (bad_alloc from the
  // copies) may leave it: that would terminate.
  static int32_t OnBuilderProgress(void* user, TnpProgressEvent event, const char* phase, const char* parent,
                                   int32_t step, int32_t nbSteps) noexcept {
    auto* self = static_cast<BuildWorker*>(user);
    try {
      if (const ExecutionProgress* progress = self->progress_.load(std::memory_order_acquire)) {
        ProgressEvent e{event, phase != nullptr ? phase : "", parent != nullptr ? parent : "", step, nbSteps};
        progress->Send(&e, 1);
      }
    } catch (...) {
      // A lost progress event is better than a lost process.
    }
    // Non-zero asks TensorRT to stop at its next step (IProgressMonitor::stepComplete).
    return self->cancel_ != nullptr && __atomic_load_n(self->cancel_, __ATOMIC_ACQUIRE) != 0 ? 1 : 0;
  }

  std::vector<uint8_t> onnx_;
  std::vector<uint8_t> timingCache_;
  std::vector<std::string> shapeNames_;
  std::vector<TnpShapeRange> shapes_;
  TnpBuildOptions options_;
  int device_;
  Napi::FunctionReference onProgress_;
  Napi::Reference<Napi::Int32Array> cancelRef_;
  int32_t* cancel_ = nullptr;
  // Written by the worker thread, read by TensorRT's threads.
  std::atomic<const ExecutionProgress*> progress_{nullptr};
  const ProviderHost& provider_;
  Napi::Promise::Deferred deferred_;
  TnpStatus status_ = TNP_OK;
  TnpError err_{};
  std::string cudaError_;
  TnpBlob plan_{};
  TnpBlob cache_{};
};

// tensorrtBuild(onnx: Uint8Array, options: { shapes?: [{name,min,opt,max}], workspaceBytes?,
//   optimizationLevel?, tilingLevel?, timingCache?: Uint8Array, device?, cancel?: Int32Array }, onProgress?)
// `cancel` (over a SharedArrayBuffer): the builder stops at its next step once element 0 is non-zero.
Napi::Value Build(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const ProviderHost& p = RequireProvider(env);
  if (info.Length() < 1 || !info[0].IsTypedArray()) throw Coded(env, "EINPUT", "tensorrtBuild: onnx must be a Uint8Array");
  Napi::Object opts = info.Length() > 1 && info[1].IsObject() ? info[1].As<Napi::Object>() : Napi::Object::New(env);
  BuildJob job;
  Napi::TypedArray onnx = info[0].As<Napi::TypedArray>();
  const auto* bytes = static_cast<const uint8_t*>(onnx.ArrayBuffer().Data()) + onnx.ByteOffset();
  job.onnx.assign(bytes, bytes + onnx.ByteLength());
  Napi::Value cache = opts.Get("timingCache");
  if (cache.IsTypedArray()) {
    Napi::TypedArray c = cache.As<Napi::TypedArray>();
    const auto* cb = static_cast<const uint8_t*>(c.ArrayBuffer().Data()) + c.ByteOffset();
    job.timingCache.assign(cb, cb + c.ByteLength());
  }
  Napi::Value shapes = opts.Get("shapes");
  if (shapes.IsArray()) {
    Napi::Array a = shapes.As<Napi::Array>();
    for (uint32_t i = 0; i < a.Length(); ++i) {
      Napi::Object s = a.Get(i).As<Napi::Object>();
      TnpShapeRange r{};
      if (!s.Get("name").IsString() || !DimsFromJs(s.Get("min"), &r.min) || !DimsFromJs(s.Get("opt"), &r.opt) ||
          !DimsFromJs(s.Get("max"), &r.max)) {
        throw Coded(env, "EINPUT", "tensorrtBuild: each shapes entry needs name, min, opt and max");
      }
      job.shapeNames.push_back(s.Get("name").As<Napi::String>().Utf8Value());
      job.shapes.push_back(r);
    }
  }
  Napi::Value ws = opts.Get("workspaceBytes");
  job.options.workspace_bytes = ws.IsNumber() ? static_cast<uint64_t>(ws.As<Napi::Number>().Int64Value()) : 0;
  job.options.optimization_level = IntOption(opts, "optimizationLevel", -1);
  job.options.tiling_level = IntOption(opts, "tilingLevel", -1);
  job.options.default_batch_max = IntOption(opts, "defaultBatchMax", 0);
  job.device = IntOption(opts, "device", 0);
  if (info.Length() > 2 && info[2].IsFunction()) {
    job.onProgress = info[2].As<Napi::Function>();
  }
  Napi::Value cancel = opts.Get("cancel");
  if (!cancel.IsUndefined()) {
    if (!cancel.IsTypedArray() || cancel.As<Napi::TypedArray>().TypedArrayType() != napi_int32_array ||
        cancel.As<Napi::TypedArray>().ElementLength() < 1) {
      throw Coded(env, "EINPUT", "tensorrtBuild: cancel must be an Int32Array of at least one element");
    }
    job.cancel = cancel.As<Napi::Int32Array>();
  }
  auto deferred = Napi::Promise::Deferred::New(env);
  // napi-owned: AsyncWorker deletes itself after OnOK/OnError.
  (new BuildWorker(env, p, deferred, std::move(job)))->Queue();
  return deferred.Promise();
}

#ifdef TNP_WITH_CUDA

// ---- engine ------------------------------------------------------------------------

struct IoTensor {
  std::string name;
  bool input = false;
  TnpDataType dtype = TNP_DT_UNKNOWN;
  std::size_t elementSize = 0;
  TnpDims shape{}, min{}, opt{}, max{};
  std::size_t maxBytes = 0;
  bool dynamic = false;
};

// TensorRT frees on the device current on the calling thread (provider_abi.h):
// select the one the object was made on, whichever thread drops it.
struct EngineDeleter {
  const TnpProviderApi* api;
  int device;
  void operator()(TnpEngine* e) const {
    if (e == nullptr) return;
    DeviceScope scope(device);
    api->engine_free(e);
  }
};
struct ContextDeleter {
  const TnpProviderApi* api;
  int device;
  void operator()(TnpContext* c) const {
    if (c == nullptr) return;
    DeviceScope scope(device);
    api->context_free(c);
  }
};
using EnginePtr = std::unique_ptr<TnpEngine, EngineDeleter>;
using ContextPtr = std::unique_ptr<TnpContext, ContextDeleter>;

// Each member frees on its own device (cuda_raii.h, the deleters above).
struct Instance {
  int device = 0;
  Stream stream;
  ContextPtr context{nullptr, ContextDeleter{nullptr, 0}};
  std::vector<DeviceBuffer> device_buffers;  // one per IO tensor, sized for the max shapes
  std::vector<HostBlock> staging;            // pinned staging per input (for non-pinned Buffers)
  Graph graph;
  bool graphTried = false;
  int runs = 0;
  bool busy = false;
  std::unique_ptr<CompletionWaiter> waiter;  // last: its thread ends before the rest goes

  Instance() = default;
  Instance(const Instance&) = delete;
  Instance& operator=(const Instance&) = delete;
  ~Instance() {
    if (stream.get() != nullptr) {
      DeviceScope scope(device);
      cudaStreamSynchronize(stream.get());  // nothing may still read the staging blocks
    }
    for (HostBlock& b : staging) HostPool::Instance().Release(b.data, b.id);
  }
};

struct Request;

struct EngineCore {
  const ProviderHost* provider = nullptr;
  std::vector<EnginePtr> engines;  // one per device, in `devices` order
  std::vector<int> devices;
  std::vector<IoTensor> io;
  std::vector<std::unique_ptr<Instance>> instances;
  bool cudaGraphs = false;
  bool anyDynamic = false;
  int spinWaitUs = 200;
  // Stats.
  uint64_t calls = 0, zeroCopyInputs = 0, stagedInputs = 0, graphLaunches = 0, graphFallbacks = 0;

  ~EngineCore() {
    instances.clear();  // each waits for its stream; contexts go before engines
    engines.clear();
  }
};

struct BlockHint {
  uint64_t id;
  int64_t bytes;
};

void FinalizeBlock(Napi::Env env, uint8_t* data, BlockHint* raw) {
  std::unique_ptr<BlockHint> hint(raw);
  HostPool::Instance().Release(data, hint->id);
  Napi::MemoryManagement::AdjustExternalMemory(env, -hint->bytes);
}

// A Buffer over a pinned pool block; the block returns to the pool when JS
// collects it. Its size is reported to V8 so results prompt collection.
Napi::Buffer<uint8_t> BlockBuffer(Napi::Env env, const HostBlock& b, std::size_t bytes) {
  auto hint = std::make_unique<BlockHint>(BlockHint{b.id, static_cast<int64_t>(b.capacity)});
  auto buffer = Napi::Buffer<uint8_t>::New(env, static_cast<uint8_t*>(b.data), bytes, FinalizeBlock, hint.get());
  Napi::MemoryManagement::AdjustExternalMemory(env, hint->bytes);
  hint.release();  // owned by the finalizer
  return buffer;
}

// Loads the plan on each device and makes the instances: off the JS thread.
class LoadWorker : public Napi::AsyncWorker {
 public:
  LoadWorker(Napi::Env env, Napi::Promise::Deferred deferred, Napi::FunctionReference& ctor)
      : Napi::AsyncWorker(env), deferred_(deferred), ctor_(ctor) {}

  std::vector<uint8_t> plan;
  std::vector<int> devices;
  int instancesPerDevice = 1;
  std::unique_ptr<EngineCore> core = std::make_unique<EngineCore>();

  void Execute() override {
    const ProviderHost& p = *core->provider;
    const TnpProviderApi* api = p.api;
    for (int device : devices) {
      DeviceScope scope(device);
      TnpEngine* raw = nullptr;
      status_ = api->engine_load(p.lib, plan.data(), plan.size(), &raw, &err_);
      if (status_ != TNP_OK) return;
      core->engines.emplace_back(raw, EngineDeleter{api, device});
      core->devices.push_back(device);
    }
    TnpEngine* first = core->engines.front().get();
    const int32_t n = api->engine_io_count(first);
    for (int32_t i = 0; i < n; ++i) {
      TnpTensorDesc d{};
      if ((status_ = api->engine_io_desc(first, i, &d, &err_)) != TNP_OK) return;
      IoTensor t;
      t.name = d.name;
      t.input = d.is_input != 0;
      t.dtype = d.dtype;
      t.elementSize = ElementSize(d.dtype);
      t.shape = d.shape;
      t.min = d.min;
      t.opt = d.opt;
      t.max = d.max;
      for (int32_t k = 0; k < d.shape.nb_dims; ++k) t.dynamic = t.dynamic || d.shape.d[k] < 0;
      if (t.elementSize == 0) {
        status_ = TNP_E_INVALID;
        std::snprintf(err_.message, sizeof err_.message, "tensor '%s' has type %s, which tensorrt-node cannot exchange",
                      d.name, DtypeName(d.dtype));
        return;
      }
      if (t.input) t.maxBytes = Volume(t.max) * t.elementSize;
      core->anyDynamic = core->anyDynamic || (t.input && t.dynamic);
      core->io.push_back(std::move(t));
    }
    for (std::size_t e = 0; e < core->engines.size(); ++e) {
      for (int k = 0; k < instancesPerDevice; ++k) {
        if (!MakeInstance(e)) return;
      }
    }
  }

  void OnOK() override {
    Napi::Env env = Env();
    if (status_ != TNP_OK) {
      deferred_.Reject(FromStatus(env, status_, err_, "TensorRT could not load the engine").Value());
      return;
    }
    if (!cudaError_.empty()) {
      deferred_.Reject(Coded(env, "ENODEVICE", cudaError_).Value());
      return;
    }
    // The wrapper adopts the core (see TensorrtEngine's constructor): ownership leaves
    // here first, so a constructor that throws after adopting it frees it once, not twice.
    EngineCore* adopted = core.release();
    try {
      deferred_.Resolve(ctor_.New({Napi::External<EngineCore>::New(env, adopted)}));
    } catch (const Napi::Error& e) {
      deferred_.Reject(e.Value());
    }
  }

 private:
  bool MakeInstance(std::size_t engineIndex) {
    const TnpProviderApi* api = core->provider->api;
    auto inst = std::make_unique<Instance>();
    inst->device = core->devices[engineIndex];
    DeviceScope scope(inst->device);
    inst->stream = Stream(inst->device);
    if (inst->stream.error() != cudaSuccess) return CudaFail("cudaStreamCreate", inst->stream.error());
    inst->waiter = std::make_unique<CompletionWaiter>(inst->device, core->spinWaitUs);
    if (inst->waiter->error() != cudaSuccess) return CudaFail("cudaEventCreate", inst->waiter->error());
    TnpContext* ctx = nullptr;
    if ((status_ = api->context_create(core->engines[engineIndex].get(), inst->stream.get(), &ctx, &err_)) != TNP_OK) {
      return false;
    }
    inst->context = ContextPtr(ctx, ContextDeleter{api, inst->device});
    // Output sizes at the largest input shapes.
    for (const IoTensor& t : core->io) {
      if (t.input && (status_ = api->context_set_input_shape(ctx, t.name.c_str(), &t.max, &err_)) != TNP_OK) {
        return false;
      }
    }
    for (IoTensor& t : core->io) {
      std::size_t bytes = t.maxBytes;
      if (!t.input) {
        TnpDims d{};
        if ((status_ = api->context_tensor_shape(ctx, t.name.c_str(), &d, &err_)) != TNP_OK) return false;
        for (int32_t k = 0; k < d.nb_dims; ++k) {
          if (d.d[k] < 0) {
            status_ = TNP_E_INVALID;
            std::snprintf(err_.message, sizeof err_.message,
                          "output '%s' has a data-dependent shape, which tensorrt-node does not support yet",
                          t.name.c_str());
            return false;
          }
        }
        bytes = Volume(d) * t.elementSize;
        t.maxBytes = std::max(t.maxBytes, bytes);
      }
      inst->device_buffers.emplace_back(inst->device, bytes);
      if (inst->device_buffers.back().error() != cudaSuccess) {
        return CudaFail("cudaMalloc", inst->device_buffers.back().error());
      }
      if ((status_ = api->context_set_address(ctx, t.name.c_str(), inst->device_buffers.back().get(), &err_)) !=
          TNP_OK) {
        return false;
      }
      if (t.input) {
        HostBlock b = HostPool::Instance().Acquire(std::max<std::size_t>(bytes, 1), true);
        if (b.data == nullptr) return CudaFail("pinned staging", cudaErrorMemoryAllocation);
        inst->staging.push_back(b);
      }
    }
    core->instances.push_back(std::move(inst));
    return true;
  }

  bool CudaFail(const char* what, cudaError_t e) {
    cudaError_ = std::string(what) + " failed on device: " + CudaErrorText(e);
    cudaGetLastError();
    return false;
  }

  Napi::Promise::Deferred deferred_;
  Napi::FunctionReference& ctor_;
  TnpStatus status_ = TNP_OK;
  TnpError err_{};
  std::string cudaError_;
};

// One infer() call in flight. Holds only persistent references to JS values,
// since it may wait in the queue past the call's handle scope.
struct Request {
  class TensorrtEngine* owner = nullptr;
  Instance* instance = nullptr;
  Napi::Promise::Deferred deferred;
  Napi::Reference<Napi::Value> engine;                 // keeps the engine alive while in flight
  std::vector<Napi::Reference<Napi::Value>> inputs;    // input views, in io() input order
  std::vector<TnpDims> inShapes;
  std::vector<Napi::Reference<Napi::Value>> outputs;   // caller's output views (empty ref: none given)
  std::vector<TnpDims> outShapes;
  std::vector<std::size_t> outBytes;
  // Per output, the pinned pool block the device writes: handed to JS as the result, or,
  // where the caller gave a non-pinned buffer, copied into it on the JS thread
  // (data == nullptr: the device writes the caller's pinned buffer itself).
  std::vector<HostBlock> outBlocks;
  std::vector<void*> outPointers;
  explicit Request(Napi::Env env) : deferred(Napi::Promise::Deferred::New(env)) {}
  Request(const Request&) = delete;
  Request& operator=(const Request&) = delete;
  // Blocks still held go back to the pool on every path (failure, teardown).
  // A request is dropped only once its stream has passed its copies.
  ~Request() {
    for (const HostBlock& b : outBlocks) {
      if (b.data != nullptr) HostPool::Instance().Release(b.data, b.id);
    }
  }
};

class TensorrtEngine : public Napi::ObjectWrap<TensorrtEngine> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "TensorrtEngine",
                       {InstanceMethod("io", &TensorrtEngine::Io), InstanceMethod("allocate", &TensorrtEngine::Allocate),
                        InstanceMethod("infer", &TensorrtEngine::Infer), InstanceMethod("stats", &TensorrtEngine::Stats),
                        InstanceMethod("dispose", &TensorrtEngine::Dispose)});
  }

  explicit TensorrtEngine(const Napi::CallbackInfo& info) : Napi::ObjectWrap<TensorrtEngine>(info) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsExternal()) {
      throw Coded(env, "EINPUT", "TensorrtEngine is made by tensorrtLoad(), not by new");
    }
    core_.reset(info[0].As<Napi::External<EngineCore>>().Data());
    // A no-op JS function: completions run their own callback on the JS thread.
    // The finalizer records that Node deleted the function: at environment
    // teardown (process or worker exit) it does so before it finalizes this
    // wrapper, and a Release() or call after that would touch freed memory.
    tsfn_ = Napi::ThreadSafeFunction::New(env, Napi::Function::New(env, [](const Napi::CallbackInfo&) {}),
                                          "tensorrt-infer-done", 0, 1,
                                          [gone = tsfnGone_](Napi::Env) { gone->store(true); });
    tsfn_.Unref(env);
  }

  ~TensorrtEngine() override { Close(); }

 private:
  void Close() {
    if (!core_) return;
    core_.reset();  // synchronizes every stream first
    if (tsfn_ && !tsfnGone_->load()) tsfn_.Release();
  }

  void RequireOpen(Napi::Env env) const {
    if (!core_) throw Coded(env, "EDISPOSED", "this TensorRT engine was disposed");
  }

  Napi::Value Io(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    RequireOpen(env);
    Napi::Array a = Napi::Array::New(env, core_->io.size());
    for (std::size_t i = 0; i < core_->io.size(); ++i) {
      const IoTensor& t = core_->io[i];
      Napi::Object o = Napi::Object::New(env);
      o.Set("name", t.name);
      o.Set("input", t.input);
      o.Set("dtype", DtypeName(t.dtype));
      o.Set("shape", DimsToJs(env, t.shape));
      o.Set("min", DimsToJs(env, t.min));
      o.Set("opt", DimsToJs(env, t.opt));
      o.Set("max", DimsToJs(env, t.max));
      o.Set("maxBytes", static_cast<double>(t.maxBytes));
      a.Set(i, o);
    }
    return a;
  }

  // Pinned Buffers for every input and output at the largest shapes: infer()
  // reads and writes them with no host copy.
  Napi::Value Allocate(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    RequireOpen(env);
    Napi::Object inputs = Napi::Object::New(env), outputs = Napi::Object::New(env);
    for (const IoTensor& t : core_->io) {
      HostBlock b = HostPool::Instance().Acquire(std::max<std::size_t>(t.maxBytes, 1), true);
      if (b.data == nullptr) throw Coded(env, "ENODEVICE", "out of pinned host memory");
      (t.input ? inputs : outputs).Set(t.name, BlockBuffer(env, b, t.maxBytes));
    }
    Napi::Object o = Napi::Object::New(env);
    o.Set("inputs", inputs);
    o.Set("outputs", outputs);
    return o;
  }

  Napi::Value Stats(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Napi::Object o = Napi::Object::New(env);
    if (!core_) return o;
    o.Set("calls", static_cast<double>(core_->calls));
    o.Set("zeroCopyInputs", static_cast<double>(core_->zeroCopyInputs));
    o.Set("stagedInputs", static_cast<double>(core_->stagedInputs));
    o.Set("graphLaunches", static_cast<double>(core_->graphLaunches));
    o.Set("graphFallbacks", static_cast<double>(core_->graphFallbacks));
    uint64_t spun = 0, blocked = 0;
    for (const auto& inst : core_->instances) {
      spun += inst->waiter->spun();
      blocked += inst->waiter->blocked();
    }
    o.Set("completionsSpun", static_cast<double>(spun));
    o.Set("completionsBlocked", static_cast<double>(blocked));
    o.Set("instances", static_cast<double>(core_->instances.size()));
    o.Set("queued", static_cast<double>(queue_.size()));
    o.Set("inFlight", static_cast<double>(inFlight_));
    std::size_t freeBytes = 0, totalBytes = 0;
    DeviceScope scope(core_->devices.front());
    if (cudaMemGetInfo(&freeBytes, &totalBytes) == cudaSuccess) {
      o.Set("deviceMemoryUsed", static_cast<double>(totalBytes - freeBytes));
    }
    return o;
  }

  // infer(inputs: Array<{ data: ArrayBufferView, dims: number[] }> in io() input order,
  //       outputs?: Array<Buffer | undefined> in io() output order) -> Promise<Array<{ data, dims }>>
  Napi::Value Infer(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    RequireOpen(env);
    auto req = std::make_unique<Request>(env);
    req->owner = this;
    req->engine = Napi::Reference<Napi::Value>::New(Value(), 1);
    Napi::Promise promise = req->deferred.Promise();
    if (info.Length() < 1 || !info[0].IsArray()) throw Coded(env, "EINPUT", "infer: inputs must be an array");
    Napi::Array inputs = info[0].As<Napi::Array>();
    Napi::Array outputs = info.Length() > 1 && info[1].IsArray() ? info[1].As<Napi::Array>() : Napi::Array::New(env);
    // Validate now, on the caller's stack, so errors throw synchronously.
    uint32_t inIndex = 0, outIndex = 0;
    for (const IoTensor& t : core_->io) {
      if (t.input) {
        Napi::Value v = inputs.Get(inIndex++);
        if (!v.IsObject()) throw Coded(env, "EINPUT", "infer: missing input '" + t.name + "'");
        Napi::Object o = v.As<Napi::Object>();
        Napi::Value data = o.Get("data");
        TnpDims dims{};
        if (!data.IsTypedArray()) {
          throw Coded(env, "EINPUT", "input '" + t.name + "': data must be a Buffer or typed array");
        }
        if (!DimsFromJs(o.Get("dims"), &dims) || dims.nb_dims != t.shape.nb_dims) {
          throw Coded(env, "EINPUT", "input '" + t.name + "': dims must have rank " + std::to_string(t.shape.nb_dims));
        }
        for (int32_t k = 0; k < dims.nb_dims; ++k) {
          if (dims.d[k] < t.min.d[k] || dims.d[k] > t.max.d[k]) {
            throw Coded(env, "EINPUT", "input '" + t.name + "': axis " + std::to_string(k) + " is " +
                                           std::to_string(dims.d[k]) + ", outside [" + std::to_string(t.min.d[k]) +
                                           ", " + std::to_string(t.max.d[k]) + "]");
          }
        }
        Napi::TypedArray view = data.As<Napi::TypedArray>();
        const std::size_t want = Volume(dims) * t.elementSize;
        if (view.ByteLength() != want) {
          throw Coded(env, "EINPUT", "input '" + t.name + "': expected " + std::to_string(want) + " bytes, received " +
                                         std::to_string(view.ByteLength()));
        }
        req->inputs.emplace_back(Napi::Reference<Napi::Value>::New(data, 1));
        req->inShapes.push_back(dims);
      } else {
        Napi::Value v = outputs.Get(outIndex++);
        req->outputs.emplace_back(v.IsTypedArray() ? Napi::Reference<Napi::Value>::New(v, 1)
                                                   : Napi::Reference<Napi::Value>());
      }
    }
    if (inIndex != inputs.Length()) {
      throw Coded(env, "EINPUT", "infer: expected " + std::to_string(inIndex) + " inputs, received " +
                                     std::to_string(inputs.Length()));
    }
    if (queue_.empty()) {
      if (Instance* inst = FreeInstance()) {
        Start(env, inst, std::move(req));
        return promise;
      }
    }
    queue_.push_back(std::move(req));  // every instance busy: the next completion starts it
    return promise;
  }

  const std::string& OutputName(std::size_t output) const {
    for (const IoTensor& t : core_->io) {
      if (!t.input && output-- == 0) return t.name;
    }
    static const std::string unknown = "?";
    return unknown;
  }

  Instance* FreeInstance() {
    for (auto& inst : core_->instances) {
      if (!inst->busy) return inst.get();
    }
    return nullptr;
  }

  // Starts queued requests, oldest first, while an instance is free. A loop:
  // Start() settles a request that fails synchronously without starting the
  // next, so a long queue of such failures does not deepen the stack.
  void StartQueued(Napi::Env env) {
    while (core_ && !queue_.empty()) {
      Instance* inst = FreeInstance();
      if (inst == nullptr) return;
      std::unique_ptr<Request> req = std::move(queue_.front());
      queue_.pop_front();
      Start(env, inst, std::move(req));
    }
  }

  // Enqueues copies, the engine and the completion on the instance's stream.
  void Start(Napi::Env env, Instance* inst, std::unique_ptr<Request> req) {
    Napi::HandleScope handles(env);
    const TnpProviderApi* api = core_->provider->api;
    TnpContext* ctx = inst->context.get();
    cudaStream_t stream = inst->stream.get();
    DeviceScope scope(inst->device);
    req->instance = inst;
    TnpError err{};
    std::string failure;
    const bool pinnedPool = HostPool::Instance().Stats().pinned;
    std::size_t in = 0, out = 0;
    for (std::size_t index = 0; index < core_->io.size() && failure.empty(); ++index) {
      const IoTensor& t = core_->io[index];
      if (!t.input) continue;
      Napi::TypedArray view = req->inputs[in].Value().As<Napi::TypedArray>();
      auto* src = static_cast<uint8_t*>(view.ArrayBuffer().Data()) + view.ByteOffset();
      const std::size_t bytes = view.ByteLength();
      // Checked in Infer(), but a queued request's buffer may since have been
      // detached (transferred) or shrunk: copying fewer bytes would run on stale data.
      if (bytes != Volume(req->inShapes[in]) * t.elementSize) {
        failure = "input '" + t.name + "' holds " + std::to_string(bytes) + " bytes now, not the " +
                  std::to_string(Volume(req->inShapes[in]) * t.elementSize) + " it held at infer() (detached or resized?)";
        break;
      }
      if (pinnedPool && view.ByteOffset() == 0 && HostPool::Instance().LiveId(src) != 0) {
        ++core_->zeroCopyInputs;  // a pinned Buffer from allocate()/allocHost(): DMA straight from it
      } else {
        std::memcpy(inst->staging[in].data, src, bytes);  // the one host copy for other memory
        src = static_cast<uint8_t*>(inst->staging[in].data);
        ++core_->stagedInputs;
      }
      const cudaError_t e =
          cudaMemcpyAsync(inst->device_buffers[index].get(), src, bytes, cudaMemcpyHostToDevice, stream);
      if (e != cudaSuccess) failure = "cudaMemcpyAsync H2D: " + CudaErrorText(e);
      if (failure.empty() && api->context_set_input_shape(ctx, t.name.c_str(), &req->inShapes[in], &err) != TNP_OK) {
        failure = err.message;
      }
      ++in;
    }
    // Output shapes and where they land: the caller's buffer, or a pinned pool block.
    for (std::size_t index = 0; index < core_->io.size() && failure.empty(); ++index) {
      const IoTensor& t = core_->io[index];
      if (t.input) continue;
      TnpDims d{};
      if (api->context_tensor_shape(ctx, t.name.c_str(), &d, &err) != TNP_OK) {
        failure = err.message;
        break;
      }
      const std::size_t bytes = Volume(d) * t.elementSize;
      // The device buffer was sized at the profile's max input shapes; an output
      // that is larger at these shapes would make TensorRT write past it.
      if (bytes > inst->device_buffers[index].bytes()) {
        failure = "output '" + t.name + "' needs " + std::to_string(bytes) + " bytes at these input shapes, more than the " +
                  std::to_string(inst->device_buffers[index].bytes()) + " it takes at the profile's max shapes";
        break;
      }
      req->outShapes.push_back(d);
      req->outBytes.push_back(bytes);
      HostBlock block{};
      void* dst = nullptr;
      if (!req->outputs[out].IsEmpty()) {
        Napi::TypedArray g = req->outputs[out].Value().As<Napi::TypedArray>();
        if (g.ByteLength() < bytes) {
          failure = "output '" + t.name + "': the given buffer holds " + std::to_string(g.ByteLength()) + " bytes, " +
                    std::to_string(bytes) + " needed";
          break;
        }
        void* base = g.ArrayBuffer().Data();
        if (!pinnedPool || HostPool::Instance().LiveId(base) != 0) {
          // A pinned Buffer from allocate()/allocHost() (any view into it): DMA
          // straight into it. Without pinned memory staging would gain nothing.
          dst = static_cast<uint8_t*>(base) + g.ByteOffset();
        } else {
          // A copy into pageable memory may block the host until the GPU is
          // done: land in a pinned block, copied over in Settle() instead.
          block = HostPool::Instance().Acquire(std::max<std::size_t>(bytes, 1), true);
          dst = block.data;
        }
      } else {
        block = HostPool::Instance().Acquire(std::max<std::size_t>(bytes, 1), true);
        dst = block.data;
      }
      req->outBlocks.push_back(block);
      req->outPointers.push_back(dst);
      if (dst == nullptr && bytes > 0) {
        failure = "out of pinned host memory";
        break;
      }
      ++out;
    }
    if (failure.empty()) failure = Enqueue(inst, ctx, stream);
    for (std::size_t index = 0, o = 0; index < core_->io.size() && failure.empty(); ++index) {
      if (core_->io[index].input) continue;
      const cudaError_t e = cudaMemcpyAsync(req->outPointers[o], inst->device_buffers[index].get(), req->outBytes[o],
                                            cudaMemcpyDeviceToHost, stream);
      ++o;
      if (e != cudaSuccess) failure = "cudaMemcpyAsync D2H: " + CudaErrorText(e);
    }
    ++core_->calls;
    inst->busy = true;
    if (inFlight_++ == 0) tsfn_.Ref(env);
    Request* raw = req.release();  // adopted again in Complete() or just below
    if (failure.empty()) {
      const cudaError_t e = inst->waiter->Post(stream, &TensorrtEngine::OnStreamDone, raw);
      if (e == cudaSuccess) return;
      failure = "cudaEventRecord: " + CudaErrorText(e);
    }
    cudaGetLastError();
    // Work may already be queued on the stream: wait for it before reusing the instance.
    cudaStreamSynchronize(stream);
    Settle(env, std::unique_ptr<Request>(raw), failure);
  }

  // The engine itself: a plain enqueueV3, or, for static shapes with cudaGraphs,
  // a replay of a graph captured after the first plain run.
  std::string Enqueue(Instance* inst, TnpContext* ctx, cudaStream_t stream) {
    const TnpProviderApi* api = core_->provider->api;
    if (core_->cudaGraphs && !core_->anyDynamic && inst->runs > 0 && !inst->graphTried) {
      inst->graphTried = true;
      const bool ok = inst->graph.Capture(stream, [&](cudaStream_t s) {
        TnpError e{};
        return api->context_enqueue(ctx, s, &e) == TNP_OK;
      });
      if (!ok) ++core_->graphFallbacks;
    }
    ++inst->runs;
    if (inst->graph.ready()) {
      const cudaError_t e = inst->graph.Launch(stream);
      if (e == cudaSuccess) {
        ++core_->graphLaunches;
        return {};
      }
      cudaGetLastError();
    }
    TnpError err{};
    if (api->context_enqueue(ctx, stream, &err) != TNP_OK) return err.message;
    return {};
  }

  // The instance's completion thread: the hand-off to JS.
  static void OnStreamDone(void* data) {
    auto* req = static_cast<Request*>(data);
    // After teardown deleted the function nothing can settle the promise (the request leaks).
    if (req->owner->tsfnGone_->load() ||
        req->owner->tsfn_.NonBlockingCall(req, &TensorrtEngine::Complete) != napi_ok) {
      // The environment is going away: nothing can settle the promise any more.
    }
  }

  static void Complete(Napi::Env env, Napi::Function /*fn*/, Request* raw) {
    std::unique_ptr<Request> req(raw);
    if (env == nullptr) {
      // The environment is gone: its handles must not be touched on the way out.
      req->engine.SuppressDestruct();
      for (auto& r : req->inputs) r.SuppressDestruct();
      for (auto& r : req->outputs) r.SuppressDestruct();
      return;
    }
    TensorrtEngine* self = req->owner;
    std::string failure;
    const cudaError_t e = cudaStreamQuery(req->instance->stream.get());
    if (e != cudaSuccess && e != cudaErrorNotReady) failure = "CUDA stream error: " + CudaErrorText(e);
    self->Finish(env, std::move(req), failure);
  }

  // A request's run is over: settle it, then start what waits.
  void Finish(Napi::Env env, std::unique_ptr<Request> req, const std::string& failure) {
    Settle(env, std::move(req), failure);
    StartQueued(env);
  }

  // Resolves or rejects the request and frees its instance; starts nothing.
  void Settle(Napi::Env env, std::unique_ptr<Request> req, std::string failure) {
    Napi::HandleScope scope(env);
    Instance* inst = req->instance;
    // Outputs staged for the caller's non-pinned buffers: the stream is past
    // the copies, so this is a host memcpy.
    for (std::size_t i = 0; i < req->outBlocks.size() && failure.empty(); ++i) {
      const HostBlock& b = req->outBlocks[i];
      if (b.data == nullptr || req->outputs[i].IsEmpty()) continue;
      Napi::TypedArray g = req->outputs[i].Value().As<Napi::TypedArray>();
      // The caller may have detached or shrunk the buffer since Start().
      if (g.ByteLength() < req->outBytes[i]) {
        failure = "output '" + OutputName(i) + "': the given buffer holds " + std::to_string(g.ByteLength()) +
                  " bytes now, not the " + std::to_string(req->outBytes[i]) + " needed (detached or resized?)";
        break;
      }
      if (req->outBytes[i] > 0) {
        std::memcpy(static_cast<uint8_t*>(g.ArrayBuffer().Data()) + g.ByteOffset(), b.data, req->outBytes[i]);
      }
    }
    if (failure.empty()) {
      Napi::Array results = Napi::Array::New(env, req->outShapes.size());
      for (std::size_t i = 0; i < req->outShapes.size(); ++i) {
        Napi::Object r = Napi::Object::New(env);
        const HostBlock b = req->outBlocks[i];
        if (req->outputs[i].IsEmpty()) {
          Napi::Buffer<uint8_t> data = BlockBuffer(env, b, req->outBytes[i]);
          req->outBlocks[i] = HostBlock{};  // the Buffer's finalizer owns it now, even if a later step throws
          r.Set("data", data);
        } else {
          r.Set("data", req->outputs[i].Value());  // written into the caller's buffer
        }
        r.Set("dims", DimsToJs(env, req->outShapes[i]));
        results.Set(i, r);
      }
      req->deferred.Resolve(results);
    } else {
      req->deferred.Reject(Coded(env, "ENODEVICE", "TensorRT inference failed: " + failure).Value());
    }
    req.reset();  // returns the remaining pool blocks
    if (inst != nullptr) inst->busy = false;
    if (--inFlight_ == 0 && tsfn_) tsfn_.Unref(env);
  }

  Napi::Value Dispose(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (inFlight_ > 0 || !queue_.empty()) {
      throw Coded(env, "EDISPOSED", "dispose() while inferences are pending: await them first");
    }
    Close();
    return env.Undefined();
  }

  std::unique_ptr<EngineCore> core_;
  // Set by the thread-safe function's finalizer; shared because that may run after this wrapper is gone.
  std::shared_ptr<std::atomic<bool>> tsfnGone_ = std::make_shared<std::atomic<bool>>(false);
  Napi::ThreadSafeFunction tsfn_;
  std::deque<std::unique_ptr<Request>> queue_;
  std::size_t inFlight_ = 0;
};

// tensorrtLoad(plan: Uint8Array, { devices?: number[], instances?: number, cudaGraphs?: boolean, spinWaitUs?: number })
Napi::Value Load(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const ProviderHost& p = RequireProvider(env);
  if (info.Length() < 1 || !info[0].IsTypedArray()) throw Coded(env, "EINPUT", "tensorrtLoad: plan must be a Uint8Array");
  Napi::Object opts = info.Length() > 1 && info[1].IsObject() ? info[1].As<Napi::Object>() : Napi::Object::New(env);
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess || count == 0) {
    cudaGetLastError();
    throw Coded(env, "ENODEVICE", "no CUDA device is usable");
  }
  std::vector<int> devices;
  Napi::TypedArray plan = info[0].As<Napi::TypedArray>();
  const auto* bytes = static_cast<const uint8_t*>(plan.ArrayBuffer().Data()) + plan.ByteOffset();
  Napi::Value deviceList = opts.Get("devices");
  if (deviceList.IsArray()) {
    Napi::Array a = deviceList.As<Napi::Array>();
    for (uint32_t i = 0; i < a.Length(); ++i) {
      Napi::Value v = a.Get(i);
      const int d = v.IsNumber() ? v.As<Napi::Number>().Int32Value() : -1;
      if (d < 0 || d >= count) {
        throw Coded(env, "ENODEVICE", "device " + v.ToString().Utf8Value() + " does not exist (" +
                                          std::to_string(count) + " visible)");
      }
      devices.push_back(d);
    }
  }
  if (devices.empty()) devices.push_back(0);
  auto deferred = Napi::Promise::Deferred::New(env);
  auto* ctor = static_cast<Napi::FunctionReference*>(info.Data());
  auto* worker = new LoadWorker(env, deferred, *ctor);  // napi-owned: deletes itself after OnOK
  worker->core->provider = &p;
  worker->plan.assign(bytes, bytes + plan.ByteLength());
  worker->devices = std::move(devices);
  worker->instancesPerDevice = std::max(1, IntOption(opts, "instances", 1));
  worker->core->cudaGraphs = opts.Get("cudaGraphs").ToBoolean().Value();
  worker->core->spinWaitUs = std::max(0, IntOption(opts, "spinWaitUs", worker->core->spinWaitUs));
  worker->Queue();
  return deferred.Promise();
}

#endif  // TNP_WITH_CUDA

void Init(Napi::Env env, Napi::Object exports) {
  exports.Set("tensorrtProvider", Napi::Function::New(env, ProviderInfo, "tensorrtProvider"));
  exports.Set("tensorrtBuild", Napi::Function::New(env, Build, "tensorrtBuild"));
#ifdef TNP_WITH_CUDA
  // The class's constructor, per environment (worker threads load the addon too),
  // freed by the environment's cleanup hook.
  auto holder = std::make_unique<Napi::FunctionReference>(Napi::Persistent(TensorrtEngine::Define(env)));
  Napi::FunctionReference* ctor = holder.release();
  env.AddCleanupHook([](Napi::FunctionReference* r) { std::unique_ptr<Napi::FunctionReference> owned(r); }, ctor);
  exports.Set("tensorrtLoad", Napi::Function::New(env, Load, "tensorrtLoad", ctor));
#endif
}

}  // namespace

TNP_REGISTER_MODULE(tensorrt, Init);

}  // namespace tnp::trt
