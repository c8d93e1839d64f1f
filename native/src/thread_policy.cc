// Scheduling policy of inference threads. ONNX Runtime's worker threads run under
// SCHED_IDLE so that the thread of the JS event loop preempts them the moment it
// wakes: on a machine whose cores are all busy in inference, a plain (or niced)
// thread left the loop runnable but waiting 4-7 ms for a core (docs/engine.md).
// Also a thread's own CPU time, which the engine's batch probe times runs by.
#include <napi.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <string>

#ifdef __linux__
#include <sched.h>
#include <sys/types.h>
#endif

#include "module_registry.h"

namespace tnp {
namespace {

// setThreadIdle(tid) -> '' when set, else why not. Threads the given thread creates
// afterwards inherit the policy (pthread's default PTHREAD_INHERIT_SCHED).
Napi::Value SetThreadIdle(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsNumber()) {
    Napi::TypeError::New(env, "setThreadIdle(tid): tid must be a number").ThrowAsJavaScriptException();
    return env.Undefined();
  }
#ifdef __linux__
  const auto tid = static_cast<pid_t>(info[0].As<Napi::Number>().Int64Value());
  sched_param param{};
  param.sched_priority = 0;
  if (sched_setscheduler(tid, SCHED_IDLE, &param) != 0) {
    const int err = errno;
    return Napi::String::New(env, "sched_setscheduler(" + std::to_string(tid) + ", SCHED_IDLE) failed: " + std::strerror(err));
  }
  return Napi::String::New(env, "");
#else
  return Napi::String::New(env, "SCHED_IDLE exists on Linux only");
#endif
}

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
  exports.Set("setThreadIdle", Napi::Function::New(env, SetThreadIdle, "setThreadIdle"));
  exports.Set("threadCpuTimeMs", Napi::Function::New(env, ThreadCpuTimeMs, "threadCpuTimeMs"));
}

}  // namespace

TNP_REGISTER_MODULE(thread_policy, Init);

}  // namespace tnp
