// The reference the addon's copies are compared with in scripts/test-gpu.sh:
// a bare loop of cudaMemcpyAsync between pinned host memory (cudaHostAlloc)
// and device memory on one stream, timed with CUDA events, median of repeats.
// usage: bandwidth <bytes> <copies per repeat> <repeats>   -> one JSON line
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdio>
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
  double gbs[2];
  for (int dir = 0; dir < 2; ++dir) {
    std::vector<float> ms;
    for (int r = 0; r < repeats + 1; ++r) {  // first repeat is warm-up
      CHECK(cudaEventRecord(a, s));
      for (int c = 0; c < copies; ++c) {
        if (dir == 0) {
          CHECK(cudaMemcpyAsync(dev, host, bytes, cudaMemcpyHostToDevice, s));
        } else {
          CHECK(cudaMemcpyAsync(host, dev, bytes, cudaMemcpyDeviceToHost, s));
        }
      }
      CHECK(cudaEventRecord(b, s));
      CHECK(cudaEventSynchronize(b));
      float t = 0;
      CHECK(cudaEventElapsedTime(&t, a, b));
      if (r > 0) ms.push_back(t);
    }
    std::sort(ms.begin(), ms.end());
    const double median = ms[ms.size() / 2];
    gbs[dir] = static_cast<double>(bytes) * copies / (median * 1e-3) / 1e9;
  }
  std::printf("{\"bytes\":%zu,\"copies\":%d,\"repeats\":%d,\"h2dGBs\":%.2f,\"d2hGBs\":%.2f}\n", bytes, copies, repeats,
              gbs[0], gbs[1]);
  cudaFree(dev);
  cudaFreeHost(host);
  return 0;
}
