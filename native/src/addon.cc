// The N-API surface of tensorrt-node: small, named by concept. The TypeScript
// layer (src/native, src/runtime.ts) owns the API users see.
#include <napi.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "../tensorrt/loader.h"
#include "cuda_runtime.h"
#include "driver_probe.h"
#include "host_pool.h"

#include "module_registry.h"

#ifdef TNP_WITH_CUDA
#include <cuda_runtime_api.h>
#endif

#ifndef TNP_BUILD_SYSTEM
#define TNP_BUILD_SYSTEM "unknown"
#endif

namespace tnp {

namespace {

struct Registered {
  const char* name;
  ModuleInit init;
};

std::vector<Registered>& Registry() {
  static std::vector<Registered> registry;
  return registry;
}

}  // namespace

ModuleRegistrar::ModuleRegistrar(const char* name, ModuleInit init) { Registry().push_back({name, init}); }

void InitRegisteredModules(Napi::Env env, Napi::Object exports) {
  for (const Registered& r : Registry()) r.init(env, exports);
}

namespace {

// cpu, or cuda12, cuda13, ... from the toolkit the addon was compiled against.
std::string Variant() {
#ifdef TNP_WITH_CUDA
  return "cuda" + std::to_string(CUDART_VERSION / 1000);
#else
  return "cpu";
#endif
}

Napi::Value BuildInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  o.Set("variant", Variant());
#ifdef TNP_WITH_CUDA
  o.Set("cudaRuntimeVersion", CUDART_VERSION);
#else
  o.Set("cudaRuntimeVersion", env.Null());
#endif
  o.Set("napiVersion", NAPI_VERSION);
  o.Set("compiler", __VERSION__);
  o.Set("buildSystem", TNP_BUILD_SYSTEM);
  return o;
}

Napi::Object DeviceObject(Napi::Env env, const cuda::Device& d) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("index", d.index);
  o.Set("name", d.name);
  o.Set("computeCapability", std::to_string(d.major) + "." + std::to_string(d.minor));
  o.Set("totalMemory", static_cast<double>(d.totalMemory));
  o.Set("pciBusId", d.pciBusId);
  o.Set("uuid", d.uuid);
  o.Set("multiProcessorCount", d.multiProcessorCount);
  return o;
}

Napi::Value CudaInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const DriverProbe& d = ProbeDriver();
  const cuda::Status& s = cuda::Query();
  Napi::Object driver = Napi::Object::New(env);
  driver.Set("libraryFound", d.libraryFound);
  driver.Set("libraryError", d.libraryError);
  driver.Set("cudaVersion", d.cudaVersion);
  driver.Set("kernelModule", d.kernelModule);

  Napi::Object o = Napi::Object::New(env);
  o.Set("driver", driver);
  o.Set("compiled", s.compiled);
  o.Set("runtimeVersion", s.runtimeVersion);
  o.Set("driverVersion", s.driverVersion);
  o.Set("error", s.error);
  o.Set("errorName", s.errorName);
  o.Set("errorString", s.errorString);
  Napi::Array devices = Napi::Array::New(env, s.devices.size());
  for (std::size_t i = 0; i < s.devices.size(); ++i) devices.Set(i, DeviceObject(env, s.devices[i]));
  o.Set("devices", devices);
  return o;
}

Napi::Value TensorrtInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const trt::LoaderReport& r = trt::Probe();
  Napi::Object o = Napi::Object::New(env);
  o.Set("code", trt::LoaderCodeName(r.code));
  o.Set("libraryFound", r.libraryFound);
  o.Set("libraryPath", r.libraryPath);
  o.Set("libraryVersion", r.libraryVersion);
  o.Set("major", r.major);
  o.Set("minor", r.minor);
  o.Set("patch", r.patch);
  o.Set("parserFound", r.parserFound);
  o.Set("parserPath", r.parserPath);
  Napi::Array compiled = Napi::Array::New(env, r.providersCompiled.size());
  for (std::size_t i = 0; i < r.providersCompiled.size(); ++i) compiled.Set(i, r.providersCompiled[i]);
  o.Set("providersCompiled", compiled);
  o.Set("providerCompiled", r.providerCompiled);
  o.Set("providerLoaded", r.providerLoaded);
  o.Set("providerPath", r.providerPath);
  o.Set("addonPath", r.addonPath);
  o.Set("reason", r.reason);
  Napi::Array tried = Napi::Array::New(env, r.tried.size());
  for (std::size_t i = 0; i < r.tried.size(); ++i) tried.Set(i, r.tried[i]);
  o.Set("tried", tried);
  return o;
}

Napi::Error Coded(Napi::Error e, const char* code) {
  e.Set("code", code);
  return e;
}

// Validates a byte count: a non-negative integer no larger than `limit`.
std::size_t ByteCount(Napi::Env env, const Napi::Value& v, std::size_t limit) {
  if (!v.IsNumber()) {
    throw Coded(Napi::TypeError::New(env, "bytes must be a number, received " + std::string(v.IsNull() ? "null" : v.ToString().Utf8Value().substr(0, 40))), "EINPUT");
  }
  const double d = v.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(d) || std::floor(d) != d) {
    throw Coded(Napi::TypeError::New(env, "bytes must be an integer, received " + v.ToString().Utf8Value()), "EINPUT");
  }
  if (d < 0 || d > static_cast<double>(limit)) {
    throw Coded(Napi::RangeError::New(env, "bytes must be between 0 and " + std::to_string(limit) + ", received " +
                                                v.ToString().Utf8Value()),
                "EINPUT");
  }
  return static_cast<std::size_t>(d);
}

