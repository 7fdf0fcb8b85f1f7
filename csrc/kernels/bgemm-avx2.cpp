// AVX2 has no vector popcount: nibble-LUT popcount (vpshufb) into byte counters. Both operands
// arrive split into nibbles, so each lookup index is one XOR: B is packed that way (lane_bits 4,
// see bgemm_pack_b: per word, the panel's 8 low-nibble words then its 8 high-nibble words), and
// the kernel splits the rows of A it is given into a stack buffer once per call, not once per
// panel. Per word and 4 output columns that is 2 XOR + 2 vpshufb + 2 byte adds, against about 7
// operations for the XOR + carry-save (Harley-Seal, 7 words) + 3-lookup scheme this replaced,
// with no leftover words for small K. A byte counter gains at most 8 per word, so counters are
// widened (vpsadbw) every kFlush = 31 words. A 4 x 8 tile keeps its 8 byte counters, 4 words of
// B, the lookup table and 3 temporaries in the 16 ymm registers; the word loop is inline
// assembly because GCC spills half the counters of the same loop written in intrinsics (each
// spill a load and a store per word). The epilogue applies the output transform on 8 channels
// at a time, in the same operation order as the scalar one.
#include <immintrin.h>

#include <algorithm>

#include "kernels/bgemm.h"

namespace irnet {

namespace {

constexpr size_t MR = 4;
constexpr size_t NR = 8;
// At most 8 per byte counter per word (4 from each nibble): 31 words keep it <= 248 < 256.
constexpr size_t kFlush = 31;
// The split rows of A live on the stack: 32 KiB, a quarter of the smallest thread stack a
// caller is likely to run on, and L1-sized. A group of MR rows takes 2 * MR words per word of K.
constexpr size_t kSplitWords = 4096;

// Columns 0..3 and 4..7 as 64-bit sums (all < 2^32) -> the 8 columns as int32 in order.
inline __m256i counts8(__m256i lo4, __m256i hi4) {
  const __m256i mixed = _mm256_or_si256(lo4, _mm256_slli_epi64(hi4, 32));  // c0 c4 c1 c5 ...
  return _mm256_permutevar8x32_epi32(mixed, _mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7));
}

// Lanes 0..left-1 set, for the masked loads and stores of a partial panel.
inline __m256i tail_mask(size_t left) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(int(left)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

// Output transform of rows i0.. i0+ROWS-1, 8 columns j.. (`left` of them exist), from their
// counts. The per-column operands (mul, bias, bounds) are loaded once for all the rows, and the
// fields of `o` are read into locals first: the stores through `out` could alias them (lo and
// hi are floats), so the compiler would otherwise reload them after every row.
template <size_t ROWS>
inline void store_transformed(const BgemmOutput& o, size_t i0, size_t j, size_t left, const __m256i* count) {
  j += o.col;
  const bool full = left >= 8;
  const __m256i mask = tail_mask(full ? 8 : left);
  const size_t ldo = o.ldo;
  const int32_t* const* correction = o.correction;
  const float* residual = o.residual ? o.residual + i0 * ldo + j : nullptr;
  float* out = o.out + i0 * ldo + j;
  const __m256 mul = full ? _mm256_loadu_ps(o.mul + j) : _mm256_maskload_ps(o.mul + j, mask);
  const __m256 bias = full ? _mm256_loadu_ps(o.bias + j) : _mm256_maskload_ps(o.bias + j, mask);
  const __m256 lo = _mm256_set1_ps(o.lo), hi = _mm256_set1_ps(o.hi);
  const __m256i k_bits = _mm256_set1_epi32(o.k_bits);
  for (size_t i = 0; i < ROWS; ++i, out += ldo) {
    __m256i dot = _mm256_sub_epi32(k_bits, _mm256_slli_epi32(count[i], 1));
    if (const int32_t* corr = correction ? correction[i0 + i] : nullptr) {
      const __m256i c = full ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(corr + j))
                             : _mm256_maskload_epi32(corr + j, mask);
      dot = _mm256_sub_epi32(dot, c);
    }
    __m256 y = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot), mul, bias);
    if (residual) {
      y = _mm256_add_ps(y, full ? _mm256_loadu_ps(residual) : _mm256_maskload_ps(residual, mask));
      residual += ldo;
    }
    // Operand order keeps NaN as NaN, like the scalar comparison chain.
    y = _mm256_min_ps(hi, _mm256_max_ps(lo, y));
    if (full) {
      _mm256_storeu_ps(out, y);
    } else {
      _mm256_maskstore_ps(out, mask, y);
    }
  }
}

