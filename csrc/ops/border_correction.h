// Zero-padding corrections of a binary convolution, sized by the kernel, not the map.
//
// Padded taps are packed as +1, so an output pixel whose window leaves the input gets, per
// output channel, the weight sum of its padded taps added to its dot; the epilogue takes it
// back out. Which taps are padded depends only on the window's valid rows [ylo, yhi) and valid
// columns [xlo, xhi) of the kernel. Along one axis, those ranges differ only where the window
// crosses a border: at most 2k + 3 distinct ranges for a kernel of size k however long the
// axis is (interior, fully outside, and one per partial overlap on either side). The table
// holds one correction vector per (row range, column range) pair: (2kh+3)(2kw+3) x Cout at
// most, a small multiple of the weights, and a pixel finds its vector by two binary searches.
#pragma once
#include <algorithm>
#include <cstdint>
#include <utility>
#include <vector>

namespace irnet {

// The valid kernel positions of windows along one axis: window o covers input positions
// [o * stride - pad, ... + k), of which [lo, hi) (kernel indices) fall inside [0, n).
class AxisRanges {
 public:
  using Range = std::pair<int64_t, int64_t>;
  AxisRanges(int64_t n, int64_t k, int64_t stride, int64_t pad, int64_t out)
      : n_(n), k_(k), stride_(stride), pad_(pad) {
    // Ranges are monotone in the window's start, so every distinct one is met at the ends or
    // where the start is within k of a border: O(k / stride) windows, never the whole axis.
    auto add_windows = [&](int64_t first_start, int64_t last_start) {
      const int64_t o0 = std::max<int64_t>(0, ceil_div(first_start + pad_, stride_));
      const int64_t o1 = std::min<int64_t>(out - 1, floor_div(last_start + pad_, stride_));
      for (int64_t o = o0; o <= o1; ++o) ranges_.push_back(range(o));
    };
    ranges_.push_back({0, k_});  // inside (rows inside meet border columns)
    ranges_.push_back(range(0));
    ranges_.push_back(range(out - 1));
    add_windows(-k_, 0);
    add_windows(n_ - k_, n_);
    std::sort(ranges_.begin(), ranges_.end());
    ranges_.erase(std::unique(ranges_.begin(), ranges_.end()), ranges_.end());
    full_index_ = size_t(std::lower_bound(ranges_.begin(), ranges_.end(), Range{0, k_}) - ranges_.begin());
    // Windows inside: start >= 0 and start + k <= n (an empty interval when none is).
    inside_begin_ = ceil_div(pad_, stride_);
    inside_end_ = std::max(inside_begin_, std::min<int64_t>(out, floor_div(n_ - k_ + pad_, stride_) + 1));
  }

  // Kernel indices of window o inside the input; an empty range is (0, 0).
  Range range(int64_t o) const {
    const int64_t start = o * stride_ - pad_;
    const int64_t lo = std::clamp<int64_t>(-start, 0, k_), hi = std::clamp<int64_t>(n_ - start, 0, k_);
    return lo < hi ? Range{lo, hi} : Range{0, 0};
  }
  bool inside(int64_t o) const { return o >= inside_begin_ && o < inside_end_; }
  size_t index(int64_t o) const {
    return size_t(std::lower_bound(ranges_.begin(), ranges_.end(), range(o)) - ranges_.begin());
  }
  size_t full_index() const { return full_index_; }  // of the range of a window inside
  const std::vector<Range>& ranges() const { return ranges_; }

 private:
  static int64_t floor_div(int64_t a, int64_t b) { return a / b - ((a % b != 0) && ((a < 0) != (b < 0))); }
  static int64_t ceil_div(int64_t a, int64_t b) { return -floor_div(-a, b); }
  int64_t n_, k_, stride_, pad_;
  std::vector<Range> ranges_;
  size_t full_index_ = 0;
  int64_t inside_begin_ = 0, inside_end_ = 0;  // the windows inside: [begin, end)
};

class BorderCorrection {
 public:
  BorderCorrection() = default;
  // tap_sum[o * kh * kw + ky * kw + kx]: the weight sum that tap adds when packed as +1.
  BorderCorrection(const AxisRanges& rows, const AxisRanges& cols, int64_t kh, int64_t kw,
                   int64_t cout, const std::vector<int32_t>& tap_sum)
      : rows_(rows), cols_(cols), cout_(cout) {
    // Per channel, 2-D prefix sums of tap_sum: any rectangle of taps in O(1).
    const int64_t pw = kw + 1, plane = (kh + 1) * pw;
    std::vector<int32_t> prefix(size_t(cout * plane), 0);
    for (int64_t o = 0; o < cout; ++o) {
      int32_t* p = prefix.data() + o * plane;
      for (int64_t ky = 0; ky < kh; ++ky)
        for (int64_t kx = 0; kx < kw; ++kx)
          p[(ky + 1) * pw + kx + 1] = tap_sum[size_t((o * kh + ky) * kw + kx)] + p[ky * pw + kx + 1] +
                                      p[(ky + 1) * pw + kx] - p[ky * pw + kx];
    }
    const auto& ry = rows.ranges();
    const auto& rx = cols.ranges();
    table_.assign(ry.size() * rx.size() * size_t(cout), 0);
    for (size_t i = 0; i < ry.size(); ++i)
      for (size_t j = 0; j < rx.size(); ++j) {
        int32_t* c = table_.data() + (i * rx.size() + j) * size_t(cout);
        const auto [y0, y1] = ry[i];
        const auto [x0, x1] = rx[j];
        for (int64_t o = 0; o < cout; ++o) {
          const int32_t* p = prefix.data() + o * plane;
          const int32_t all = p[kh * pw + kw];
          const int32_t valid = p[y1 * pw + x1] - p[y0 * pw + x1] - p[y1 * pw + x0] + p[y0 * pw + x0];
          c[o] = all - valid;  // the padded taps' sum
        }
      }
  }

  // The correction vector [Cout] of output pixel (oy, ox), or null when its window is inside.
  const int32_t* at(int64_t oy, int64_t ox) const {
    if (rows_.inside(oy) && cols_.inside(ox)) return nullptr;
    return table_.data() + (rows_.index(oy) * cols_.ranges().size() + cols_.index(ox)) * size_t(cout_);
  }
  // at() for `count` consecutive pixels of a map `width` wide from pixel p0, into dst: one
  // division per call, and a search only for pixels on a border.
  void fill(int64_t p0, int64_t count, int64_t width, const int32_t** dst) const {
    const size_t row_stride = cols_.ranges().size() * size_t(cout_);
    int64_t oy = p0 / width, ox = p0 % width;
    for (int64_t i = 0; i < count; ++oy, ox = 0) {
      const bool row_inside = rows_.inside(oy);
      const int32_t* row = table_.data() + (row_inside ? rows_.full_index() : rows_.index(oy)) * row_stride;
      const int64_t end = std::min(width, ox + (count - i));
      for (; ox < end; ++ox, ++i)
        dst[i] = row_inside && cols_.inside(ox) ? nullptr : row + cols_.index(ox) * size_t(cout_);
    }
  }
  size_t table_size() const { return table_.size(); }

 private:
  AxisRanges rows_{1, 1, 1, 0, 1}, cols_{1, 1, 1, 0, 1};
  int64_t cout_ = 0;
  std::vector<int32_t> table_;  // [row range][column range][Cout]
};

}  // namespace irnet
