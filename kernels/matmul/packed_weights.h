// The packed copies of constant B operands (weights) that the fast MatMul paths keep, one cache
// per packed element type (BF16 pairs for AVX-512, FP32 panels for AVX2, int16 pairs for the
// INT8 AVX2 path, int8 quads for the INT8 vpdpbusd paths). Baseline code only (the
// dispatchers); ReleasePackedWeights (matmul.h) empties the entries of a freed buffer from every
// cache.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

namespace phoenix::kernels::packing {

// Packed copies of constant B operands, keyed by (address, K, N, strides), one cache per packed
// element type (BF16 pairs for AVX-512, FP32 panels for AVX2). Thread-safe; entries are
// shared_ptr so a Release racing with a running MatMul never frees memory in use. Bounded: past
// kMaxBytes the cache is emptied (the weights then repack on next use).
template <typename E>
class PackedWeightCache {
 public:
  using Packed = std::shared_ptr<const std::vector<E>>;
  static PackedWeightCache& Get() {
    static PackedWeightCache* cache = new PackedWeightCache();  // never destroyed: safe at exit
    return *cache;
  }

  Packed Find(const void* b, const void* tag, int64_t K, int64_t N, int64_t rs, int64_t cs) {
    std::lock_guard<std::mutex> lk(mu_);
    for (const Entry& e : entries_)
      if (e.ptr == b && e.tag == tag && e.K == K && e.N == N && e.rs == rs && e.cs == cs) return e.data;
    return nullptr;
  }

  Packed Insert(const void* b, const void* tag, int64_t K, int64_t N, int64_t rs, int64_t cs, Packed data) {
    std::lock_guard<std::mutex> lk(mu_);
    for (const Entry& e : entries_)
      if (e.ptr == b && e.tag == tag && e.K == K && e.N == N && e.rs == rs && e.cs == cs) return e.data;  // lost a race
    const size_t bytes = data->size() * sizeof(E);
    if (bytes_ + bytes > kMaxBytes) {
      entries_.clear();
      bytes_ = 0;
    }
    entries_.push_back(Entry{b, tag, K, N, rs, cs, bytes, data});
    bytes_ += bytes;
    return data;
  }

  void Release(const void* begin, size_t bytes) {
    const char* lo = static_cast<const char*>(begin);
    const char* hi = lo + bytes;
    std::lock_guard<std::mutex> lk(mu_);
    auto dead = [&](const Entry& e) {
      const char* p = reinterpret_cast<const char*>(e.ptr);
      return p >= lo && p < hi;
    };
    for (const Entry& e : entries_)
      if (dead(e)) bytes_ -= e.bytes;
    entries_.erase(std::remove_if(entries_.begin(), entries_.end(), dead), entries_.end());
  }

 private:
  static constexpr size_t kMaxBytes = size_t{4} << 30;
  struct Entry {
    const void* ptr;
    const void* tag;       // anything else the packing depended on (INT8: the zero points)
    int64_t K, N, rs, cs;  // K of the packed operand: 3x the MatMul's K for BF16x3
    size_t bytes;
    Packed data;
  };
  std::mutex mu_;
  std::vector<Entry> entries_;
  size_t bytes_ = 0;
};

// The packed copy of constant operand b (key: b, tag, K, N, strides) from the cache; on a miss
// pack(dst) fills `elems` fresh elements, which the cache then keeps.
template <typename E, typename Pack>
std::shared_ptr<const std::vector<E>> CachedPack(const void* b, const void* tag, int64_t K, int64_t N, int64_t rs,
                                                 int64_t cs, int64_t elems, Pack&& pack) {
  auto& cache = PackedWeightCache<E>::Get();
  if (auto data = cache.Find(b, tag, K, N, rs, cs)) return data;
  auto fresh = std::make_shared<std::vector<E>>(static_cast<size_t>(elems));
  pack(fresh->data());
  return cache.Insert(b, tag, K, N, rs, cs, std::move(fresh));
}

// Grows a scratch vector to at least n elements (never shrinks: no allocation after warm-up).
template <typename T>
void Grow(std::vector<T>& v, size_t n) {
  if (v.size() < n) v.resize(n);
}

}  // namespace phoenix::kernels::packing