// Rows [i0, i0 + rows) of A, words [k0, k0 + kw), split into low and high nibbles at `buf`:
// whole groups of MR rows first, a group's words interleaved ([k][row][low, high]: one word of
// the tile is 64 contiguous bytes), then the rows left over one after another ([k][low, high]).
void split_rows(const BgemmLhs& a, size_t i0, size_t rows, size_t k0, size_t kw, uint64_t* buf) {
  const size_t grouped = rows / MR * MR;
  const __m256i low = _mm256_set1_epi8(0x0f);
  // A group's 4 words of one k at once: [w0 w1 w2 w3] -> [lo0 hi0 lo1 hi1] [lo2 hi2 lo3 hi3].
  for (size_t g = 0; g < grouped; g += MR) {
    const uint64_t* r0 = a.base + a.row_offsets[i0 + g];
    const uint64_t* r1 = a.base + a.row_offsets[i0 + g + 1];
    const uint64_t* r2 = a.base + a.row_offsets[i0 + g + 2];
    const uint64_t* r3 = a.base + a.row_offsets[i0 + g + 3];
    __m256i* dst = reinterpret_cast<__m256i*>(buf + g * 2 * kw);
    for (size_t k = 0; k < kw; ++k, dst += 2) {
      const size_t off = a.k_offsets[k0 + k];
      const __m128i w01 = _mm_set_epi64x(static_cast<long long>(r1[off]), static_cast<long long>(r0[off]));
      const __m128i w23 = _mm_set_epi64x(static_cast<long long>(r3[off]), static_cast<long long>(r2[off]));
      const __m256i w = _mm256_inserti128_si256(_mm256_castsi128_si256(w01), w23, 1);  // w0 w1 | w2 w3
      const __m256i lo = _mm256_and_si256(w, low), hi = _mm256_and_si256(_mm256_srli_epi16(w, 4), low);
      const __m256i even = _mm256_unpacklo_epi64(lo, hi), odd = _mm256_unpackhi_epi64(lo, hi);  // rows 0, 2 | 1, 3
      _mm256_store_si256(dst, _mm256_permute2x128_si256(even, odd, 0x20));
      _mm256_store_si256(dst + 1, _mm256_permute2x128_si256(even, odd, 0x31));
    }
  }
  for (size_t r = grouped; r < rows; ++r) {
    const uint64_t* row = a.base + a.row_offsets[i0 + r];
    uint64_t* dst = buf + 2 * r * kw;
    for (size_t k = 0; k < kw; ++k, dst += 2) {
      const uint64_t w = row[a.k_offsets[k0 + k]];
      dst[0] = w & kBgemmLowNibbles;
      dst[1] = (w >> 4) & kBgemmLowNibbles;
    }
  }
}

// One row of a word: its two nibble words broadcast, each XORed with the panel's 4 + 4
// columns of that nibble, looked up, added to the row's two byte counters.
#define IRN_ROW(r, B0, B1, B2, B3, c0, c1)                                                   \
  "vpbroadcastq " #r "*16(%[a]), %[lo]\n\t"                                                  \
  "vpbroadcastq " #r "*16+8(%[a]), %[hi]\n\t"                                                \
  "vpxor " B0 ", %[lo], %[t]\n\tvpshufb %[t], %[lut], %[t]\n\tvpaddb %[t], %[" #c0 "], %[" #c0 "]\n\t" \
  "vpxor " B2 ", %[hi], %[t]\n\tvpshufb %[t], %[lut], %[t]\n\tvpaddb %[t], %[" #c0 "], %[" #c0 "]\n\t" \
  "vpxor " B1 ", %[lo], %[t]\n\tvpshufb %[t], %[lut], %[t]\n\tvpaddb %[t], %[" #c1 "], %[" #c1 "]\n\t" \
  "vpxor " B3 ", %[hi], %[t]\n\tvpshufb %[t], %[lut], %[t]\n\tvpaddb %[t], %[" #c1 "], %[" #c1 "]\n\t"

