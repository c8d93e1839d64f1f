#include "provider_host.h"

#include <dlfcn.h>

#include <cstdio>
#include <cstdlib>

#include "loader.h"

namespace tnp::trt {
namespace {

// TensorRT's messages go to stderr at warning level and above when asked for.
void Log(void* /*user*/, int32_t severity, const char* message) {
  static const int verbosity = [] {
    const char* v = std::getenv("TENSORRT_NODE_LOG");  // 0 errors ... 4 verbose
    return v != nullptr ? std::atoi(v) : -1;
  }();
  if (severity <= verbosity) std::fprintf(stderr, "[tensorrt-node][TRT %d] %s\n", severity, message);
}

// A second dlopen of an already loaded library returns its handle (RTLD_NOLOAD
// loads nothing new); the provider resolves TensorRT's factories from it.
void* HandleOf(const std::string& path) {
  if (path.empty()) return nullptr;
  return dlopen(path.c_str(), RTLD_NOW | RTLD_NOLOAD);
}

ProviderHost Open() {
  ProviderHost host;
  host.code = "ENOTENSORRT";
  const LoaderReport& r = Probe();
  if (r.code != LoaderCode::kOk) {
    host.reason = r.reason;
    return host;
  }
  auto get = reinterpret_cast<TnpProviderGetFn>(ProviderSymbol(TNP_ENTRY_SYMBOL));
  if (get == nullptr) {
    host.reason = r.providerPath + " does not export " TNP_ENTRY_SYMBOL ": rebuild the addon";
    return host;
  }
  const TnpProviderApi* api = get(TNP_PROVIDER_ABI_VERSION);
  if (api == nullptr || api->struct_size < sizeof(TnpProviderApi)) {
    host.reason = r.providerPath + " speaks another provider ABI than this addon: rebuild both together";
    return host;
  }
  TnpError err{};
  TnpLibrary* lib = nullptr;
  const TnpStatus st = api->library_open(HandleOf(r.libraryPath), HandleOf(r.parserPath), Log, nullptr, &lib, &err);
  if (st != TNP_OK) {
    host.reason = std::string("the TensorRT provider refused ") + r.libraryPath + ": " + err.message;
    return host;
  }
  host.api = api;
  host.lib = lib;  // lives as long as the process: engines point into it
  host.code.clear();
  return host;
}

}  // namespace

const ProviderHost& Provider() {
  static const ProviderHost host = Open();
  return host;
}

const char* StatusCode(TnpStatus status) {
  switch (status) {
    case TNP_OK: return "OK";
    case TNP_E_INVALID: return "EINPUT";
    case TNP_E_LIBRARY:
    case TNP_E_VERSION: return "ENOTENSORRT";
    case TNP_E_PARSE:
    case TNP_E_BUILD:
    case TNP_E_RUNTIME:
    case TNP_E_INTERNAL: return "EBUILDFAILED";
    case TNP_E_CANCELLED: return "EABORTED";
  }
  return "EBUILDFAILED";
}

}  // namespace tnp::trt
