// What every SGEMM micro-kernel shares: packing B, the loops over panels and row tiles, and the
// kernel contract's check.
#include "kernels/sgemm.h"

#include <cassert>
#include <cstdint>

namespace irnet {

SgemmPackedB sgemm_pack_b(size_t k, size_t n, size_t nr, const float* b) {
  const size_t panels = (n + nr - 1) / nr;
  SgemmPackedB packed(panels * k * nr, 0.0f);
  for (size_t p = 0; p < k; ++p)
    for (size_t j = 0; j < n; ++j) packed[((j / nr) * k + p) * nr + j % nr] = b[p * n + j];
  return packed;
}

const char* sgemm_contract_violation(size_t mr_max, size_t nr, const SgemmTile& t) {
  if (t.mr < 1 || t.mr > mr_max) return "mr must be 1..MR";
  if (t.nc < 1 || t.nc > nr) return "nc must be 1..NR";
  if (t.segs < 1 || t.seg_len < 1) return "k must be >= 1 (segs and seg_len >= 1)";
  if (!t.a || !t.a_offsets || !t.b) return "a, a_offsets and b must not be null";
  for (size_t i = 0; i < t.mr; ++i)
    if (!t.a[i]) return "every row pointer must be set";
  const size_t align = nr * sizeof(float) < kCacheLine ? nr * sizeof(float) : kCacheLine;
  if (reinterpret_cast<uintptr_t>(t.b) % align != 0) return "a packed panel must start on a cache line (or NR floats)";
  return "";
}

void SgemmKernel::run(size_t m, size_t n, const SgemmLhs& a, const float* packed_b, const SgemmOutput& out) const {
  const size_t k = a.segs * a.seg_len;
  const size_t tiles = (m + mr - 1) / mr;
  SgemmTile t{0, 0, nullptr, a.seg_offsets, a.segs, a.seg_len, nullptr, 0, 0};
  for (size_t j0 = 0; j0 < n; j0 += nr) {
    t.b = packed_b + (j0 / nr) * k * nr;
    t.nc = n - j0 < nr ? n - j0 : nr;
    t.j0 = j0;
    for (size_t q = 0, i0 = 0; q < tiles; ++q) {
      t.mr = m / tiles + (q < m % tiles ? 1 : 0);
      t.a = a.rows + i0;
      t.i0 = i0;
      assert(*sgemm_contract_violation(mr, nr, t) == '\0');
      ukernel(t, out);
      i0 += t.mr;
    }
  }
}

}  // namespace irnet
