#include "kernels/sgemm.h"

namespace irnet {

// i-k-j order: the inner loop runs along contiguous rows of B and C, so the compiler can
// vectorize it even in this portable version.
void irn_sgemm_ukernel_1xN__scalar(size_t m, size_t n, size_t k, const float* a, size_t lda,
                               const float* b, size_t ldb, float* c, size_t ldc) {
  for (size_t i = 0; i < m; ++i) {
    float* ci = c + i * ldc;
    for (size_t j = 0; j < n; ++j) ci[j] = 0.0f;
    for (size_t p = 0; p < k; ++p) {
      const float aip = a[i * lda + p];
      const float* bp = b + p * ldb;
      for (size_t j = 0; j < n; ++j) ci[j] += aip * bp[j];
    }
  }
}

}  // namespace irnet
