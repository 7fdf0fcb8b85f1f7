// OpenMP regions for ops.
#pragma once

namespace irnet {

// Runs body() once per thread of a parallel region of `threads` threads; body splits its work
// with orphaned `#pragma omp for` loops, which also work outside any region (one thread runs
// every iteration). One thread calls body directly: a libgomp team of one still makes futex
// system calls at its start and at every barrier, microseconds per op on small layers.
template <class Body>
void parallel_region(int threads, const Body& body) {
  if (threads <= 1) {
    body();
    return;
  }
#pragma omp parallel num_threads(threads)
  body();
}

}  // namespace irnet
