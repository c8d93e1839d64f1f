// The completion of an instance's run, noticed on a thread of its own (addon
// side only, TNP_WITH_CUDA builds). Start() records an event after the output
// copies and posts it here; this thread polls the event for up to `spinUs`,
// then blocks on it, and calls `done` with the request. Between runs it polls
// for the next one for up to `spinUs` before it sleeps.
//
// Why not cudaLaunchHostFunc: on H200 machines a bare 4 KiB round trip completed
// by a host function took 31-68 us, by a thread polling an event 25-29 us, by a
// thread blocked on a cudaEventBlockingSync event 26-61 us (gpu_check/bandwidth.cu);
// the addon's infer path went from 56 to 39-43 us a call (docs/tensorrt.md).
// Polling first and blocking after keeps short runs fast and long runs from
// holding a core (Triton's TensorRT backend offers busy-wait or blocking events).
#pragma once

#ifdef TNP_WITH_CUDA

#include <cuda_runtime_api.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>

#include "cuda_raii.h"

namespace tnp::trt {

class CompletionWaiter {
 public:
  using Done = void (*)(void* data);

  CompletionWaiter(int device, int spinUs) : device_(device), spinUs_(spinUs) {
    DeviceScope scope(device);
    error_ = cudaEventCreateWithFlags(&event_, cudaEventDisableTiming | cudaEventBlockingSync);
    if (error_ != cudaSuccess) {
      event_ = nullptr;
      return;
    }
    thread_ = std::thread([this] { Loop(); });
  }

  // A posted run is still delivered before the thread ends (the owner synchronizes
  // the stream first, so that wait is short).
  ~CompletionWaiter() {
    if (thread_.joinable()) {
      stop_.store(true);
      Wake();
      thread_.join();
    }
    if (event_ != nullptr) {
      DeviceScope scope(device_);
      cudaEventDestroy(event_);
    }
  }
  CompletionWaiter(const CompletionWaiter&) = delete;
  CompletionWaiter& operator=(const CompletionWaiter&) = delete;

  cudaError_t error() const { return error_; }

  // Records the event on `stream` (after the work to wait for) and hands `data`
  // to `done` on this waiter's thread once the event completes. One at a time:
  // the instance runs one request at a time.
  cudaError_t Post(cudaStream_t stream, Done done, void* data) {
    const cudaError_t e = cudaEventRecord(event_, stream);
    if (e != cudaSuccess) return e;
    done_ = done;  // published by the release store below
    pending_.store(data, std::memory_order_release);
    Wake();
    return cudaSuccess;
  }

  uint64_t spun() const { return spun_.load(std::memory_order_relaxed); }
  uint64_t blocked() const { return blocked_.load(std::memory_order_relaxed); }

 private:
  // Taking the lock orders this wake after a waiter's check of its predicate.
  void Wake() {
    { std::lock_guard<std::mutex> lock(m_); }
    cv_.notify_one();
  }

  // The next posted run: polled for up to spinUs (the next request of a busy
  // caller comes within microseconds, sooner than a sleeping thread wakes), then slept for.
  void* Next() {
    const auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(spinUs_);
    do {
      if (void* data = pending_.exchange(nullptr, std::memory_order_acquire)) return data;
      if (stop_.load(std::memory_order_relaxed)) return nullptr;
    } while (std::chrono::steady_clock::now() < until);
    std::unique_lock<std::mutex> lock(m_);
    cv_.wait(lock, [this] { return stop_.load() || pending_.load(std::memory_order_acquire) != nullptr; });
    return pending_.exchange(nullptr, std::memory_order_acquire);
  }

  void Loop() {
    cudaSetDevice(device_);
    while (void* data = Next()) {
      const Done done = done_;
      Wait();
      done(data);  // errors are read from the stream by the request's completion
    }
  }

  // The run's event: polled for up to spinUs, then waited for with the thread asleep.
  void Wait() {
    const auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(spinUs_);
    do {
      if (cudaEventQuery(event_) != cudaErrorNotReady) {
        spun_.fetch_add(1, std::memory_order_relaxed);
        return;
      }
    } while (std::chrono::steady_clock::now() < until);
    cudaEventSynchronize(event_);
    blocked_.fetch_add(1, std::memory_order_relaxed);
  }

  int device_;
  int spinUs_;
  cudaEvent_t event_ = nullptr;
  cudaError_t error_ = cudaSuccess;
  std::mutex m_;
  std::condition_variable cv_;
  Done done_ = nullptr;
  std::atomic<void*> pending_{nullptr};
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> spun_{0}, blocked_{0};
  std::thread thread_;
};

}  // namespace tnp::trt

#endif  // TNP_WITH_CUDA