// The counts of R (MR or 1) split rows at `a` against the panel words at `b`, kw words, added
// to total[r][v] (64-bit sums of columns 4v..4v+3), or stored there when `first` (one flush
// less to add: most layers have K <= kFlush).
template <size_t R>
inline void accumulate(const uint64_t* a, const uint64_t* b, size_t kw, bool first, __m256i (&total)[R][2]) {
  const __m256i lut = _mm256_setr_epi8(0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4,
                                       0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4);
  const __m256i zero = _mm256_setzero_si256();
  size_t k0 = 0;
  do {  // kw >= 1 (the contract's k_words >= 1): the first flush always runs
    const size_t k1 = std::min(kw, k0 + kFlush);
    __m256i c[MR][2];
    for (size_t r = 0; r < MR; ++r) c[r][0] = c[r][1] = zero;
    for (size_t k = k0; k < k1; ++k, a += 2 * R, b += 2 * NR) {
      __m256i lo, hi, t;
      if constexpr (R == MR) {
        // B's 4 vectors of this word loaded once for the 4 rows.
        __m256i b0, b1, b2, b3;
        asm("vmovdqu (%[b]), %[b0]\n\tvmovdqu 32(%[b]), %[b1]\n\t"
            "vmovdqu 64(%[b]), %[b2]\n\tvmovdqu 96(%[b]), %[b3]\n\t"
            IRN_ROW(0, "%[b0]", "%[b1]", "%[b2]", "%[b3]", c00, c01)
            IRN_ROW(1, "%[b0]", "%[b1]", "%[b2]", "%[b3]", c10, c11)
            IRN_ROW(2, "%[b0]", "%[b1]", "%[b2]", "%[b3]", c20, c21)
            IRN_ROW(3, "%[b0]", "%[b1]", "%[b2]", "%[b3]", c30, c31)
            : [c00] "+x"(c[0][0]), [c01] "+x"(c[0][1]), [c10] "+x"(c[1][0]), [c11] "+x"(c[1][1]),
              [c20] "+x"(c[2][0]), [c21] "+x"(c[2][1]), [c30] "+x"(c[3][0]), [c31] "+x"(c[3][1]),
              [lo] "=&x"(lo), [hi] "=&x"(hi), [t] "=&x"(t), [b0] "=&x"(b0), [b1] "=&x"(b1), [b2] "=&x"(b2),
              [b3] "=&x"(b3)
            : [a] "r"(a), [b] "r"(b), [lut] "x"(lut), "m"(*reinterpret_cast<const char(*)[16 * MR]>(a)),
              "m"(*reinterpret_cast<const char(*)[16 * NR]>(b)));
      } else {
        static_assert(R == 1, "tiles are MR rows or one row");
        asm(IRN_ROW(0, "(%[b])", "32(%[b])", "64(%[b])", "96(%[b])", c00, c01)
            : [c00] "+x"(c[0][0]), [c01] "+x"(c[0][1]), [lo] "=&x"(lo), [hi] "=&x"(hi), [t] "=&x"(t)
            : [a] "r"(a), [b] "r"(b), [lut] "x"(lut), "m"(*reinterpret_cast<const char(*)[16]>(a)),
              "m"(*reinterpret_cast<const char(*)[16 * NR]>(b)));
      }
    }
    for (size_t r = 0; r < R; ++r)
      for (size_t v = 0; v < 2; ++v) {
        const __m256i sums = _mm256_sad_epu8(c[r][v], zero);
        total[r][v] = first && k0 == 0 ? sums : _mm256_add_epi64(total[r][v], sums);
      }
    k0 = k1;
  } while (k0 < kw);
}

