// OpenMP regions for ops.
#pragma once
#include <atomic>
#include <exception>

namespace irnet {

// Runs body() once per thread of a parallel region of `threads` threads; body splits its work
// with orphaned `#pragma omp for` loops, which also work outside any region (one thread runs
// every iteration). One thread calls body directly: a libgomp team of one still makes futex
// system calls at its start and at every barrier, microseconds per op on small layers.
//
// reserve() runs first on every thread: it sizes that thread's scratch, the only place an op
// allocates inside a region. An exception must not leave an OpenMP region (std::terminate) nor
// skip a worksharing loop the other threads wait in (a hang), so a failure there (bad_alloc)
// is caught, every thread agrees on it at a barrier and skips body, and it is rethrown here.
template <class Reserve, class Body>
void parallel_region(int threads, const Reserve& reserve, const Body& body) {
  if (threads <= 1) {
    reserve();
    body();
    return;
  }
  std::exception_ptr error;
  std::atomic<bool> failed{false};
#pragma omp parallel num_threads(threads)
  {
    try {
      reserve();
    } catch (...) {
#pragma omp critical(irnet_parallel_error)
      if (!error) error = std::current_exception();
      failed = true;
    }
#pragma omp barrier
    if (!failed) body();
  }
  if (error) std::rethrow_exception(error);
}

// A region whose body allocates nothing (and throws nothing): no barrier before the body, since
// there is no failure to agree on. Ops that need per-thread memory can size it for all
// threads before the region (one slice per omp_get_thread_num) and use this form.
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
