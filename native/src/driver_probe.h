// Looks for the NVIDIA driver without the CUDA runtime: dlopen libcuda.so.1 and
// ask cuDriverGetVersion, which needs no cuInit. Works in every variant, cpu
// included, so runtimeInfo() can say what the machine has.
#pragma once

#include <string>

namespace tnp {

struct DriverProbe {
  bool libraryFound = false;
  std::string libraryError;       // dlerror() text when not found
  int cudaVersion = 0;            // cuDriverGetVersion: the newest CUDA the driver supports, e.g. 13000
  std::string kernelModule;       // first line of /proc/driver/nvidia/version, when present
};

// Probed once per process; never throws.
const DriverProbe& ProbeDriver();

}  // namespace tnp