#undef IRN_ROW

// R rows from i0 (their split words at `a`, all of K) x the 8 columns of one panel.
template <size_t R>
inline void tile(const uint64_t* a, const uint64_t* panel, size_t k_words, const BgemmOutput& o, size_t i0,
                 size_t j0, size_t cols) {
  __m256i total[R][2];
  accumulate<R>(a, panel, k_words, true, total);
  __m256i counts[R];
  for (size_t r = 0; r < R; ++r) counts[r] = counts8(total[r][0], total[r][1]);
  store_transformed<R>(o, i0, j0, cols, counts);
}

// K too long for a group of MR rows in the buffer (over kSplitWords / (2 * MR) = 512 words,
// 32768 bits: no layer of the networks we run): rows MR at a time, K in buffer-sized pieces,
// split again for each panel.
template <size_t R>
void long_k_tile(const BgemmLhs& a, const uint64_t* panel, const BgemmOutput& o, size_t i0, size_t j0,
                 size_t cols, uint64_t* buf) {
  constexpr size_t kPiece = kSplitWords / (2 * MR);
  __m256i total[R][2] = {};  // set by the first piece; zeros quiet -Wmaybe-uninitialized (rare path)
  split_rows(a, i0, R, 0, kPiece, buf);  // k_words > kPiece here
  accumulate<R>(buf, panel, kPiece, true, total);
  for (size_t k0 = kPiece; k0 < a.k_words; k0 += kPiece) {
    const size_t kw = std::min(kPiece, a.k_words - k0);
    split_rows(a, i0, R, k0, kw, buf);
    accumulate<R>(buf, panel + k0 * 2 * NR, kw, false, total);
  }
  __m256i counts[R];
  for (size_t r = 0; r < R; ++r) counts[r] = counts8(total[r][0], total[r][1]);
  store_transformed<R>(o, i0, j0, cols, counts);
}

}  // namespace

IRN_BGEMM_KERNEL(irn_bgemm_f32_ukernel_4x8__avx2) {
  const size_t k_words = a.k_words, panel_words = 2 * NR * k_words;
  alignas(64) uint64_t buf[kSplitWords];
  const size_t group_words = 2 * MR * k_words;
  if (group_words > kSplitWords) {
    for (size_t j0 = 0; j0 < n; j0 += NR) {
      const uint64_t* panel = packed_b + (j0 / NR) * panel_words;
      const size_t cols = std::min(NR, n - j0);
      size_t i = 0;
      for (; i + MR <= m; i += MR) long_k_tile<MR>(a, panel, out, i, j0, cols, buf);
      for (; i < m; ++i) long_k_tile<1>(a, panel, out, i, j0, cols, buf);
    }
    return;
  }
  // Rows in chunks that fit the buffer (all of a 64-row block up to K = 32 words), split once;
  // then every panel runs over the chunk, its B words staying in L1 across the chunk's tiles.
  const size_t chunk = kSplitWords / group_words * MR;
  for (size_t i0 = 0; i0 < m; i0 += chunk) {
    const size_t rows = std::min(chunk, m - i0), grouped = rows / MR * MR;
    split_rows(a, i0, rows, 0, k_words, buf);
    for (size_t j0 = 0; j0 < n; j0 += NR) {
      const uint64_t* panel = packed_b + (j0 / NR) * panel_words;
      const size_t cols = std::min(NR, n - j0);
      for (size_t r = 0; r < grouped; r += MR) tile<MR>(buf + r * 2 * k_words, panel, k_words, out, i0 + r, j0, cols);
      for (size_t r = grouped; r < rows; ++r) tile<1>(buf + r * 2 * k_words, panel, k_words, out, i0 + r, j0, cols);
    }
  }
}

}  // namespace irnet
