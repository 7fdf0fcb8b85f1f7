// Cache-line aligned buffers (activations, packed weights): a 64-byte vector load or store that straddles
// two cache lines costs about twice as much, and malloc only promises 16 bytes.
#pragma once
#include <cstddef>
#include <cstdint>
#include <new>
#include <vector>

namespace irnet {

constexpr size_t kCacheLine = 64;

template <typename T>
struct CacheLineAllocator {
  using value_type = T;
  CacheLineAllocator() = default;
  template <typename U>
  CacheLineAllocator(const CacheLineAllocator<U>&) {}
  T* allocate(size_t n) { return static_cast<T*>(::operator new(n * sizeof(T), std::align_val_t(kCacheLine))); }
  void deallocate(T* p, size_t) { ::operator delete(p, std::align_val_t(kCacheLine)); }
  template <typename U>
  bool operator==(const CacheLineAllocator<U>&) const { return true; }
  template <typename U>
  bool operator!=(const CacheLineAllocator<U>&) const { return false; }
};

template <typename T>
using AlignedVector = std::vector<T, CacheLineAllocator<T>>;

// Elements of T per cache line, and n rounded up to a whole number of cache lines.
template <typename T>
constexpr size_t per_cache_line() { return kCacheLine / sizeof(T); }
template <typename T>
constexpr int64_t round_to_cache_lines(int64_t n) {
  const int64_t per = int64_t(per_cache_line<T>());
  return (n + per - 1) / per * per;
}

}  // namespace irnet
