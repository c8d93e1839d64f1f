// A TensorRT provider: the only code of the package that includes TensorRT's
// headers. Compiled once per major (10, 11) into its own shared object with
// hidden symbols; it exports tnp_provider_get() alone (see provider_abi.h).
//
// It does not link libnvinfer: the addon dlopens the library and hands the
// handle in, and the provider resolves TensorRT's extern "C" factories with
// dlsym. Newer calls are compiled only where the headers declare them and
// called only where the loaded library's minor version has them.
#include <dlfcn.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <deque>
#include <exception>
#include <memory>
#include <mutex>
#include <new>
#include <string>
#include <utility>
#include <vector>

#include <NvInfer.h>
#include <NvOnnxParser.h>

#include "provider_abi.h"

#if !defined(NV_TENSORRT_MAJOR) || (NV_TENSORRT_MAJOR != 10 && NV_TENSORRT_MAJOR != 11)
#error "tensorrt-node's provider supports TensorRT 10.x and 11.x headers"
#endif

#define TNP_EXPORT extern "C" __attribute__((visibility("default")))

// Version numbers as getInferLibVersion() gives them: major*10000 + minor*100 + patch.
#define TNP_HEADERS_AT_LEAST(major, minor) \
  (NV_TENSORRT_MAJOR > (major) || (NV_TENSORRT_MAJOR == (major) && NV_TENSORRT_MINOR >= (minor)))

namespace {

using nvinfer1::ILogger;

// ---- errors ----------------------------------------------------------------

void copyString(char* dst, size_t cap, const char* src) {
  if (cap == 0) return;
  if (src == nullptr) src = "";
  std::snprintf(dst, cap, "%s", src);
}

TnpStatus fail(TnpError* err, TnpStatus status, const std::string& message) {
  if (err != nullptr) {
    copyString(err->message, sizeof err->message, message.c_str());
    err->node_index = -1;
    err->node_name[0] = '\0';
    err->op_type[0] = '\0';
  }
  return status;
}

// Runs body, turning any C++ exception into a status: none may cross the C ABI.
template <typename Body>
TnpStatus guarded(TnpError* err, Body&& body) noexcept {
  try {
    return body();
  } catch (const std::bad_alloc&) {
    return fail(err, TNP_E_INTERNAL, "out of host memory");
  } catch (const std::exception& e) {
    return fail(err, TNP_E_INTERNAL, std::string("unexpected exception: ") + e.what());
  } catch (...) {
    return fail(err, TNP_E_INTERNAL, "unexpected exception");
  }
}

// ---- logger ----------------------------------------------------------------

// TensorRT keeps one logger per process in practice; ours forwards to the
// addon and remembers recent errors so failures can say what TensorRT said.
// Errors are kept with a sequence number, and a call reads those logged since it
// began (mark() at its start, errorsSince() when it fails): builds, loads and runs
// on several threads at once neither wipe each other's errors nor report stale ones.
// (A concurrent call's errors logged meanwhile may still appear beside its own.)
class Logger final : public ILogger {
 public:
  Logger(TnpLogFn fn, void* user) : fn_(fn), user_(user) {}

  void log(Severity severity, nvinfer1::AsciiChar const* msg) noexcept override {
    if (msg == nullptr) return;
    if (severity <= Severity::kERROR) {
      try {
        std::lock_guard<std::mutex> lock(mutex_);
        errors_.emplace_back(seq_.load(std::memory_order_relaxed) + 1, std::string(msg).substr(0, 1000));
        seq_.store(errors_.back().first, std::memory_order_release);
        if (errors_.size() > 32) errors_.pop_front();
      } catch (...) {
        // Losing a log line must not take TensorRT down with it.
      }
    }
    if (fn_ != nullptr) fn_(user_, static_cast<int32_t>(severity), msg);
  }

  // No lock: enqueueV3 and setInputShape take a mark on every run.
  uint64_t mark() const { return seq_.load(std::memory_order_acquire); }

