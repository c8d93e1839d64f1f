#include "driver_probe.h"

#include <dlfcn.h>

#include <fstream>

namespace tnp {
namespace {

DriverProbe Run() {
  DriverProbe p;
  std::ifstream version("/proc/driver/nvidia/version");
  if (version) std::getline(version, p.kernelModule);

  // Kept open for the life of the process: the static CUDA runtime opens the same
  // library, so closing ours would not unload it anyway.
  void* lib = dlopen("libcuda.so.1", RTLD_LAZY | RTLD_LOCAL);
  if (lib == nullptr) {
    const char* err = dlerror();
    p.libraryError = err != nullptr ? err : "libcuda.so.1: cannot open shared object file";
    return p;
  }
  p.libraryFound = true;
  using GetVersion = int (*)(int*);
  auto getVersion = reinterpret_cast<GetVersion>(dlsym(lib, "cuDriverGetVersion"));
  int v = 0;
  if (getVersion != nullptr && getVersion(&v) == 0) p.cudaVersion = v;
  return p;
}

}  // namespace

const DriverProbe& ProbeDriver() {
  static const DriverProbe probe = Run();
  return probe;
}

}  // namespace tnp
