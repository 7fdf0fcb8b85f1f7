// Float GEMM for the real-valued layers (stems, downsample shortcuts, classifier):
// C[m x n] = A[m x k] * B[k x n], all row-major with the given leading dimensions.
#pragma once
#include <cstddef>

namespace irnet {

using SgemmFn = void (*)(size_t m, size_t n, size_t k, const float* a, size_t lda, const float* b,
                         size_t ldb, float* c, size_t ldc);

void irn_sgemm_ukernel_1xN__scalar(size_t m, size_t n, size_t k, const float* a, size_t lda,
                                   const float* b, size_t ldb, float* c, size_t ldc);
void irn_sgemm_ukernel_8x32__avx512(size_t m, size_t n, size_t k, const float* a, size_t lda,
                                    const float* b, size_t ldb, float* c, size_t ldc);
void irn_sgemm_ukernel_6x16__avx2(size_t m, size_t n, size_t k, const float* a, size_t lda,
                                  const float* b, size_t ldb, float* c, size_t ldc);

}  // namespace irnet