void FinalizeBlock(Napi::Env /*env*/, std::uint8_t* data, void* hint) {
  // A no-op when the block was released explicitly (its id is no longer live).
  HostPool::Instance().Release(data, static_cast<std::uint64_t>(reinterpret_cast<std::uintptr_t>(hint)));
}

// allocHost(bytes: number, pinned: boolean): Buffer over a pool block.
Napi::Value AllocHost(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  HostPool& pool = HostPool::Instance();
  const std::size_t bytes = ByteCount(env, info[0], pool.MaxAllocationBytes());
  const bool pinned = info.Length() < 2 || info[1].IsUndefined() || info[1].ToBoolean().Value();
  // V8 gives an empty ArrayBuffer no memory of ours; it owns no block either.
  if (bytes == 0) return Napi::Buffer<std::uint8_t>::New(env, 0);
  HostBlock block = pool.Acquire(bytes, pinned);
  if (block.data == nullptr) {
    throw Coded(Napi::RangeError::New(env, "out of host memory allocating " + std::to_string(bytes) + " bytes"),
                "ENOMEM");
  }
  auto* data = static_cast<std::uint8_t*>(block.data);
  void* hint = reinterpret_cast<void*>(static_cast<std::uintptr_t>(block.id));
  return Napi::Buffer<std::uint8_t>::New(env, data, bytes, FinalizeBlock, hint);
}

// releaseHost(buffer): returns the block now and detaches the buffer, so JS can
// no longer reach the memory. Throws TypeError for anything not live from allocHost.
Napi::Value ReleaseHost(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsTypedArray()) {
    throw Coded(Napi::TypeError::New(env, "releaseHost expects a Buffer returned by allocHost"), "EINPUT");
  }
  Napi::TypedArray view = info[0].As<Napi::TypedArray>();
  Napi::ArrayBuffer ab = view.ArrayBuffer();
  if (ab.IsDetached()) {
    throw Coded(Napi::TypeError::New(env, "releaseHost: this buffer was already released"), "EINPUT");
  }
  if (view.ByteLength() == 0) return env.Undefined();  // allocHost(0) owns nothing
  void* data = ab.Data();
  const std::uint64_t id = view.ByteOffset() == 0 ? HostPool::Instance().LiveId(data) : 0;
  if (id == 0) {
    throw Coded(Napi::TypeError::New(env, "releaseHost expects a Buffer returned by allocHost (not a copy or a slice)"),
                "EINPUT");
  }
  HostPool::Instance().Release(data, id);
  ab.Detach();
  return env.Undefined();
}

Napi::Value HostPoolStatsValue(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const HostPoolStats s = HostPool::Instance().Stats();
  Napi::Object o = Napi::Object::New(env);
  o.Set("bytesInUse", static_cast<double>(s.bytesInUse));
  o.Set("bytesPooled", static_cast<double>(s.bytesPooled));
  o.Set("blocksInUse", static_cast<double>(s.blocksInUse));
  o.Set("blocksPooled", static_cast<double>(s.blocksPooled));
  o.Set("pinned", s.pinned);
  o.Set("maxPooledBytes", static_cast<double>(s.maxPooledBytes));
  o.Set("maxAllocationBytes", static_cast<double>(s.maxAllocationBytes));
  return o;
}

// configureHostPool(maxAllocationBytes, maxPooledBytes)
Napi::Value ConfigureHostPool(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  constexpr std::size_t kNoLimit = std::size_t{1} << 52;
  const std::size_t maxAllocation = ByteCount(env, info[0], kNoLimit);
  const std::size_t maxPooled = ByteCount(env, info[1], kNoLimit);
  HostPool::Instance().SetLimits(maxAllocation, maxPooled);
  return env.Undefined();
}

Napi::Value TrimHostPool(const Napi::CallbackInfo& info) {
  HostPool::Instance().Trim();
  return info.Env().Undefined();
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("buildInfo", Napi::Function::New(env, BuildInfo, "buildInfo"));
  exports.Set("cudaInfo", Napi::Function::New(env, CudaInfo, "cudaInfo"));
  exports.Set("tensorrtInfo", Napi::Function::New(env, TensorrtInfo, "tensorrtInfo"));
  exports.Set("allocHost", Napi::Function::New(env, AllocHost, "allocHost"));
  exports.Set("releaseHost", Napi::Function::New(env, ReleaseHost, "releaseHost"));
  exports.Set("hostPoolStats", Napi::Function::New(env, HostPoolStatsValue, "hostPoolStats"));
  exports.Set("configureHostPool", Napi::Function::New(env, ConfigureHostPool, "configureHostPool"));
  exports.Set("trimHostPool", Napi::Function::New(env, TrimHostPool, "trimHostPool"));
  InitRegisteredModules(env, exports);
  return exports;
}

}  // namespace
}  // namespace tnp

static Napi::Object InitTensorrtNode(Napi::Env env, Napi::Object exports) { return tnp::Init(env, exports); }

NODE_API_MODULE(tensorrt_node, InitTensorrtNode)
