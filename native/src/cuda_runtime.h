// The CUDA runtime as the addon uses it, linked statically where the toolkit was
// found at build time (TNP_WITH_CUDA). Without it every query answers "not
// compiled" and nothing is pinned.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace tnp::cuda {

struct Device {
  int index = 0;
  std::string name;
  int major = 0;
  int minor = 0;
  std::size_t totalMemory = 0;
  std::string pciBusId;
  std::string uuid;
  int multiProcessorCount = 0;
};

struct Status {
  bool compiled = false;      // built with the CUDA toolkit
  int runtimeVersion = 0;     // CUDART_VERSION the addon was built with, e.g. 13000
  int driverVersion = 0;      // cudaDriverGetVersion (0 where no driver)
  int error = 0;              // cudaError_t of cudaGetDeviceCount
  std::string errorName;      // e.g. cudaErrorInsufficientDriver
  std::string errorString;
  std::vector<Device> devices;
};

// Queried once per process; never throws.
const Status& Query();

// True where at least one device is usable.
bool DeviceUsable();

// Pinned, portable host memory; nullptr on failure or without CUDA.
void* HostAllocPinned(std::size_t bytes);
void HostFreePinned(void* p);

}  // namespace tnp::cuda
