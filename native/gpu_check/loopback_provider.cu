// A stand-in TensorRT provider for the GPU check (scripts/test-gpu.sh): it
// speaks the provider ABI (native/tensorrt/provider_abi.h) but its "engine" is
// one CUDA kernel, so the addon's whole run path - pinned host buffers, async
// copies on per-instance streams, enqueue, host-function completion, the
// thread-safe function settling the Promise, CUDA graphs - can be exercised
// and timed on a GPU without the TensorRT SDK. Nothing here is shipped.
//
// Plan text: "tnp-loopback in=<elements> out=<elements> batch=<max batch, 0 = static> work=<iterations>"
// Engine: input "x" float32 [B, in] -> output "y" float32 [B, out], with
// y[b, i] = f(x[b, i % in]) and f(v) = v * 2 + 1 after `work` dependent
// multiply-adds that leave it unchanged (so the kernel can be made slower).
#include <cuda_runtime.h>

#include <algorithm>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>

#include "../tensorrt/provider_abi.h"

struct TnpLibrary {
  int unused;
};
struct TnpEngine {
  long long in = 0, out = 0;
  int maxBatch = 0;  // 0: static batch of 1
  int work = 0;
};
struct TnpContext {
  TnpEngine* engine = nullptr;
  long long batch = 1;
  float* x = nullptr;
  float* y = nullptr;
};

