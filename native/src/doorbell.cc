// A doorbell: any thread wakes a JS thread's event loop without taking a lock, and the JS
// thread's callback runs there. The onnxruntime workers ring it for their results.
//
// Why: a worker's postMessage and Atomics.notify both wake the JS thread while holding a
// lock that the woken thread takes next (Node's message port mutex, V8's futex mutex and
// the platform's task queue). Beside busy processes a worker preempted inside such a lock
// waits for a core while the JS thread waits on it: up to 125 ms a time, 1.6-2.7 s of 6
// (perf sched records, docs/engine.md). uv_async_send is an atomic flag and an eventfd write.
//
// Built where libuv's header is found (Node's own include folder); without it the exports
// are absent and the engine keeps Atomics.waitAsync.
#include <napi.h>

#include "module_registry.h"

#ifdef TNP_WITH_UV
#include <uv.h>

#include <array>
#include <atomic>
#include <memory>
#include <mutex>
#include <string>

namespace tnp {
namespace {

struct Bell {
  uv_async_t async{};
  napi_env env = nullptr;
  Napi::FunctionReference callback;
  std::unique_ptr<Napi::AsyncContext> context;
  uint32_t slot = 0;
  // Open: rings call back. Closing: uv_close is under way; the slot is reused only after.
  bool open = false;
  bool closing = false;

  Bell() = default;
  Bell(const Bell&) = delete;
  Bell& operator=(const Bell&) = delete;
  // Destroyed only with the process's statics: a bell still open then (process.exit() skips
  // the environment's cleanup) keeps its JS handles rather than touch a torn-down runtime.
  ~Bell() {
    callback.SuppressDestruct();
    static_cast<void>(context.release());
  }
};

constexpr uint32_t kMaxBells = 1024;

// What ring() reads, without a lock: the open bell of each slot, or null.
std::array<std::atomic<Bell*>, kMaxBells> g_ringable{};
// The bells themselves, kept for the process's lifetime and reused slot by slot, so that a
// ring racing a close touches valid memory (the engine closes a bell only after its workers
// have ended). Only JS threads touch these, under g_slots (create and close; never ring).
std::array<std::unique_ptr<Bell>, kMaxBells> g_bells;
std::mutex g_slots;

void OnRing(uv_async_t* handle) {
  Bell* bell = static_cast<Bell*>(handle->data);
  if (!bell->open) return;
  Napi::Env env(bell->env);
  Napi::HandleScope scope(env);
  try {
    // MakeCallback: as from any event loop callback, microtasks run after it.
    bell->callback.MakeCallback(env.Global(), {}, *bell->context);
  } catch (const Napi::Error& e) {
    napi_fatal_exception(env, e.Value());  // 'uncaughtException', as a throwing event handler would
  }
}

void OnClosed(uv_handle_t* handle) {
  std::lock_guard<std::mutex> lock(g_slots);
  static_cast<Bell*>(handle->data)->closing = false;
}

void Close(Bell* bell) {
  if (!bell->open) return;
  g_ringable[bell->slot].store(nullptr, std::memory_order_release);
  bell->open = false;
  bell->closing = true;
  bell->callback.Reset();
  bell->context.reset();
  uv_close(reinterpret_cast<uv_handle_t*>(&bell->async), OnClosed);
}

// A bell still open when its JS thread's environment ends (a worker that never closed it).
void CloseAtExit(void* arg) {
  std::lock_guard<std::mutex> lock(g_slots);
  Close(static_cast<Bell*>(arg));
}

// doorbellCreate(callback) -> the bell's number, for any thread to ring. The bell does not
// keep the event loop alive.
Napi::Value DoorbellCreate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsFunction()) {
    throw Napi::TypeError::New(env, "doorbellCreate(callback): expected a function");
  }
  uv_loop_t* loop = nullptr;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok || loop == nullptr) {
    throw Napi::Error::New(env, "doorbellCreate: this thread has no event loop");
  }
  std::lock_guard<std::mutex> lock(g_slots);
  uint32_t slot = 0;
  while (slot < kMaxBells && g_bells[slot] && (g_bells[slot]->open || g_bells[slot]->closing)) slot++;
  if (slot == kMaxBells) throw Napi::RangeError::New(env, "doorbellCreate: 1024 bells are open");
  if (!g_bells[slot]) g_bells[slot] = std::make_unique<Bell>();
  Bell* bell = g_bells[slot].get();
  if (uv_async_init(loop, &bell->async, OnRing) != 0) throw Napi::Error::New(env, "doorbellCreate: uv_async_init failed");
  bell->async.data = bell;
  uv_unref(reinterpret_cast<uv_handle_t*>(&bell->async));
  bell->env = env;
  bell->slot = slot;
  bell->callback = Napi::Persistent(info[0].As<Napi::Function>());
  bell->context = std::make_unique<Napi::AsyncContext>(env, "tensorrt-node:doorbell");
  bell->open = true;
  napi_add_env_cleanup_hook(env, CloseAtExit, bell);
  g_ringable[slot].store(bell, std::memory_order_release);
  return Napi::Number::New(env, slot);
}

uint32_t SlotArg(const Napi::CallbackInfo& info, const char* fn) {
  if (info.Length() < 1 || !info[0].IsNumber()) {
    throw Napi::TypeError::New(info.Env(), std::string(fn) + "(bell): expected the number doorbellCreate returned");
  }
  double n = info[0].As<Napi::Number>().DoubleValue();
  if (!(n >= 0 && n < kMaxBells) || n != static_cast<double>(static_cast<uint32_t>(n))) {
    throw Napi::RangeError::New(info.Env(), std::string(fn) + "(bell): expected an integer from 0 to 1023, received " + Napi::Number::New(info.Env(), n).ToString().Utf8Value());
  }
  return static_cast<uint32_t>(n);
}

// doorbellRing(bell) -> whether the bell was open. Any thread; takes no lock.
Napi::Value DoorbellRing(const Napi::CallbackInfo& info) {
  uint32_t slot = SlotArg(info, "doorbellRing");
  Bell* bell = g_ringable[slot].load(std::memory_order_acquire);
  if (bell == nullptr) return Napi::Boolean::New(info.Env(), false);
  uv_async_send(&bell->async);
  return Napi::Boolean::New(info.Env(), true);
}

// doorbellClose(bell): on the thread that made it; later rings return false.
Napi::Value DoorbellClose(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint32_t slot = SlotArg(info, "doorbellClose");
  std::lock_guard<std::mutex> lock(g_slots);
  Bell* bell = g_bells[slot].get();
  if (bell == nullptr || !bell->open) return env.Undefined();
  if (bell->env != static_cast<napi_env>(env)) {
    throw Napi::Error::New(env, "doorbellClose: a bell is closed on the thread that made it");
  }
  napi_remove_env_cleanup_hook(env, CloseAtExit, bell);
  Close(bell);
  return env.Undefined();
}

void Init(Napi::Env env, Napi::Object exports) {
  exports.Set("doorbellCreate", Napi::Function::New(env, DoorbellCreate, "doorbellCreate"));
  exports.Set("doorbellRing", Napi::Function::New(env, DoorbellRing, "doorbellRing"));
  exports.Set("doorbellClose", Napi::Function::New(env, DoorbellClose, "doorbellClose"));
}

}  // namespace

TNP_REGISTER_MODULE(doorbell, Init);

}  // namespace tnp
#endif  // TNP_WITH_UV
