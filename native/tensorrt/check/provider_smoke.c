/* Loads a provider and a (fake or real) libnvinfer the way the addon does, and
   prints what library_open decided: used by scripts/check-tensorrt.sh to check
   the provider's refusals (wrong major, missing symbol) without TensorRT.
   usage: provider_smoke PROVIDER.so LIBNVINFER.so [LIBNVONNXPARSER.so] */
#include <dlfcn.h>
#include <stdio.h>

#include "../provider_abi.h"

int main(int argc, char** argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: %s provider.so libnvinfer.so [libnvonnxparser.so]\n", argv[0]);
    return 2;
  }
  void* provider = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
  if (!provider) {
    printf("provider_dlopen_failed %s\n", dlerror());
    return 1;
  }
  TnpProviderGetFn get = (TnpProviderGetFn)dlsym(provider, TNP_ENTRY_SYMBOL);
  if (!get) {
    printf("no_entry\n");
    return 1;
  }
  if (get(TNP_PROVIDER_ABI_VERSION + 1) != NULL) {
    printf("accepted_wrong_abi\n");
    return 1;
  }
  const TnpProviderApi* api = get(TNP_PROVIDER_ABI_VERSION);
  void* nvinfer = dlopen(argv[2], RTLD_NOW | RTLD_LOCAL);
  void* parser = argc > 3 ? dlopen(argv[3], RTLD_NOW | RTLD_LOCAL) : NULL;
  if (!nvinfer) {
    printf("nvinfer_dlopen_failed %s\n", dlerror());
    return 1;
  }
  TnpLibrary* lib = NULL;
  TnpError err;
  TnpStatus st = api->library_open(nvinfer, parser, NULL, NULL, &lib, &err);
  printf("header_major=%d header_version=%d status=%d", api->header_major, api->header_version, (int)st);
  if (st == TNP_OK) {
    printf(" version=%d build=%d can_build=%d", api->library_version(lib), api->library_build_version(lib),
           api->library_can_build(lib));
    /* The fake factories return NULL: build and load must fail with a status, not crash. */
    TnpEngine* engine = NULL;
    const char plan[4] = {1, 2, 3, 4};
    TnpStatus ls = api->engine_load(lib, plan, sizeof plan, &engine, &err);
    printf(" load_status=%d", (int)ls);
    api->library_close(lib);
  } else {
    printf(" message=\"%s\"", err.message);
  }
  printf("\n");
  return 0;
}
