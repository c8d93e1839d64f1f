#include "loader.h"

#include <dlfcn.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <iterator>
#include <string>
#include <vector>

namespace tnp::trt {
namespace {

constexpr int kSupportedMajors[] = {11, 10};  // search order: newest first

struct Handles {
  void* infer = nullptr;
  void* parser = nullptr;
  void* provider = nullptr;
};

// Handles stay open for the life of the process: engines hold pointers into them.
Handles& GetHandles() {
  static Handles handles;
  return handles;
}

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr ? std::string(v) : std::string();
}

std::string DlError() {
  const char* e = dlerror();
  return e != nullptr ? std::string(e) : std::string("unknown error");
}

void* Open(const std::string& what, int flags, LoaderReport& r) {
  dlerror();
  void* h = dlopen(what.c_str(), flags);
  if (h == nullptr) r.tried.push_back(what + ": " + DlError());
  return h;
}

std::string ThisObjectPath() {
  Dl_info info{};
  if (dladdr(reinterpret_cast<void*>(&Probe), &info) != 0 && info.dli_fname != nullptr) {
    return info.dli_fname;
  }
  return {};
}

bool OpenInfer(LoaderReport& r, Handles& h) {
  const std::string forced = Env("TENSORRT_NODE_NVINFER_PATH");
  if (!forced.empty()) {
    h.infer = Open(forced, RTLD_NOW | RTLD_LOCAL, r);
    if (h.infer != nullptr) r.libraryPath = forced;
  } else {
    // Newest first, but a major this addon has a provider for before one it has none for:
    // with TensorRT 10 and 11 both installed and only the 10 provider built, 10 runs.
    std::vector<int> order(std::begin(kSupportedMajors), std::end(kSupportedMajors));
    std::stable_partition(order.begin(), order.end(), [&r](int major) {
      return std::find(r.providersCompiled.begin(), r.providersCompiled.end(), major) != r.providersCompiled.end();
    });
    for (int major : order) {
      const std::string name = "libnvinfer.so." + std::to_string(major);
      h.infer = Open(name, RTLD_NOW | RTLD_LOCAL, r);
      if (h.infer != nullptr) {
        r.libraryPath = name;
        break;
      }
    }
  }
  if (h.infer == nullptr) {
    r.code = LoaderCode::kLibraryNotFound;
    r.reason = forced.empty()
                   ? "TensorRT not found (libnvinfer.so.11 and libnvinfer.so.10 could not be opened): "
                     "install TensorRT 10 or 11 and make its lib folder visible (LD_LIBRARY_PATH or ldconfig)"
                   : "TensorRT not found at TENSORRT_NODE_NVINFER_PATH=" + forced + ": " + r.tried.back();
    return false;
  }
  // Resolve the real file, for the report and to find the parser beside it.
  Dl_info info{};
  void* sym = dlsym(h.infer, "getInferLibVersion");
  if (sym != nullptr && dladdr(sym, &info) != 0 && info.dli_fname != nullptr) r.libraryPath = info.dli_fname;
  r.libraryFound = true;
  if (sym == nullptr) {
    r.code = LoaderCode::kMissingSymbol;
    r.reason = r.libraryPath + " does not export getInferLibVersion: it is not a TensorRT library";
    return false;
  }
  using VersionFn = int (*)();
  r.libraryVersion = reinterpret_cast<VersionFn>(sym)();
  r.major = r.libraryVersion / 10000;
  r.minor = (r.libraryVersion / 100) % 100;
  r.patch = r.libraryVersion % 100;
  if (r.major != 10 && r.major != 11) {
    r.code = LoaderCode::kUnsupportedMajor;
    r.reason = "TensorRT " + std::to_string(r.major) + "." + std::to_string(r.minor) + " at " + r.libraryPath +
               " is not supported: install TensorRT 10 or 11";
    return false;
  }
  for (const char* factory : {"createInferBuilder_INTERNAL", "createInferRuntime_INTERNAL"}) {
    if (dlsym(h.infer, factory) == nullptr) {
      r.code = LoaderCode::kMissingSymbol;
      r.reason = r.libraryPath + " lacks " + factory + ": the TensorRT installation is incomplete or not genuine";
      return false;
    }
  }
  return true;
}

bool OpenParser(LoaderReport& r, Handles& h) {
  const std::string forced = Env("TENSORRT_NODE_ONNXPARSER_PATH");
  const std::string name = "libnvonnxparser.so." + std::to_string(r.major);
  if (!forced.empty()) {
    h.parser = Open(forced, RTLD_NOW | RTLD_LOCAL, r);
    if (h.parser != nullptr) r.parserPath = forced;
  } else {
    // Beside libnvinfer first (an SDK unpacked anywhere), then the library path.
    const std::filesystem::path beside = std::filesystem::path(r.libraryPath).parent_path() / name;
    if (beside.has_parent_path() && std::filesystem::exists(beside)) {
      h.parser = Open(beside.string(), RTLD_NOW | RTLD_LOCAL, r);
      if (h.parser != nullptr) r.parserPath = beside.string();
    }
    if (h.parser == nullptr) {
      h.parser = Open(name, RTLD_NOW | RTLD_LOCAL, r);
      if (h.parser != nullptr) r.parserPath = name;
    }
  }
  if (h.parser == nullptr) {
    r.code = LoaderCode::kParserNotFound;
    r.reason = "TensorRT's ONNX parser (" + (forced.empty() ? name : forced) +
               ") could not be opened: install the TensorRT ONNX parser of the same version (" + r.tried.back() +
               ")";
    return false;
  }
  r.parserFound = true;
  if (dlsym(h.parser, "createNvOnnxParser_INTERNAL") == nullptr) {
    r.code = LoaderCode::kParserMissingSymbol;
    r.reason = r.parserPath + " lacks createNvOnnxParser_INTERNAL: the ONNX parser installation is incomplete";
    return false;
  }
  return true;
}

void FindProviders(LoaderReport& r, std::filesystem::path& dir) {
  const std::string forced = Env("TENSORRT_NODE_PROVIDER_DIR");
  dir = !forced.empty() ? std::filesystem::path(forced) : std::filesystem::path(r.addonPath).parent_path();
  for (int major : {10, 11}) {
    std::error_code ec;
    if (std::filesystem::exists(dir / ("tensorrt_node_provider_trt" + std::to_string(major) + ".so"), ec)) {
      r.providersCompiled.push_back(major);
    }
  }
}

bool OpenProvider(LoaderReport& r, Handles& h, const std::filesystem::path& dir) {
  const std::string file = "tensorrt_node_provider_trt" + std::to_string(r.major) + ".so";
  const std::filesystem::path path = dir / file;
  r.providerPath = path.string();
  for (int m : r.providersCompiled) r.providerCompiled = r.providerCompiled || m == r.major;
  if (!r.providerCompiled) {
    r.code = LoaderCode::kProviderNotCompiled;
    r.reason = "TensorRT " + std::to_string(r.major) + " is installed but this addon has no provider for it (" +
               file + " not found in " + dir.string() +
               "): rebuild with the TensorRT headers, e.g. TENSORRT_ROOT_" + std::to_string(r.major) +
               "=/path/to/TensorRT npm run build:native";
    return false;
  }
  // RTLD_LOCAL: the provider's TensorRT-typed symbols must not meet the other major's.
  h.provider = Open(r.providerPath, RTLD_NOW | RTLD_LOCAL, r);
  if (h.provider == nullptr) {
    r.code = LoaderCode::kProviderLoadFailed;
    r.reason = "the TensorRT provider " + r.providerPath + " could not be loaded: " + r.tried.back();
    return false;
  }
  r.providerLoaded = true;
  return true;
}

LoaderReport Run() {
  LoaderReport r;
  Handles& h = GetHandles();
  r.addonPath = ThisObjectPath();
  std::filesystem::path providerDir;
  try {
    FindProviders(r, providerDir);
    if (!OpenInfer(r, h)) return r;
    if (!OpenParser(r, h)) return r;
    if (!OpenProvider(r, h, providerDir)) return r;
    r.code = LoaderCode::kOk;
    r.reason.clear();
  } catch (const std::exception& e) {  // filesystem errors, bad_alloc: report, never throw
    r.code = LoaderCode::kLibraryNotFound;
    r.reason = std::string("TensorRT probe failed: ") + e.what();
  }
  return r;
}

}  // namespace

