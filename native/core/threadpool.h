// A small persistent thread pool for the CPU kernels.
//
// Kernels call ParallelFor / Run; the calling thread takes part as worker 0, so a pool of n threads
// keeps n-1 helpers between calls: spinning for a short while after each region (back-to-back
// regions then start without a kernel wake-up; SSL_INV_SPIN_US, default 200 us, 0 = never), asleep
// after that. One parallel region runs at a time (a mutex serialises
// callers); a region started from inside a worker runs serially on that worker, so kernels may nest
// without deadlock. The thread count defaults to the number of cores, or SSL_INV_NUM_THREADS.
// An exception thrown inside a region, on any thread, is rethrown on the calling thread once every
// thread has finished (the bindings turn it into a JS error); it never terminates the process.
#pragma once
#include <algorithm>
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

// Runs fn(begin, end) over [0, n): on the pool when `parallel` and n exceeds one grain, else inline
// (kernels called from libuv workers pass parallel = false and run serially on their thread).
template <typename Fn>
void ForRange(bool parallel, int64_t n, int64_t grain, const Fn& fn) {
  if (n <= 0) return;
  if (!parallel || n <= grain) {
    fn(int64_t{0}, n);
    return;
  }
  ThreadPool::Get().ParallelFor(n, grain, [&](int64_t b, int64_t e) { fn(b, e); });
}

// Rows per parallel chunk so that a chunk holds about `target` units of work.
inline int64_t GrainFor(int64_t work_per_row, int64_t target) {
  return std::max<int64_t>(1, target / std::max<int64_t>(1, work_per_row));
}

}  // namespace sslinv
