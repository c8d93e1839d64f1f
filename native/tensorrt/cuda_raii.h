// RAII owners for the CUDA objects of the TensorRT run path (addon side only,
// TNP_WITH_CUDA builds). Each frees on the device it was made on.
#pragma once

#ifdef TNP_WITH_CUDA

#include <cuda_runtime_api.h>

#include <cstddef>
#include <string>
#include <utility>

namespace tnp::trt {

inline std::string CudaErrorText(cudaError_t e) {
  return std::string(cudaGetErrorName(e)) + ": " + cudaGetErrorString(e);
}

// Switches to `device` for the scope, restoring the previous one after.
class DeviceScope {
 public:
  explicit DeviceScope(int device) {
    if (cudaGetDevice(&previous_) != cudaSuccess) previous_ = -1;
    if (previous_ != device) cudaSetDevice(device);
  }
  ~DeviceScope() {
    if (previous_ >= 0) cudaSetDevice(previous_);
  }
  DeviceScope(const DeviceScope&) = delete;
  DeviceScope& operator=(const DeviceScope&) = delete;

 private:
  int previous_ = -1;
};

class Stream {
 public:
  Stream() = default;
  explicit Stream(int device) : device_(device) {
    DeviceScope scope(device);
    error_ = cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking);
  }
  ~Stream() { reset(); }
  Stream(Stream&& o) noexcept { *this = std::move(o); }
  Stream& operator=(Stream&& o) noexcept {
    if (this != &o) {
      reset();
      std::swap(stream_, o.stream_);
      device_ = o.device_;
      error_ = o.error_;
    }
    return *this;
  }
  cudaStream_t get() const { return stream_; }
  cudaError_t error() const { return error_; }

 private:
  void reset() {
    if (stream_ != nullptr) {
      DeviceScope scope(device_);
      cudaStreamSynchronize(stream_);
      cudaStreamDestroy(stream_);
      stream_ = nullptr;
    }
  }
  cudaStream_t stream_ = nullptr;
  int device_ = 0;
  cudaError_t error_ = cudaSuccess;
};

class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  DeviceBuffer(int device, std::size_t bytes) : device_(device), bytes_(bytes) {
    DeviceScope scope(device);
    // At least one byte, so every tensor has a distinct valid address.
    error_ = cudaMalloc(&ptr_, bytes > 0 ? bytes : 1);
    if (error_ != cudaSuccess) ptr_ = nullptr;
  }
  ~DeviceBuffer() { reset(); }
  DeviceBuffer(DeviceBuffer&& o) noexcept { *this = std::move(o); }
  DeviceBuffer& operator=(DeviceBuffer&& o) noexcept {
    if (this != &o) {
      reset();
      std::swap(ptr_, o.ptr_);
      device_ = o.device_;
      bytes_ = o.bytes_;
      error_ = o.error_;
    }
    return *this;
  }
  void* get() const { return ptr_; }
  std::size_t bytes() const { return bytes_; }
  cudaError_t error() const { return error_; }

 private:
  void reset() {
    if (ptr_ != nullptr) {
      DeviceScope scope(device_);
      cudaFree(ptr_);
      ptr_ = nullptr;
    }
  }
  void* ptr_ = nullptr;
  int device_ = 0;
  std::size_t bytes_ = 0;
  cudaError_t error_ = cudaSuccess;
};

// An instantiated CUDA graph (and the graph it came from).
class Graph {
 public:
  Graph() = default;
  ~Graph() { reset(); }
  Graph(const Graph&) = delete;
  Graph& operator=(const Graph&) = delete;

  // Captures what `enqueue(stream)` puts on `stream`; false (and nothing kept) on failure.
  template <typename Enqueue>
  bool Capture(cudaStream_t stream, Enqueue&& enqueue) {
    reset();
    if (cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal) != cudaSuccess) {
      cudaGetLastError();
      return false;
    }
    const bool enqueued = enqueue(stream);
    cudaGraph_t graph = nullptr;
    const cudaError_t ended = cudaStreamEndCapture(stream, &graph);
    if (!enqueued || ended != cudaSuccess || graph == nullptr) {
      if (graph != nullptr) cudaGraphDestroy(graph);
      cudaGetLastError();
      return false;
    }
    graph_ = graph;
    if (cudaGraphInstantiate(&exec_, graph_, 0) != cudaSuccess) {
      cudaGetLastError();
      reset();
      return false;
    }
    return true;
  }
  bool ready() const { return exec_ != nullptr; }
  cudaError_t Launch(cudaStream_t stream) const { return cudaGraphLaunch(exec_, stream); }

 private:
  void reset() {
    if (exec_ != nullptr) cudaGraphExecDestroy(exec_);
    if (graph_ != nullptr) cudaGraphDestroy(graph_);
    exec_ = nullptr;
    graph_ = nullptr;
  }
  cudaGraph_t graph_ = nullptr;
  cudaGraphExec_t exec_ = nullptr;
};

}  // namespace tnp::trt

#endif  // TNP_WITH_CUDA