const char* LoaderCodeName(LoaderCode code) {
  switch (code) {
    case LoaderCode::kOk: return "ok";
    case LoaderCode::kLibraryNotFound: return "library_not_found";
    case LoaderCode::kMissingSymbol: return "missing_symbol";
    case LoaderCode::kUnsupportedMajor: return "unsupported_major";
    case LoaderCode::kParserNotFound: return "parser_not_found";
    case LoaderCode::kParserMissingSymbol: return "parser_missing_symbol";
    case LoaderCode::kProviderNotCompiled: return "provider_not_compiled";
    case LoaderCode::kProviderLoadFailed: return "provider_load_failed";
  }
  return "unknown";
}

const LoaderReport& Probe() {
  static const LoaderReport report = Run();
  return report;
}

void* InferSymbol(const char* name) {
  Probe();
  void* h = GetHandles().infer;
  return h != nullptr ? dlsym(h, name) : nullptr;
}

void* ParserSymbol(const char* name) {
  Probe();
  void* h = GetHandles().parser;
  return h != nullptr ? dlsym(h, name) : nullptr;
}

void* ProviderSymbol(const char* name) {
  const LoaderReport& r = Probe();
  void* h = GetHandles().provider;
  return (h != nullptr && r.code == LoaderCode::kOk) ? dlsym(h, name) : nullptr;
}

}  // namespace tnp::trt
