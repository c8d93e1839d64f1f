#include "host_pool.h"

#include <sys/mman.h>

#include <cstdlib>
#include <new>
#include <utility>

#include "cuda_runtime.h"

namespace tnp {
namespace {

constexpr std::size_t kPage = 4096;
constexpr std::size_t kMinClass = kPage;
// Up to this size classes are powers of two; above it, multiples of kLargeStep,
// so a 100 MiB request does not reserve 128 MiB.
constexpr std::size_t kPow2Limit = std::size_t{64} << 20;
constexpr std::size_t kLargeStep = std::size_t{2} << 20;
constexpr std::size_t kDefaultMaxPooled = std::size_t{256} << 20;
constexpr std::size_t kDefaultMaxAllocation = std::size_t{4} << 30;

std::size_t EnvBytes(const char* name, std::size_t fallback) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return fallback;
  char* end = nullptr;
  unsigned long long n = std::strtoull(v, &end, 10);
  if (end == v || *end != '\0') return fallback;
  return static_cast<std::size_t>(n);
}

// Large blocks come straight from mmap, so freeing one gives its pages back to the
// system at once; from malloc's heap, blocks of mixed sizes freed in GC order
// fragment it and the process keeps growing.
constexpr std::size_t kMmapFrom = std::size_t{64} << 10;

void* AllocPageable(std::size_t bytes) {
  if (bytes >= kMmapFrom) {
    void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? nullptr : p;
  }
  void* p = nullptr;
  if (posix_memalign(&p, kPage, bytes) != 0) return nullptr;
  return p;
}

void FreePageable(void* p, std::size_t bytes) {
  if (bytes >= kMmapFrom) {
    munmap(p, bytes);
  } else {
    std::free(p);
  }
}

}  // namespace

HostPool& HostPool::Instance() {
  // Never destroyed: Buffers may be finalized during process teardown, after
  // static destructors would have run and after CUDA has unloaded. Placement new
  // into static storage keeps it alive without a heap allocation to leak.
  alignas(HostPool) static unsigned char storage[sizeof(HostPool)];
  static HostPool* const pool = ::new (static_cast<void*>(storage)) HostPool();
  return *pool;
}

HostPool::HostPool()
    : maxPooledBytes_(EnvBytes("TENSORRT_NODE_HOST_POOL_MAX_POOLED", kDefaultMaxPooled)),
      maxAllocationBytes_(EnvBytes("TENSORRT_NODE_HOST_MAX_ALLOCATION", kDefaultMaxAllocation)) {}

std::size_t HostPool::SizeClass(std::size_t bytes) {
  if (bytes <= kMinClass) return kMinClass;
  if (bytes <= kPow2Limit) {
    std::size_t c = kMinClass;
    while (c < bytes) c <<= 1;
    return c;
  }
  return (bytes + kLargeStep - 1) / kLargeStep * kLargeStep;
}

HostBlock HostPool::Acquire(std::size_t bytes, bool wantPinned) {
  const std::size_t capacity = SizeClass(bytes);
  // The first call asks the CUDA runtime (driver init, slow); later ones read a cache.
  const bool pinned = wantPinned && cuda::DeviceUsable();
  std::unique_lock<std::mutex> lock(mutex_);

  HostBlock block;
  auto it = free_.find({pinned, capacity});
  if (it != free_.end() && !it->second.empty()) {
    block.data = it->second.back();
    it->second.pop_back();
    bytesPooled_ -= capacity;
    --blocksPooled_;
  } else {
    lock.unlock();  // allocation (cudaHostAlloc above all) is slow; do not hold the lock
    block.data = pinned ? cuda::HostAllocPinned(capacity) : AllocPageable(capacity);
    lock.lock();
    if (block.data == nullptr) return HostBlock{};
  }
  block.capacity = capacity;
  block.pinned = pinned;
  block.id = nextId_++;
  live_[block.data] = LiveBlock{block.id, capacity, pinned};
  bytesInUse_ += capacity;
  return block;
}

bool HostPool::Release(void* data, std::uint64_t id) {
  std::unique_lock<std::mutex> lock(mutex_);
  auto it = live_.find(data);
  if (it == live_.end() || it->second.id != id) return false;
  const LiveBlock b = it->second;
  live_.erase(it);
  bytesInUse_ -= b.capacity;
  if (bytesPooled_ + b.capacity <= maxPooledBytes_) {
    free_[{b.pinned, b.capacity}].push_back(data);
    bytesPooled_ += b.capacity;
    ++blocksPooled_;
    return true;
  }
  lock.unlock();
  FreeBlock(data, b.capacity, b.pinned);
  return true;
}

std::uint64_t HostPool::LiveId(void* data) const {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = live_.find(data);
  return it == live_.end() ? 0 : it->second.id;
}

void HostPool::Trim() {
  std::map<std::pair<bool, std::size_t>, std::vector<void*>> blocks;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    blocks.swap(free_);
    bytesPooled_ = 0;
    blocksPooled_ = 0;
  }
  for (auto& [key, list] : blocks) {
    for (void* p : list) FreeBlock(p, key.second, key.first);
  }
}

void HostPool::FreeBlock(void* data, std::size_t capacity, bool pinned) {
  if (pinned) {
    cuda::HostFreePinned(data);
  } else {
    FreePageable(data, capacity);
  }
}

HostPoolStats HostPool::Stats() const {
  const bool pinned = cuda::DeviceUsable();
  std::lock_guard<std::mutex> lock(mutex_);
  HostPoolStats s;
  s.bytesInUse = bytesInUse_;
  s.bytesPooled = bytesPooled_;
  s.blocksInUse = live_.size();
  s.blocksPooled = blocksPooled_;
  s.pinned = pinned;
  s.maxPooledBytes = maxPooledBytes_;
  s.maxAllocationBytes = maxAllocationBytes_;
  return s;
}

std::size_t HostPool::MaxAllocationBytes() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return maxAllocationBytes_;
}

void HostPool::SetLimits(std::size_t maxAllocationBytes, std::size_t maxPooledBytes) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    maxAllocationBytes_ = maxAllocationBytes;
    maxPooledBytes_ = maxPooledBytes;
    if (bytesPooled_ <= maxPooledBytes_) return;
  }
  Trim();
}

}  // namespace tnp
