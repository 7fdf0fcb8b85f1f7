// Binary GEMM: for every row m of A and row n of B (both k_words 64-bit words long),
// count[m * ldc + n] = popcount(A[m] XOR B[n]) summed over the k_words words.
// The op turns counts into dot products (dot = K - 2 * count) and applies its output transform.
#pragma once
#include <cstddef>
#include <cstdint>

namespace irnet {

using BgemmFn = void (*)(size_t m, size_t n, size_t k_words, const uint64_t* a, const uint64_t* b,
                         int32_t* count, size_t ldc);

void irn_bgemm_i32_ukernel__scalar(size_t m, size_t n, size_t k_words, const uint64_t* a,
                                   const uint64_t* b, int32_t* count, size_t ldc);

}  // namespace irnet
