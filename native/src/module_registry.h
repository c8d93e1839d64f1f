// Lets a source file add exports to the addon without editing addon.cc: list the
// file in native/sources.json ("addon" or "addon_cuda") and write, at namespace scope,
//   TNP_REGISTER_MODULE(tensorrt_engine, InitTensorrtEngine);
// where `void InitTensorrtEngine(Napi::Env env, Napi::Object exports)` sets its exports.
#pragma once

#include <napi.h>

namespace tnp {

using ModuleInit = void (*)(Napi::Env env, Napi::Object exports);

struct ModuleRegistrar {
  ModuleRegistrar(const char* name, ModuleInit init);
};

// Calls every registered init, in registration order.
void InitRegisteredModules(Napi::Env env, Napi::Object exports);

}  // namespace tnp

#define TNP_REGISTER_MODULE(name, init) \
  static const ::tnp::ModuleRegistrar tnp_module_registrar_##name(#name, init)
