// A thread's scheduler slice (Linux 6.12+: EEVDF takes sched_attr::sched_runtime of a
// SCHED_OTHER thread as the length of its slice). The engine gives its background
// inference threads a slice longer than the kernel's default, so that the JS thread, with
// the shorter default, preempts them as soon as it wakes: with equal slices the running
// thread keeps the core for the rest of its own (RUN_TO_PARITY) and the JS thread waited
// up to a scheduler tick (4 ms at 250 Hz) behind a niced worker (docs/engine.md).
#include <napi.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <string>

#ifdef __linux__
#include <sys/syscall.h>
#include <unistd.h>
#endif

#include "module_registry.h"

namespace tnp {
namespace {

#if defined(__linux__) && defined(SYS_sched_setattr) && defined(SYS_sched_getattr)
// The kernel's struct sched_attr (SCHED_ATTR_SIZE_VER1, Linux 5.3), which glibc does not declare.
struct SchedAttr {
  uint32_t size;
  uint32_t sched_policy;
  uint64_t sched_flags;
  int32_t sched_nice;
  uint32_t sched_priority;
  uint64_t sched_runtime;
  uint64_t sched_deadline;
  uint64_t sched_period;
  uint32_t sched_util_min;
  uint32_t sched_util_max;
};
constexpr uint64_t kSchedFlagKeepPolicy = 0x08;

std::string ErrnoText(const char* call, int err) {
  return std::string(call) + ": " + std::strerror(err);
}
#endif

// setThreadSlice(tid, nice, sliceUs) -> the slice the kernel keeps for the thread afterwards,
// in µs: sliceUs (clamped by the kernel to 100..100000), or 0 where the kernel takes no
// slice for such threads (before Linux 6.12). Sets the thread's nice to `nice` too, as
// sched_setattr always does; keeps its policy. Throws where the call fails (the errno's text).
Napi::Value SetThreadSlice(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 3 || !info[0].IsNumber() || !info[1].IsNumber() || !info[2].IsNumber()) {
    throw Napi::TypeError::New(env, "setThreadSlice(tid, nice, sliceUs): three numbers");
  }
#if defined(__linux__) && defined(SYS_sched_setattr) && defined(SYS_sched_getattr)
  const auto tid = static_cast<pid_t>(info[0].As<Napi::Number>().Int32Value());
  const int32_t nice = info[1].As<Napi::Number>().Int32Value();
  const double slice_us = info[2].As<Napi::Number>().DoubleValue();
  if (tid <= 0 || !(slice_us > 0)) throw Napi::RangeError::New(env, "setThreadSlice: a thread id and a positive slice");
  SchedAttr attr{};
  attr.size = sizeof attr;
  attr.sched_flags = kSchedFlagKeepPolicy;
  attr.sched_nice = nice;
  attr.sched_runtime = static_cast<uint64_t>(slice_us * 1000.0);
  if (syscall(SYS_sched_setattr, tid, &attr, 0u) != 0) throw Napi::Error::New(env, ErrnoText("sched_setattr", errno));
  SchedAttr now{};
  if (syscall(SYS_sched_getattr, tid, &now, static_cast<unsigned>(sizeof now), 0u) != 0) {
    throw Napi::Error::New(env, ErrnoText("sched_getattr", errno));
  }
  return Napi::Number::New(env, static_cast<double>(now.sched_runtime) / 1000.0);
#else
  throw Napi::Error::New(env, "setThreadSlice: Linux only");
#endif
}

void Init(Napi::Env env, Napi::Object exports) {
  exports.Set("setThreadSlice", Napi::Function::New(env, SetThreadSlice, "setThreadSlice"));
}

}  // namespace

TNP_REGISTER_MODULE(thread_slice, Init);

}  // namespace tnp
