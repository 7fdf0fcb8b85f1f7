// Binary GEMM: count[i * ldc + j] = popcount(A[i] XOR B[j]) summed over k_words 64-bit words,
// for i < m, j < n. The op turns counts into dot products (dot = K - 2 * count).
//
// A is row-major (row i at a + i * lda). B is packed once per layer by bgemm_pack_b into
// panels of NR columns: panel p holds, for each word k, the NR words B[p*NR + 0..NR-1][k]
// (columns past n are zero). Each kernel broadcasts a word of A against NR words of B, so any
// k_words works without horizontal sums, and all MR x NR counts stay in registers.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

namespace irnet {

struct BgemmKernel {
  size_t nr;  // panel width the packed B must have
  void (*run)(size_t m, size_t n, size_t k_words, const uint64_t* a, size_t lda,
              const uint64_t* packed_b, int32_t* count, size_t ldc);
};

// Same for every ISA: only the panel width differs.
std::vector<uint64_t> bgemm_pack_b(size_t n, size_t k_words, size_t nr, const uint64_t* b);

void irn_bgemm_i32_ukernel_1x8__scalar(size_t m, size_t n, size_t k_words, const uint64_t* a,
                                       size_t lda, const uint64_t* packed_b, int32_t* count,
                                       size_t ldc);
void irn_bgemm_i32_ukernel_4x32__avx512(size_t m, size_t n, size_t k_words, const uint64_t* a,
                                        size_t lda, const uint64_t* packed_b, int32_t* count,
                                        size_t ldc);
void irn_bgemm_i32_ukernel_2x8__avx2(size_t m, size_t n, size_t k_words, const uint64_t* a,
                                     size_t lda, const uint64_t* packed_b, int32_t* count,
                                     size_t ldc);
void irn_bgemm_i32_ukernel_2x8__neon(size_t m, size_t n, size_t k_words, const uint64_t* a,
                                     size_t lda, const uint64_t* packed_b, int32_t* count,
                                     size_t ldc);

}  // namespace irnet