  std::string errorsSince(uint64_t mark) {
    std::lock_guard<std::mutex> lock(mutex_);
    std::string out;
    for (const auto& [seq, msg] : errors_) {
      if (seq <= mark) continue;
      if (!out.empty()) out += "; ";
      out += msg;
    }
    return out;
  }

 private:
  TnpLogFn fn_;
  void* user_;
  std::mutex mutex_;
  std::atomic<uint64_t> seq_{0};  // written under mutex_
  std::deque<std::pair<uint64_t, std::string>> errors_;
};

// ---- conversions -------------------------------------------------------------

TnpDataType toTnp(nvinfer1::DataType t) {
  using nvinfer1::DataType;
  switch (t) {
    case DataType::kFLOAT: return TNP_DT_FLOAT32;
    case DataType::kHALF: return TNP_DT_FLOAT16;
    case DataType::kINT8: return TNP_DT_INT8;
    case DataType::kINT32: return TNP_DT_INT32;
    case DataType::kBOOL: return TNP_DT_BOOL;
    case DataType::kUINT8: return TNP_DT_UINT8;
    case DataType::kFP8: return TNP_DT_FP8;
    case DataType::kBF16: return TNP_DT_BF16;
    case DataType::kINT64: return TNP_DT_INT64;
    case DataType::kINT4: return TNP_DT_INT4;
#if TNP_HEADERS_AT_LEAST(10, 8)
    case DataType::kFP4: return TNP_DT_FP4;  // declared since 10.8
#endif
    default: return TNP_DT_UNKNOWN;  // kE8M0 and later additions
  }
}

TnpDims toTnp(const nvinfer1::Dims& d) {
  TnpDims out{};
  out.nb_dims = d.nbDims;
  const int32_t n = std::max<int32_t>(0, std::min<int32_t>(d.nbDims, TNP_MAX_DIMS));
  for (int32_t i = 0; i < n; ++i) out.d[i] = d.d[i];
  return out;
}

bool toTrt(const TnpDims& in, nvinfer1::Dims* out) {
  if (in.nb_dims < 0 || in.nb_dims > nvinfer1::Dims::MAX_DIMS || in.nb_dims > TNP_MAX_DIMS) return false;
  out->nbDims = in.nb_dims;
  for (int32_t i = 0; i < in.nb_dims; ++i) out->d[i] = in.d[i];
  return true;
}

std::string dimsText(const nvinfer1::Dims& d) {
  std::string s = "[";
  for (int32_t i = 0; i < d.nbDims; ++i) {
    if (i) s += ",";
    s += std::to_string(d.d[i]);
  }
  return s + "]";
}

}  // namespace

// ---- opaque handles ------------------------------------------------------------

using CreateFactoryFn = void* (*)(void* logger, int32_t version);
using CreateParserFn = void* (*)(void* network, void* logger, int version);
using VersionFn = int32_t (*)();

struct TnpLibrary {
  TnpLibrary(TnpLogFn fn, void* user) : logger(fn, user) {}
  Logger logger;
  int32_t version = 0;
  int32_t buildVersion = 0;
  CreateFactoryFn createBuilder = nullptr;
  CreateFactoryFn createRuntime = nullptr;
  CreateParserFn createParser = nullptr;

  // An absolute version (major and minor): a call added in 10.8 is also in every 11.x.
  bool atLeast(int32_t major, int32_t minor) const { return version >= major * 10000 + minor * 100; }
  // The version the factories are told the caller was compiled against: the
  // headers', or the library's own where it is older (then only calls it has
  // are made: newer ones are gated on atLeast()).
  int32_t factoryVersion() const { return std::min<int32_t>(NV_TENSORRT_VERSION, version); }
  // The factories take void*: pass exactly the ILogger* TensorRT will cast it back to.
  void* iLogger() { return static_cast<ILogger*>(&logger); }
};

