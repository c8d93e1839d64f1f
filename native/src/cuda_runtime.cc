// Compiled in every build; the CUDA calls only where TNP_WITH_CUDA is defined.
// Plain C++ against cuda_runtime_api.h (no nvcc), linked with cudart_static.
#include "cuda_runtime.h"

#ifdef TNP_WITH_CUDA
#include <cuda_runtime_api.h>
#endif

#include <array>
#include <cstdio>

namespace tnp::cuda {
namespace {

#ifdef TNP_WITH_CUDA
std::string Uuid(const cudaUUID_t& u) {
  std::array<char, 48> buf{};
  const auto* b = reinterpret_cast<const unsigned char*>(u.bytes);
  std::snprintf(buf.data(), buf.size(),
                "GPU-%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1],
                b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
  return buf.data();
}

Status Run() {
  Status s;
  s.compiled = true;
  s.runtimeVersion = CUDART_VERSION;
  int driver = 0;
  if (cudaDriverGetVersion(&driver) == cudaSuccess) s.driverVersion = driver;
  int count = 0;
  cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess) {
    s.error = static_cast<int>(err);
    s.errorName = cudaGetErrorName(err);
    s.errorString = cudaGetErrorString(err);
    cudaGetLastError();  // clear, so later calls do not see it
    return s;
  }
  for (int i = 0; i < count; ++i) {
    cudaDeviceProp prop{};
    if (cudaGetDeviceProperties(&prop, i) != cudaSuccess) {
      cudaGetLastError();
      continue;
    }
    Device d;
    d.index = i;
    d.name = prop.name;
    d.major = prop.major;
    d.minor = prop.minor;
    d.totalMemory = prop.totalGlobalMem;
    d.multiProcessorCount = prop.multiProcessorCount;
    d.uuid = Uuid(prop.uuid);
    std::array<char, 32> bus{};
    if (cudaDeviceGetPCIBusId(bus.data(), static_cast<int>(bus.size()), i) == cudaSuccess) {
      d.pciBusId = bus.data();
    }
    s.devices.push_back(std::move(d));
  }
  if (s.devices.empty()) {
    s.error = static_cast<int>(cudaErrorNoDevice);
    s.errorName = cudaGetErrorName(cudaErrorNoDevice);
    s.errorString = cudaGetErrorString(cudaErrorNoDevice);
  }
  return s;
}
#else
Status Run() { return Status{}; }
#endif

}  // namespace

const Status& Query() {
  static const Status status = Run();
  return status;
}

bool DeviceUsable() { return !Query().devices.empty(); }

void* HostAllocPinned(std::size_t bytes) {
#ifdef TNP_WITH_CUDA
  void* p = nullptr;
  if (cudaHostAlloc(&p, bytes, cudaHostAllocPortable) != cudaSuccess) {
    cudaGetLastError();
    return nullptr;
  }
  return p;
#else
  (void)bytes;
  return nullptr;
#endif
}

void HostFreePinned(void* p) {
#ifdef TNP_WITH_CUDA
  if (p != nullptr && cudaFreeHost(p) != cudaSuccess) cudaGetLastError();
#else
  (void)p;
#endif
}

}  // namespace tnp::cuda