namespace {

TnpStatus Fail(TnpError* err, TnpStatus st, const char* msg) {
  if (err != nullptr) {
    std::snprintf(err->message, sizeof err->message, "loopback: %s", msg);
    err->node_index = -1;
    err->node_name[0] = 0;
    err->op_type[0] = 0;
  }
  return st;
}

__global__ void Loopback(const float* x, float* y, long long in, long long out, long long batch, int work) {
  const long long n = out * batch;
  for (long long i = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<long long>(blockDim.x) * gridDim.x) {
    const long long b = i / out, j = i % out;
    float v = x[b * in + (j % in)];
    float acc = v;
    for (int k = 0; k < work; ++k) acc = acc * 1.0000001f + 0.0f;  // dependent chain: time, not change
    y[i] = (work > 0 ? (acc - acc + v) : v) * 2.0f + 1.0f;
  }
}

TnpLibrary gLibrary;

TnpStatus LibraryOpen(void*, void*, TnpLogFn, void*, TnpLibrary** out, TnpError*) {
  *out = &gLibrary;
  return TNP_OK;
}
void LibraryClose(TnpLibrary*) {}
int32_t LibraryVersion(const TnpLibrary*) { return 110000; }
int32_t LibraryBuildVersion(const TnpLibrary*) { return 0; }
int32_t LibraryCanBuild(const TnpLibrary*) { return 1; }

// "Building" passes the plan text through, so the backend's build path runs too.
TnpStatus Build(TnpLibrary*, const TnpBuildOptions* o, TnpBlob* plan, TnpBlob* cache, TnpError* err) {
  if (o->onnx_size < 12 || std::memcmp(o->onnx, "tnp-loopback", 12) != 0) {
    return Fail(err, TNP_E_PARSE, "not a loopback plan text");
  }
  auto bytes = std::make_unique<char[]>(o->onnx_size);
  std::memcpy(bytes.get(), o->onnx, o->onnx_size);
  plan->data = bytes.get();
  plan->size = o->onnx_size;
  plan->owner = bytes.release();
  if (cache != nullptr) *cache = TnpBlob{};
  return TNP_OK;
}
void BlobFree(TnpBlob* b) {
  std::unique_ptr<char[]> owned(static_cast<char*>(b->owner));
  *b = TnpBlob{};
}

TnpStatus EngineLoad(TnpLibrary*, const void* plan, size_t size, TnpEngine** out, TnpError* err) {
  std::string text(static_cast<const char*>(plan), size);
  auto e = std::make_unique<TnpEngine>();
  if (std::sscanf(text.c_str(), "tnp-loopback in=%lld out=%lld batch=%d work=%d", &e->in, &e->out, &e->maxBatch,
                  &e->work) != 4 ||
      e->in <= 0 || e->out <= 0) {
    return Fail(err, TNP_E_RUNTIME, "bad loopback plan");
  }
  *out = e.release();
  return TNP_OK;
}
void EngineFree(TnpEngine* e) { std::unique_ptr<TnpEngine> owned(e); }
int32_t EngineIoCount(const TnpEngine*) { return 2; }
int32_t EngineProfileCount(const TnpEngine*) { return 1; }

TnpStatus EngineIoDesc(const TnpEngine* e, int32_t index, TnpTensorDesc* d, TnpError* err) {
  if (index < 0 || index > 1) return Fail(err, TNP_E_INVALID, "index");
  *d = TnpTensorDesc{};
  d->name = index == 0 ? "x" : "y";
  d->is_input = index == 0;
  d->dtype = TNP_DT_FLOAT32;
  const long long width = index == 0 ? e->in : e->out;
  d->shape.nb_dims = 2;
  d->shape.d[0] = e->maxBatch > 0 ? -1 : 1;
  d->shape.d[1] = width;
  d->min = d->opt = d->max = d->shape;
  if (e->maxBatch > 0 && index == 0) {
    d->min.d[0] = 1;
    d->opt.d[0] = 1;
    d->max.d[0] = e->maxBatch;
  }
  return TNP_OK;
}

TnpStatus ContextCreate(TnpEngine* e, void*, TnpContext** out, TnpError*) {
  auto c = std::make_unique<TnpContext>();
  c->engine = e;
  *out = c.release();
  return TNP_OK;
}
void ContextFree(TnpContext* c) { std::unique_ptr<TnpContext> owned(c); }

TnpStatus SetInputShape(TnpContext* c, const char* name, const TnpDims* d, TnpError* err) {
  if (std::strcmp(name, "x") != 0 || d->nb_dims != 2 || d->d[1] != c->engine->in) {
    return Fail(err, TNP_E_INVALID, "shape");
  }
  const long long maxBatch = c->engine->maxBatch > 0 ? c->engine->maxBatch : 1;
  if (d->d[0] < 1 || d->d[0] > maxBatch) return Fail(err, TNP_E_INVALID, "batch out of range");
  c->batch = d->d[0];
  return TNP_OK;
}

TnpStatus SetAddress(TnpContext* c, const char* name, void* p, TnpError* err) {
  if (std::strcmp(name, "x") == 0) {
    c->x = static_cast<float*>(p);
  } else if (std::strcmp(name, "y") == 0) {
    c->y = static_cast<float*>(p);
  } else {
    return Fail(err, TNP_E_INVALID, "no such tensor");
  }
  return TNP_OK;
}

TnpStatus TensorShape(const TnpContext* c, const char* name, TnpDims* out, TnpError* err) {
  const bool x = std::strcmp(name, "x") == 0;
  if (!x && std::strcmp(name, "y") != 0) return Fail(err, TNP_E_INVALID, "no such tensor");
  *out = TnpDims{};
  out->nb_dims = 2;
  out->d[0] = c->batch;
  out->d[1] = x ? c->engine->in : c->engine->out;
  return TNP_OK;
}

TnpStatus Enqueue(TnpContext* c, void* stream, TnpError* err) {
  const long long n = c->engine->out * c->batch;
  const int threads = 256;
  const int blocks = static_cast<int>(std::min<long long>((n + threads - 1) / threads, 132 * 16));
  Loopback<<<blocks, threads, 0, static_cast<cudaStream_t>(stream)>>>(c->x, c->y, c->engine->in, c->engine->out,
                                                                      c->batch, c->engine->work);
  const cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess) return Fail(err, TNP_E_RUNTIME, cudaGetErrorString(e));
  return TNP_OK;
}

const TnpProviderApi kApi = {
    TNP_PROVIDER_ABI_VERSION, sizeof(TnpProviderApi), 110000, 11,
    LibraryOpen, LibraryClose, LibraryVersion, LibraryBuildVersion, LibraryCanBuild,
    Build, BlobFree, EngineLoad, EngineFree, EngineIoCount, EngineIoDesc, EngineProfileCount,
    ContextCreate, ContextFree, SetInputShape, SetAddress, TensorShape, Enqueue,
};

}  // namespace

extern "C" __attribute__((visibility("default"))) const TnpProviderApi* tnp_provider_get(uint32_t abi) {
  return abi == TNP_PROVIDER_ABI_VERSION ? &kApi : nullptr;
}
