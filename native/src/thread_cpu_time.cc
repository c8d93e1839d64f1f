// A thread's own CPU time, which the engine's batch probe times runs by. (Until session 20
// this module also put inference threads under SCHED_IDLE; they are niced from JS now.)
#include <napi.h>

#include <ctime>

#include "module_registry.h"

namespace tnp {
namespace {

// threadCpuTimeMs() -> the calling thread's CPU time so far, in ms, or undefined where the
// platform has no per-thread clock. Exact to the call, unlike Linux's schedstat, which a
// running thread sees updated only at scheduler ticks (4 ms at 250 Hz).
Napi::Value ThreadCpuTimeMs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
#ifdef CLOCK_THREAD_CPUTIME_ID
  timespec ts{};
  if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) == 0) {
    return Napi::Number::New(env, static_cast<double>(ts.tv_sec) * 1e3 + static_cast<double>(ts.tv_nsec) / 1e6);
  }
#endif
  return env.Undefined();
}

void Init(Napi::Env env, Napi::Object exports) {
  exports.Set("threadCpuTimeMs", Napi::Function::New(env, ThreadCpuTimeMs, "threadCpuTimeMs"));
}

}  // namespace

TNP_REGISTER_MODULE(thread_cpu_time, Init);

}  // namespace tnp
