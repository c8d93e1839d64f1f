// The addon's handle on the TensorRT provider that loader.cc opened: the
// provider's function table and one TnpLibrary over the loaded libnvinfer.
#pragma once

#include <string>

#include "provider_abi.h"

namespace tnp::trt {

struct ProviderHost {
  const TnpProviderApi* api = nullptr;
  TnpLibrary* lib = nullptr;
  // Why the provider is unusable, with a package error code; empty when usable.
  std::string code;    // "ENOTENSORRT"
  std::string reason;
  bool usable() const { return api != nullptr && lib != nullptr; }
};

// Opens once per process (thread-safe) and never throws.
const ProviderHost& Provider();

// JS error code for a provider status.
const char* StatusCode(TnpStatus status);

}  // namespace tnp::trt
