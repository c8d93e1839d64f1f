// The reference the addon's copies are compared with in scripts/test-gpu.sh:
// a bare loop of cudaMemcpyAsync between pinned host memory (cudaHostAlloc)
// and device memory on one stream, timed with CUDA events, median of repeats.
// It also times the bare round trip of a small inference, the floor under the
// addon's per-call latency: rtBytes in, a one-element-per-thread kernel, rtBytes
// out, completed four ways: cudaStreamSynchronize on the caller's thread;
// cudaLaunchHostFunc waking the caller (the addon's hand-off, without N-API and
// JS); and a completion thread that waits on an event recorded after the copies
// and then wakes the caller, with a default (spinning) event and with a
// cudaEventBlockingSync one.
// usage: bandwidth <bytes> <copies per repeat> <repeats>   -> one JSON line
#include <cuda_runtime.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <cstdio>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <vector>

#define CHECK(call)                                                                          \
  do {                                                                                       \
    cudaError_t e_ = (call);                                                                 \
    if (e_ != cudaSuccess) {                                                                 \
      std::printf("{\"error\":\"%s at %s:%d\"}\n", cudaGetErrorString(e_), __FILE__, __LINE__); \
      return 1;                                                                              \
    }                                                                                        \
  } while (0)

__global__ void TwicePlusOne(const float* x, float* y, int n) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) y[i] = x[i] * 2.0f + 1.0f;
}

struct HostFuncWait {
  std::mutex m;
  std::condition_variable cv;
  bool done = false;
};

void CUDART_CB WakeWaiter(void* data) {
  auto* w = static_cast<HostFuncWait*>(data);
  {
    std::lock_guard<std::mutex> lock(w->m);
    w->done = true;
  }
  w->cv.notify_one();
}

