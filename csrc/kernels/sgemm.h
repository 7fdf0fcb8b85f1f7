// Float GEMM for the real-valued layers (stems, downsample shortcuts, classifier):
// C[m x n] = A[m x k] * B[k x n]; A and C row-major with leading dimensions lda, ldc.
// B is packed once per layer by sgemm_pack_b into panels of NR columns (panel p holds, for each
// k, B[k][p*NR .. p*NR+NR-1], zero past n), so the kernels read B sequentially and unmasked.
#pragma once
#include <cstddef>
#include <vector>

namespace irnet {

struct SgemmKernel {
  size_t nr;
  void (*run)(size_t m, size_t n, size_t k, const float* a, size_t lda, const float* packed_b,
              float* c, size_t ldc);
};

std::vector<float> sgemm_pack_b(size_t k, size_t n, size_t nr, const float* b);

#define IRN_SGEMM_KERNEL(name)                                                           \
  void name(size_t m, size_t n, size_t k, const float* a, size_t lda, const float* packed_b, \
            float* c, size_t ldc)
IRN_SGEMM_KERNEL(irn_sgemm_ukernel_1x8__scalar);
IRN_SGEMM_KERNEL(irn_sgemm_ukernel_12x32__avx512);
IRN_SGEMM_KERNEL(irn_sgemm_ukernel_6x16__avx2);

}  // namespace irnet