struct TnpEngine {
  TnpLibrary* lib = nullptr;
  // Declared before the engine so it is destroyed after it, as TensorRT requires.
  std::unique_ptr<nvinfer1::IRuntime> runtime;
  std::unique_ptr<nvinfer1::ICudaEngine> engine;
  std::vector<std::string> names;
};

struct TnpContext {
  TnpEngine* engine = nullptr;
  std::unique_ptr<nvinfer1::IExecutionContext> context;
};

namespace {

// ---- library -------------------------------------------------------------------

TnpStatus libraryOpen(void* nvinfer, void* parser, TnpLogFn log, void* logUser, TnpLibrary** out, TnpError* err) {
  return guarded(err, [&]() -> TnpStatus {
    if (out == nullptr) return fail(err, TNP_E_INVALID, "library_open: out is NULL");
    *out = nullptr;
    if (nvinfer == nullptr) return fail(err, TNP_E_INVALID, "library_open: no libnvinfer handle");
    auto lib = std::make_unique<TnpLibrary>(log, logUser);
    auto need = [&](void* handle, const char* name) -> void* {
      dlerror();
      return dlsym(handle, name);
    };
    auto getVersion = reinterpret_cast<VersionFn>(need(nvinfer, "getInferLibVersion"));
    lib->createBuilder = reinterpret_cast<CreateFactoryFn>(need(nvinfer, "createInferBuilder_INTERNAL"));
    lib->createRuntime = reinterpret_cast<CreateFactoryFn>(need(nvinfer, "createInferRuntime_INTERNAL"));
    const char* missing = getVersion == nullptr           ? "getInferLibVersion"
                          : lib->createRuntime == nullptr ? "createInferRuntime_INTERNAL"
                          : lib->createBuilder == nullptr ? "createInferBuilder_INTERNAL"
                                                          : nullptr;
    if (missing != nullptr) {
      return fail(err, TNP_E_LIBRARY, std::string("libnvinfer lacks the symbol ") + missing);
    }
    lib->version = getVersion();
    if (lib->version / 10000 != NV_TENSORRT_MAJOR) {
      return fail(err, TNP_E_VERSION,
                  "libnvinfer is version " + std::to_string(lib->version) + " but this provider was compiled for " +
                      std::to_string(NV_TENSORRT_MAJOR) + ".x");
    }
    auto getBuild = reinterpret_cast<VersionFn>(need(nvinfer, "getInferLibBuildVersion"));
    lib->buildVersion = getBuild != nullptr ? getBuild() : 0;
    if (parser != nullptr) {
      lib->createParser = reinterpret_cast<CreateParserFn>(need(parser, "createNvOnnxParser_INTERNAL"));
    }
    *out = lib.release();
    return TNP_OK;
  });
}

void libraryClose(TnpLibrary* lib) { std::unique_ptr<TnpLibrary> owned(lib); }
int32_t libraryVersion(const TnpLibrary* lib) { return lib != nullptr ? lib->version : 0; }
int32_t libraryBuildVersion(const TnpLibrary* lib) { return lib != nullptr ? lib->buildVersion : 0; }
int32_t libraryCanBuild(const TnpLibrary* lib) { return lib != nullptr && lib->createParser != nullptr ? 1 : 0; }

// ---- build -------------------------------------------------------------------

// Forwards TensorRT's build phases to the addon; a non-zero answer cancels.
// TensorRT calls it from its own threads, possibly at once: it must be thread-safe.
class ProgressMonitor final : public nvinfer1::IProgressMonitor {
 public:
  ProgressMonitor(TnpProgressFn fn, void* user) : fn_(fn), user_(user) {}

