// A small persistent thread pool for the CPU kernels.
//
// Kernels call ParallelFor / Run; the calling thread takes part as worker 0, so a pool of n threads
// keeps n-1 helpers asleep between calls. One parallel region runs at a time (a mutex serialises
// callers); a region started from inside a worker runs serially on that worker, so kernels may nest
// without deadlock. The thread count defaults to the number of cores, or SSL_INV_NUM_THREADS.
// An exception thrown inside a region, on any thread, is rethrown on the calling thread once every
// thread has finished (the bindings turn it into a JS error); it never terminates the process.
#pragma once
#include <cstdint>
#include <functional>

namespace sslinv {

class ThreadPool {
 public:
  static ThreadPool& Get();

  int num_threads() const;
  void SetNumThreads(int n);  // n >= 1; takes effect for the next region

  // Runs fn(tid, nthreads) on nthreads = min(max_threads, num_threads()) threads and waits.
  void Run(int max_threads, const std::function<void(int tid, int nthreads)>& fn);

  // Splits [0, n) into contiguous chunks of at least `grain` items, one per thread, and waits.
  void ParallelFor(int64_t n, int64_t grain, const std::function<void(int64_t begin, int64_t end)>& fn);

 private:
  ThreadPool();
  ~ThreadPool();
  struct Impl;
  Impl* impl_;
};

}  // namespace sslinv
