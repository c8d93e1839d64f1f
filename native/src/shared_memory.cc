// A plain ArrayBuffer over the bytes of a SharedArrayBuffer, without a copy. An engine's
// worker reads a request from its mailbox (shared memory the engine's thread writes) and
// hands it to onnxruntime-node, which refuses tensors over shared memory ("Invalid
// argument": N-API's napi_get_arraybuffer_info takes no SharedArrayBuffer in Node 20).
// The mailbox protocol (src/backends/onnxruntime/mailbox.mjs) keeps the engine from
// writing while a run reads.
#include <napi.h>

#include <memory>

#include "module_registry.h"

namespace tnp {
namespace {

// The returned ArrayBuffer keeps the shared memory alive until it is collected.
void ReleaseOwner(napi_env /*env*/, void* /*data*/, void* hint) {
  std::unique_ptr<Napi::Reference<Napi::Value>> owner(static_cast<Napi::Reference<Napi::Value>*>(hint));
}

// sharedMemoryAlias(view: Uint8Array over a SharedArrayBuffer) -> ArrayBuffer over the
// same bytes (the view's range).
Napi::Value SharedMemoryAlias(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsTypedArray()) {
    Napi::TypeError::New(env, "sharedMemoryAlias(view): view must be a Uint8Array over a SharedArrayBuffer").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  napi_typedarray_type type;
  size_t length = 0;
  void* data = nullptr;
  napi_value buffer = nullptr;
  size_t offset = 0;
  napi_status status = napi_get_typedarray_info(env, info[0], &type, &length, &data, &buffer, &offset);
  if (status != napi_ok || type != napi_uint8_array) {
    Napi::TypeError::New(env, "sharedMemoryAlias(view): view must be a Uint8Array").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  if (length == 0 || data == nullptr) {
    Napi::TypeError::New(env, "sharedMemoryAlias(view): the view is empty").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  auto owner = std::make_unique<Napi::Reference<Napi::Value>>(Napi::Persistent(Napi::Value(env, buffer)));
  napi_value result = nullptr;
  status = napi_create_external_arraybuffer(env, data, length, ReleaseOwner, owner.get(), &result);
  if (status != napi_ok) {
    Napi::Error::New(env, "sharedMemoryAlias: napi_create_external_arraybuffer failed (external buffers unsupported here?)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  owner.release();  // ReleaseOwner takes it back
  return Napi::Value(env, result);
}

void Init(Napi::Env env, Napi::Object exports) {
  exports.Set("sharedMemoryAlias", Napi::Function::New(env, SharedMemoryAlias, "sharedMemoryAlias"));
}

}  // namespace

TNP_REGISTER_MODULE(shared_memory, Init);

}  // namespace tnp