  void phaseStart(char const* phaseName, char const* parentPhase, int32_t nbSteps) noexcept override {
    if (fn_(user_, TNP_PROGRESS_PHASE_START, phaseName, parentPhase, 0, nbSteps) != 0) cancelled_ = true;
  }
  bool stepComplete(char const* phaseName, int32_t step) noexcept override {
    if (fn_(user_, TNP_PROGRESS_STEP, phaseName, nullptr, step, 0) != 0) cancelled_ = true;
    return !cancelled_;
  }
  void phaseFinish(char const* phaseName) noexcept override {
    fn_(user_, TNP_PROGRESS_PHASE_FINISH, phaseName, nullptr, 0, 0);
  }
  bool cancelled() const { return cancelled_; }

 private:
  const TnpProgressFn fn_;
  void* const user_;
  std::atomic<bool> cancelled_{false};
};

TnpBlob toBlob(std::unique_ptr<nvinfer1::IHostMemory> mem) {
  TnpBlob blob{};
  if (!mem) return blob;
  blob.data = mem->data();
  blob.size = mem->size();
  blob.owner = mem.release();  // released by blobFree
  return blob;
}

void blobFree(TnpBlob* blob) {
  if (blob == nullptr) return;
  std::unique_ptr<nvinfer1::IHostMemory> owned(static_cast<nvinfer1::IHostMemory*>(blob->owner));
  *blob = TnpBlob{};
}

bool isDynamic(const nvinfer1::Dims& d) {
  for (int32_t i = 0; i < d.nbDims; ++i) {
    if (d.d[i] < 0) return true;
  }
  return d.nbDims < 0;
}

// Reports the first parser error with its ONNX node, operator and message.
TnpStatus parseFailure(nvonnxparser::IParser& parser, Logger& logger, uint64_t since, TnpError* err) {
  const int n = parser.getNbErrors();
  if (n <= 0) {
    return fail(err, TNP_E_PARSE, "the ONNX parser rejected the model: " + logger.errorsSince(since));
  }
  const nvonnxparser::IParserError* e = parser.getError(0);
  std::string message = "ONNX parser: ";
  message += e->desc() != nullptr ? e->desc() : "(no description)";
  if (n > 1) message += " (and " + std::to_string(n - 1) + " more)";
  fail(err, TNP_E_PARSE, message);
  if (err != nullptr) {
    err->node_index = e->node();
    copyString(err->node_name, sizeof err->node_name, e->nodeName());
    copyString(err->op_type, sizeof err->op_type, e->nodeOperator());
  }
  return TNP_E_PARSE;
}

TnpStatus build(TnpLibrary* lib, const TnpBuildOptions* o, TnpBlob* planOut, TnpBlob* cacheOut, TnpError* err) {
  return guarded(err, [&]() -> TnpStatus {
    if (lib == nullptr || o == nullptr || planOut == nullptr) return fail(err, TNP_E_INVALID, "build: NULL argument");
    if (o->struct_size < sizeof(TnpBuildOptions)) return fail(err, TNP_E_INVALID, "build: options struct too small");
    if (o->onnx == nullptr || o->onnx_size == 0) return fail(err, TNP_E_INVALID, "build: empty ONNX model");
    if (lib->createParser == nullptr) {
      return fail(err, TNP_E_LIBRARY, "libnvonnxparser is not loaded: this TensorRT can run engines but not build them");
    }
    *planOut = TnpBlob{};
    if (cacheOut != nullptr) *cacheOut = TnpBlob{};
    const uint64_t since = lib->logger.mark();

    // Declared before the builder so they are destroyed after it (and its
    // config) on every return: TensorRT requires both to outlive their users.
    std::unique_ptr<nvinfer1::ITimingCache> cache;
    std::unique_ptr<ProgressMonitor> monitor;
    std::unique_ptr<nvinfer1::IBuilder> builder(
        static_cast<nvinfer1::IBuilder*>(lib->createBuilder(lib->iLogger(), lib->factoryVersion())));
    if (!builder) return fail(err, TNP_E_LIBRARY, "createInferBuilder failed: " + lib->logger.errorsSince(since));

    // INT8 comes from Q/DQ nodes (explicit quantization), so the network is
    // strongly typed: in 10.x that is creation flag bit 1; 11.x networks
    // always are, and its flag 0 (renumbered) is ignored.
#if NV_TENSORRT_MAJOR >= 11
    const nvinfer1::NetworkDefinitionCreationFlags flags = 0;
#else
    const nvinfer1::NetworkDefinitionCreationFlags flags =
        1U << static_cast<uint32_t>(nvinfer1::NetworkDefinitionCreationFlag::kSTRONGLY_TYPED);
#endif
    std::unique_ptr<nvinfer1::INetworkDefinition> network(builder->createNetworkV2(flags));
    if (!network) return fail(err, TNP_E_BUILD, "createNetworkV2 failed: " + lib->logger.errorsSince(since));

    std::unique_ptr<nvonnxparser::IParser> parser(static_cast<nvonnxparser::IParser*>(
        lib->createParser(static_cast<nvinfer1::INetworkDefinition*>(network.get()), lib->iLogger(), NV_ONNX_PARSER_VERSION)));
    if (!parser) return fail(err, TNP_E_LIBRARY, "createNvOnnxParser failed: " + lib->logger.errorsSince(since));
    if (!parser->parse(o->onnx, o->onnx_size)) return parseFailure(*parser, lib->logger, since, err);

    std::unique_ptr<nvinfer1::IBuilderConfig> config(builder->createBuilderConfig());
    if (!config) return fail(err, TNP_E_BUILD, "createBuilderConfig failed: " + lib->logger.errorsSince(since));

    // Optimization profile: every dynamic input needs a range; a range must
    // name a model input, and ranges for static inputs are ignored.
    for (int32_t s = 0; s < o->nb_shapes; ++s) {
      const char* name = o->shapes[s].name;
      bool found = false;
      for (int32_t i = 0; i < network->getNbInputs(); ++i) {
        found = found || (name != nullptr && std::strcmp(network->getInput(i)->getName(), name) == 0);
      }
      if (!found) {
        return fail(err, TNP_E_INVALID, std::string("shapes names '") + (name ? name : "") + "', which is not a model input");
      }
    }
    nvinfer1::IOptimizationProfile* profile = nullptr;  // owned by the builder
    for (int32_t i = 0; i < network->getNbInputs(); ++i) {
      nvinfer1::ITensor* input = network->getInput(i);
      const nvinfer1::Dims dims = input->getDimensions();
      if (!isDynamic(dims)) continue;
      const TnpShapeRange* range = nullptr;
      for (int32_t s = 0; s < o->nb_shapes; ++s) {
        if (std::strcmp(o->shapes[s].name, input->getName()) == 0) range = &o->shapes[s];
      }
      nvinfer1::Dims mn{}, op{}, mx{};
      if (range == nullptr) {
        bool batchOnly = dims.nbDims > 0 && dims.d[0] < 0;
        for (int32_t k = 1; k < dims.nbDims; ++k) batchOnly = batchOnly && dims.d[k] >= 0;
        if (!batchOnly || o->default_batch_max <= 0) {
          return fail(err, TNP_E_INVALID, std::string("input '") + input->getName() + "' has dynamic shape " +
                                              dimsText(dims) + ": give its min/opt/max in `shapes`");
        }
        mn = op = mx = dims;
        mn.d[0] = 1;
        op.d[0] = mx.d[0] = o->default_batch_max;
      } else if (!toTrt(range->min, &mn) || !toTrt(range->opt, &op) || !toTrt(range->max, &mx) ||
                 mn.nbDims != dims.nbDims || op.nbDims != dims.nbDims || mx.nbDims != dims.nbDims) {
        return fail(err, TNP_E_INVALID, std::string("shapes for '") + input->getName() + "' must have rank " +
                                            std::to_string(dims.nbDims) + " like " + dimsText(dims));
      }
      if (profile == nullptr) profile = builder->createOptimizationProfile();
      if (profile == nullptr) return fail(err, TNP_E_BUILD, "createOptimizationProfile failed");
      using nvinfer1::OptProfileSelector;
      if (!profile->setDimensions(input->getName(), OptProfileSelector::kMIN, mn) ||
          !profile->setDimensions(input->getName(), OptProfileSelector::kOPT, op) ||
          !profile->setDimensions(input->getName(), OptProfileSelector::kMAX, mx)) {
        return fail(err, TNP_E_INVALID, std::string("TensorRT rejected the shapes of '") + input->getName() +
                                            "' (min " + dimsText(mn) + ", opt " + dimsText(op) + ", max " +
                                            dimsText(mx) + "): " + lib->logger.errorsSince(since));
      }
    }
    if (profile != nullptr && config->addOptimizationProfile(profile) < 0) {
      return fail(err, TNP_E_INVALID, "invalid optimization profile: " + lib->logger.errorsSince(since));
    }

    if (o->workspace_bytes > 0) config->setMemoryPoolLimit(nvinfer1::MemoryPoolType::kWORKSPACE, o->workspace_bytes);
    if (o->optimization_level >= 0) config->setBuilderOptimizationLevel(o->optimization_level);
    if (o->tiling_level >= 0) {
      // TilingOptimizationLevel kNONE (0) .. kFULL (3): another value would be an invalid enum.
      if (o->tiling_level > 3) {
        return fail(err, TNP_E_INVALID,
                    "tilingLevel must be 0 (none), 1 (fast), 2 (moderate) or 3 (full), not " +
                        std::to_string(o->tiling_level));
      }
#if TNP_HEADERS_AT_LEAST(10, 8)
      // Declared since 10.8: call only where the loaded library has it.
      if (lib->atLeast(10, 8)) {
        if (!config->setTilingOptimizationLevel(static_cast<nvinfer1::TilingOptimizationLevel>(o->tiling_level))) {
          return fail(err, TNP_E_INVALID, "TensorRT rejected tilingLevel " + std::to_string(o->tiling_level) + ": " +
                                              lib->logger.errorsSince(since));
        }
      } else {
        lib->logger.log(ILogger::Severity::kWARNING, "tilingLevel ignored: it needs TensorRT >= 10.8");
      }
#else
      lib->logger.log(ILogger::Severity::kWARNING, "tilingLevel ignored: this provider was compiled before 10.8");
#endif
    }

    cache.reset(config->createTimingCache(o->timing_cache, o->timing_cache != nullptr ? o->timing_cache_size : 0));
    if (!cache || !config->setTimingCache(*cache, /*ignoreMismatch=*/false)) {
      // A corrupt blob (no cache made), or a cache from another device or
      // version: start from an empty one, so the file is replaced after the build.
      cache.reset(config->createTimingCache(nullptr, 0));
      if (cache) config->setTimingCache(*cache, false);
    }

    if (o->progress != nullptr) {
      monitor = std::make_unique<ProgressMonitor>(o->progress, o->progress_user);
      config->setProgressMonitor(monitor.get());
    }

    std::unique_ptr<nvinfer1::IHostMemory> plan(builder->buildSerializedNetwork(*network, *config));
    if (monitor && monitor->cancelled()) return fail(err, TNP_E_CANCELLED, "build cancelled");
    if (!plan || plan->size() == 0) {
      const std::string why = lib->logger.errorsSince(since);
      return fail(err, TNP_E_BUILD, "TensorRT could not build the engine: " + (why.empty() ? "no message" : why));
    }
    if (cacheOut != nullptr) {
      const nvinfer1::ITimingCache* used = config->getTimingCache();
      if (used != nullptr) *cacheOut = toBlob(std::unique_ptr<nvinfer1::IHostMemory>(used->serialize()));
    }
    *planOut = toBlob(std::move(plan));
    return TNP_OK;
  });
}

// ---- engine ------------------------------------------------------------------

TnpStatus engineLoad(TnpLibrary* lib, const void* plan, size_t size, TnpEngine** out, TnpError* err) {
  return guarded(err, [&]() -> TnpStatus {
    if (lib == nullptr || plan == nullptr || size == 0 || out == nullptr) {
      return fail(err, TNP_E_INVALID, "engine_load: empty plan");
    }
    *out = nullptr;
    const uint64_t since = lib->logger.mark();
    auto engine = std::make_unique<TnpEngine>();
    engine->lib = lib;
    engine->runtime.reset(static_cast<nvinfer1::IRuntime*>(lib->createRuntime(lib->iLogger(), lib->factoryVersion())));
    if (!engine->runtime) return fail(err, TNP_E_LIBRARY, "createInferRuntime failed: " + lib->logger.errorsSince(since));
    engine->engine.reset(engine->runtime->deserializeCudaEngine(plan, size));
    if (!engine->engine) {
      return fail(err, TNP_E_RUNTIME, "TensorRT could not deserialize the plan: " + lib->logger.errorsSince(since));
    }
    const int32_t n = engine->engine->getNbIOTensors();
    for (int32_t i = 0; i < n; ++i) engine->names.emplace_back(engine->engine->getIOTensorName(i));
    *out = engine.release();
    return TNP_OK;
  });
}

void engineFree(TnpEngine* engine) { std::unique_ptr<TnpEngine> owned(engine); }

int32_t engineIoCount(const TnpEngine* engine) {
  return engine != nullptr ? static_cast<int32_t>(engine->names.size()) : 0;
}

int32_t engineProfileCount(const TnpEngine* engine) {
  return engine != nullptr ? engine->engine->getNbOptimizationProfiles() : 0;
}

TnpStatus engineIoDesc(const TnpEngine* engine, int32_t index, TnpTensorDesc* out, TnpError* err) {
  return guarded(err, [&]() -> TnpStatus {
    if (engine == nullptr || out == nullptr || index < 0 || index >= static_cast<int32_t>(engine->names.size())) {
      return fail(err, TNP_E_INVALID, "engine_io_desc: index out of range");
    }
    const char* name = engine->names[index].c_str();
    const nvinfer1::ICudaEngine& e = *engine->engine;
    // Shape tensors live in host memory: TensorRT would dereference the device
    // buffer the addon binds as a host pointer, so refuse them here.
    if (e.getTensorLocation(name) == nvinfer1::TensorLocation::kHOST) {
      return fail(err, TNP_E_INVALID, std::string("tensor '") + name +
                                          "' is a shape tensor (host memory), which tensorrt-node does not support");
    }
    TnpTensorDesc d{};
    d.name = name;
    d.is_input = e.getTensorIOMode(name) == nvinfer1::TensorIOMode::kINPUT ? 1 : 0;
    d.dtype = toTnp(e.getTensorDataType(name));
    d.shape = toTnp(e.getTensorShape(name));
    d.min = d.opt = d.max = d.shape;
    if (d.is_input && isDynamic(e.getTensorShape(name))) {
      using nvinfer1::OptProfileSelector;
      d.min = toTnp(e.getProfileShape(name, 0, OptProfileSelector::kMIN));
      d.opt = toTnp(e.getProfileShape(name, 0, OptProfileSelector::kOPT));
      d.max = toTnp(e.getProfileShape(name, 0, OptProfileSelector::kMAX));
    }
    *out = d;
    return TNP_OK;
  });
}

// ---- contexts ------------------------------------------------------------------

TnpStatus contextCreate(TnpEngine* engine, void* stream, TnpContext** out, TnpError* err) {
  return guarded(err, [&]() -> TnpStatus {
    if (engine == nullptr || out == nullptr) return fail(err, TNP_E_INVALID, "context_create: NULL argument");
    *out = nullptr;
    const uint64_t since = engine->lib->logger.mark();
    auto ctx = std::make_unique<TnpContext>();
    ctx->engine = engine;
    ctx->context.reset(engine->engine->createExecutionContext());
    if (!ctx->context) {
      return fail(err, TNP_E_RUNTIME, "createExecutionContext failed: " + engine->lib->logger.errorsSince(since));
    }
    if (engine->engine->getNbOptimizationProfiles() > 1 &&
        !ctx->context->setOptimizationProfileAsync(0, static_cast<cudaStream_t>(stream))) {
      return fail(err, TNP_E_RUNTIME, "setOptimizationProfileAsync failed: " + engine->lib->logger.errorsSince(since));
    }
    *out = ctx.release();
    return TNP_OK;
  });
}

void contextFree(TnpContext* ctx) { std::unique_ptr<TnpContext> owned(ctx); }

TnpStatus contextSetInputShape(TnpContext* ctx, const char* name, const TnpDims* dims, TnpError* err) {
  return guarded(err, [&]() -> TnpStatus {
    nvinfer1::Dims d{};
    if (ctx == nullptr || name == nullptr || dims == nullptr || !toTrt(*dims, &d)) {
      return fail(err, TNP_E_INVALID, "context_set_input_shape: bad argument");
    }
    const uint64_t since = ctx->engine->lib->logger.mark();
    if (!ctx->context->setInputShape(name, d)) {
      return fail(err, TNP_E_INVALID, std::string("TensorRT rejected shape ") + dimsText(d) + " for input '" + name +
                                          "': " + ctx->engine->lib->logger.errorsSince(since));
    }
    return TNP_OK;
  });
}

TnpStatus contextSetAddress(TnpContext* ctx, const char* name, void* ptr, TnpError* err) {
  return guarded(err, [&]() -> TnpStatus {
    if (ctx == nullptr || name == nullptr) return fail(err, TNP_E_INVALID, "context_set_address: bad argument");
    if (!ctx->context->setTensorAddress(name, ptr)) {
      return fail(err, TNP_E_INVALID, std::string("setTensorAddress failed for '") + name + "'");
    }
    return TNP_OK;
  });
}

TnpStatus contextTensorShape(const TnpContext* ctx, const char* name, TnpDims* out, TnpError* err) {
  return guarded(err, [&]() -> TnpStatus {
    if (ctx == nullptr || name == nullptr || out == nullptr) {
      return fail(err, TNP_E_INVALID, "context_tensor_shape: bad argument");
    }
    *out = toTnp(ctx->context->getTensorShape(name));
    if (out->nb_dims < 0) return fail(err, TNP_E_INVALID, std::string("no tensor named '") + name + "'");
    return TNP_OK;
  });
}

TnpStatus contextEnqueue(TnpContext* ctx, void* stream, TnpError* err) {
  return guarded(err, [&]() -> TnpStatus {
    if (ctx == nullptr) return fail(err, TNP_E_INVALID, "context_enqueue: NULL context");
    const uint64_t since = ctx->engine->lib->logger.mark();
    if (!ctx->context->enqueueV3(static_cast<cudaStream_t>(stream))) {
      return fail(err, TNP_E_RUNTIME, "enqueueV3 failed: " + ctx->engine->lib->logger.errorsSince(since));
    }
    return TNP_OK;
  });
}

const TnpProviderApi kApi = {
    TNP_PROVIDER_ABI_VERSION,
    sizeof(TnpProviderApi),
    NV_TENSORRT_VERSION,
    NV_TENSORRT_MAJOR,
    libraryOpen,
    libraryClose,
    libraryVersion,
    libraryBuildVersion,
    libraryCanBuild,
    build,
    blobFree,
    engineLoad,
    engineFree,
    engineIoCount,
    engineIoDesc,
    engineProfileCount,
    contextCreate,
    contextFree,
    contextSetInputShape,
    contextSetAddress,
    contextTensorShape,
    contextEnqueue,
};

}  // namespace

TNP_EXPORT const TnpProviderApi* tnp_provider_get(uint32_t abi_version) {
  return abi_version == TNP_PROVIDER_ABI_VERSION ? &kApi : nullptr;
}
