// Process-wide pool of host memory blocks: pinned (cudaHostAlloc) where a CUDA
// device is usable, page-aligned pageable memory otherwise. Thread-safe, so the
// TensorRT provider and worker threads can use it beside the JS thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>
#include <unordered_map>
#include <vector>

namespace tnp {

struct HostPoolStats {
  std::size_t bytesInUse = 0;    // capacity of the blocks handed out
  std::size_t bytesPooled = 0;   // capacity of the free blocks kept for reuse
  std::size_t blocksInUse = 0;
  std::size_t blocksPooled = 0;
  bool pinned = false;           // whether the pool pins its memory (a CUDA device is usable)
  std::size_t maxPooledBytes = 0;
  std::size_t maxAllocationBytes = 0;
};

// One block handed out by the pool. `id` is unique per hand-out, so a stale
// release (a finalizer after an explicit release) can be told from a live one.
struct HostBlock {
  void* data = nullptr;
  std::size_t capacity = 0;  // the size class actually reserved (>= requested)
  bool pinned = false;
  std::uint64_t id = 0;
};

class HostPool {
 public:
  static HostPool& Instance();

  // Reserves at least `bytes` (page-aligned). `wantPinned` asks for pinned memory;
  // it is granted only where a CUDA device is usable. Returns a block with
  // data == nullptr when the system is out of memory.
  HostBlock Acquire(std::size_t bytes, bool wantPinned);

  // Gives a block back. Returns false (and does nothing) when `id` is not the
  // live hand-out of `data` (already released, or never ours).
  bool Release(void* data, std::uint64_t id);

  // The live id of the block that starts at `data`, or 0 when none.
  std::uint64_t LiveId(void* data) const;

  // Frees every pooled (unused) block.
  void Trim();

  HostPoolStats Stats() const;

  // Largest single allocation accepted; larger requests are refused by callers.
  std::size_t MaxAllocationBytes() const;
  void SetLimits(std::size_t maxAllocationBytes, std::size_t maxPooledBytes);

  // Capacity (size class) used for a request of `bytes`.
  static std::size_t SizeClass(std::size_t bytes);

  HostPool(const HostPool&) = delete;
  HostPool& operator=(const HostPool&) = delete;

 private:
  HostPool();
  static void FreeBlock(void* data, std::size_t capacity, bool pinned);

  mutable std::mutex mutex_;
  // Free blocks by (pinned, capacity).
  std::map<std::pair<bool, std::size_t>, std::vector<void*>> free_;
  struct LiveBlock {
    std::uint64_t id;
    std::size_t capacity;
    bool pinned;
  };
  std::unordered_map<void*, LiveBlock> live_;
  std::uint64_t nextId_ = 1;
  std::size_t bytesInUse_ = 0;
  std::size_t bytesPooled_ = 0;
  std::size_t blocksPooled_ = 0;
  std::size_t maxPooledBytes_;
  std::size_t maxAllocationBytes_;
};

}  // namespace tnp