// A thread that waits on one event at a time and then wakes the caller.
class EventWaiter {
 public:
  EventWaiter() : thread_([this] { Loop(); }) {}
  ~EventWaiter() {
    {
      std::lock_guard<std::mutex> lock(m_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  cudaError_t Wait(cudaEvent_t e) {
    std::unique_lock<std::mutex> lock(m_);
    event_ = e;
    done_ = false;
    cv_.notify_all();
    cv_.wait(lock, [&] { return done_; });
    return result_;
  }

 private:
  void Loop() {
    std::unique_lock<std::mutex> lock(m_);
    for (;;) {
      cv_.wait(lock, [&] { return stop_ || event_ != nullptr; });
      if (stop_) return;
      cudaEvent_t e = event_;
      event_ = nullptr;
      lock.unlock();
      const cudaError_t r = cudaEventSynchronize(e);
      lock.lock();
      result_ = r;
      done_ = true;
      cv_.notify_all();
    }
  }
  std::mutex m_;
  std::condition_variable cv_;
  cudaEvent_t event_ = nullptr;
  bool done_ = false, stop_ = false;
  cudaError_t result_ = cudaSuccess;
  std::thread thread_;
};

double Median(std::vector<double>& v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

int main(int argc, char** argv) {
  const size_t bytes = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : (64u << 20);
  const int copies = argc > 2 ? std::atoi(argv[2]) : 20;
  const int repeats = argc > 3 ? std::atoi(argv[3]) : 7;
  void* host = nullptr;
  void* dev = nullptr;
  CHECK(cudaHostAlloc(&host, bytes, cudaHostAllocDefault));
  CHECK(cudaMalloc(&dev, bytes));
  // Not zeros (METHOD.md): a byte pattern.
  for (size_t i = 0; i < bytes; ++i) static_cast<unsigned char*>(host)[i] = static_cast<unsigned char>(i * 131 + 7);
  cudaStream_t s;
  CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  cudaEvent_t a, b;
  CHECK(cudaEventCreate(&a));
  CHECK(cudaEventCreate(&b));
  // dir 0: host to device, 1: device to host.
  auto copy = [&](int dir) {
    return dir == 0 ? cudaMemcpyAsync(dev, host, bytes, cudaMemcpyHostToDevice, s)
                    : cudaMemcpyAsync(host, dev, bytes, cudaMemcpyDeviceToHost, s);
  };
  double gbs[2];
  for (int dir = 0; dir < 2; ++dir) {
    std::vector<double> seconds;
    for (int r = 0; r < repeats + 1; ++r) {  // first repeat is warm-up
      CHECK(cudaEventRecord(a, s));
      for (int c = 0; c < copies; ++c) CHECK(copy(dir));
      CHECK(cudaEventRecord(b, s));
      CHECK(cudaEventSynchronize(b));
      float ms = 0;
      CHECK(cudaEventElapsedTime(&ms, a, b));
      if (r > 0) seconds.push_back(ms * 1e-3);
    }
    gbs[dir] = static_cast<double>(bytes) * copies / Median(seconds) / 1e9;
  }
  // The same copies one at a time, each waited for, by the host's clock: how the addon's
  // calls run (a call, then its completion, then the next), without the addon.
  double seqGbs[2];
  for (int dir = 0; dir < 2; ++dir) {
    std::vector<double> seconds;
    for (int r = 0; r < repeats + 1; ++r) {
      const auto t0 = std::chrono::steady_clock::now();
      for (int c = 0; c < copies; ++c) {
        CHECK(copy(dir));
        CHECK(cudaStreamSynchronize(s));
      }
      const auto t1 = std::chrono::steady_clock::now();
      if (r > 0) seconds.push_back(std::chrono::duration<double>(t1 - t0).count());
    }
    seqGbs[dir] = static_cast<double>(bytes) * copies / Median(seconds) / 1e9;
  }

  // Round trips of rtBytes each way, one at a time, host wall clock (as a caller sees it).
  const int rtElems = 1024, rtCalls = 20000;
  const size_t rtBytes = rtElems * sizeof(float);
  if (bytes < 2 * rtBytes) {
    std::printf("{\"error\":\"bytes must be at least %zu\"}\n", 2 * rtBytes);
    return 1;
  }
  float* rtDev = nullptr;
  CHECK(cudaMalloc(&rtDev, 2 * rtBytes));
  auto* rtHost = static_cast<float*>(host);  // in at [0, rtElems), out at [rtElems, 2 * rtElems)
  for (int i = 0; i < rtElems; ++i) rtHost[i] = static_cast<float>(i % 97) - 48.5f;
  cudaEvent_t spinEvent, blockingEvent;
  CHECK(cudaEventCreateWithFlags(&spinEvent, cudaEventDisableTiming));
  CHECK(cudaEventCreateWithFlags(&blockingEvent, cudaEventDisableTiming | cudaEventBlockingSync));
  EventWaiter waiter;
  double rtUs[4];
  for (int mode = 0; mode < 4; ++mode) {
    std::vector<double> us;
    us.reserve(rtCalls);
    for (int i = 0; i < rtElems; ++i) rtHost[rtElems + i] = std::nanf("");  // poison: every output must be written
    for (int c = 0; c < rtCalls + 100; ++c) {  // the first 100 warm up
      HostFuncWait wait;
      const auto t0 = std::chrono::steady_clock::now();
      CHECK(cudaMemcpyAsync(rtDev, rtHost, rtBytes, cudaMemcpyHostToDevice, s));
      TwicePlusOne<<<(rtElems + 255) / 256, 256, 0, s>>>(rtDev, rtDev + rtElems, rtElems);
      CHECK(cudaGetLastError());
      CHECK(cudaMemcpyAsync(rtHost + rtElems, rtDev + rtElems, rtBytes, cudaMemcpyDeviceToHost, s));
      if (mode == 0) {
        CHECK(cudaStreamSynchronize(s));
      } else if (mode == 1) {
        CHECK(cudaLaunchHostFunc(s, &WakeWaiter, &wait));
        std::unique_lock<std::mutex> lock(wait.m);
        wait.cv.wait(lock, [&] { return wait.done; });
      } else {
        cudaEvent_t e = mode == 2 ? spinEvent : blockingEvent;
        CHECK(cudaEventRecord(e, s));
        CHECK(waiter.Wait(e));
      }
      const auto t1 = std::chrono::steady_clock::now();
      if (c >= 100) us.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
    }
    for (int i = 0; i < rtElems; ++i) {
      if (rtHost[rtElems + i] != rtHost[i] * 2.0f + 1.0f) {
        std::printf("{\"error\":\"round trip output %d wrong\"}\n", i);
        return 1;
      }
    }
    rtUs[mode] = Median(us);
  }
  cudaFree(rtDev);
  cudaEventDestroy(spinEvent);
  cudaEventDestroy(blockingEvent);

  std::printf(
      "{\"bytes\":%zu,\"copies\":%d,\"repeats\":%d,\"h2dGBs\":%.2f,\"d2hGBs\":%.2f,\"rtBytes\":%zu,\"rtCalls\":%d,"
      "\"rtSyncUs\":%.2f,\"rtHostFuncUs\":%.2f,\"rtEventThreadUs\":%.2f,\"rtBlockingEventThreadUs\":%.2f,"
      "\"h2dSeqGBs\":%.2f,\"d2hSeqGBs\":%.2f}\n",
      bytes, copies, repeats, gbs[0], gbs[1], rtBytes, rtCalls, rtUs[0], rtUs[1], rtUs[2], rtUs[3], seqGbs[0], seqGbs[1]);
  cudaFree(dev);
  cudaFreeHost(host);
  return 0;
}
