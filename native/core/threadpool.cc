// Thread pool implementation (see threadpool.h). Workers sleep on a condition variable and wake on a
// generation counter; each region hands out a shared std::function and counts completions.
//
// Before sleeping, a worker that has just finished a region (and a caller waiting for its helpers)
// spins for a short while (SpinMicros) on atomic copies of the counters. A training step runs about
// a thousand regions back to back, separated by microseconds of JavaScript; waking a sleeping thread
// through the kernel costs tens of microseconds per region on a virtual machine (70 us measured),
// and ResNet-18's step lost a fifth of its time that way. The spin is bounded, so an idle pool
// still sleeps within a fraction of a millisecond. SSL_INV_SPIN_US sets the bound (0: never spin).
#include "core/threadpool.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

namespace sslinv {

namespace {
thread_local bool t_in_worker = false;

int64_t SpinMicros() {
  static const int64_t us = [] {
    int64_t v = 200;
    if (const char* env = std::getenv("SSL_INV_SPIN_US")) v = std::max(0, std::atoi(env));
    return v;
  }();
  return us;
}

inline void CpuRelax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

// Spins until done() or SpinMicros() have passed; returns done().
template <typename Done>
bool SpinUntil(const Done& done) {
  const int64_t limit = SpinMicros();
  if (limit == 0) return done();
  const auto start = std::chrono::steady_clock::now();
  for (;;) {
    for (int i = 0; i < 64; ++i) {
      if (done()) return true;
      CpuRelax();
    }
    if (std::chrono::steady_clock::now() - start > std::chrono::microseconds(limit)) return done();
  }
}
}  // namespace

struct ThreadPool::Impl {
  std::mutex region_mutex;  // one region at a time
  std::mutex mu;
  std::condition_variable wake;
  std::condition_variable done;
  std::vector<std::thread> workers;
  const std::function<void(int, int)>* fn = nullptr;
  int active = 0;       // threads taking part in the current region, caller included
  int remaining = 0;    // helpers still running the current region
  // generation and remaining change under mu; the atomics mirror them for the spinning waits.
  uint64_t generation = 0;
  std::atomic<uint64_t> generation_published{0};
  std::atomic<int> remaining_spin{0};
  bool stop = false;
  int num_threads = 1;
  // The first exception thrown by any thread of the current region; rethrown on the caller's thread
  // (an exception escaping a worker thread would otherwise terminate the whole process).
  std::exception_ptr error;

  void EnsureWorkers(int helpers) {
    while (static_cast<int>(workers.size()) < helpers) {
      int id = static_cast<int>(workers.size()) + 1;
      workers.emplace_back([this, id] { WorkerLoop(id); });
    }
  }

  void WorkerLoop(int id) {
    t_in_worker = true;
    uint64_t seen = 0;
    for (;;) {
      const std::function<void(int, int)>* f;
      int n;
      SpinUntil([&] { return generation_published.load(std::memory_order_acquire) != seen; });
      {
        std::unique_lock<std::mutex> lock(mu);
        wake.wait(lock, [&] { return stop || generation != seen; });
        if (stop) return;
        seen = generation;
        if (id >= active) continue;  // not needed in this region
        f = fn;
        n = active;
      }
      std::exception_ptr caught;
      try {
        (*f)(id, n);
      } catch (...) {
        caught = std::current_exception();
      }
      {
        std::lock_guard<std::mutex> lock(mu);
        if (caught && !error) error = caught;
        remaining_spin.fetch_sub(1, std::memory_order_release);
        if (--remaining == 0) done.notify_one();
      }
    }
  }
};

ThreadPool& ThreadPool::Get() {
  static ThreadPool* pool = new ThreadPool();  // never destroyed: workers may outlive static teardown
  return *pool;
}

ThreadPool::ThreadPool() : impl_(new Impl) {
  int n = static_cast<int>(std::thread::hardware_concurrency());
  if (const char* env = std::getenv("SSL_INV_NUM_THREADS")) {
    int v = std::atoi(env);
    if (v > 0) n = v;
  }
  impl_->num_threads = std::max(1, n);
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    impl_->stop = true;
  }
  impl_->wake.notify_all();
  for (auto& t : impl_->workers) t.join();
  delete impl_;
}

int ThreadPool::num_threads() const { return impl_->num_threads; }

void ThreadPool::SetNumThreads(int n) {
  std::lock_guard<std::mutex> lock(impl_->region_mutex);
  impl_->num_threads = std::max(1, n);
}

void ThreadPool::Run(int max_threads, const std::function<void(int, int)>& fn) {
  int n = std::min(std::max(1, max_threads), impl_->num_threads);
  if (n == 1 || t_in_worker) {
    fn(0, 1);
    return;
  }
  std::lock_guard<std::mutex> region(impl_->region_mutex);
  impl_->EnsureWorkers(n - 1);
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    impl_->fn = &fn;
    impl_->active = n;
    impl_->remaining = n - 1;
    impl_->remaining_spin.store(n - 1, std::memory_order_relaxed);
    ++impl_->generation;
    impl_->generation_published.store(impl_->generation, std::memory_order_release);
  }
  impl_->wake.notify_all();
  t_in_worker = true;
  std::exception_ptr mine;
  try {
    fn(0, n);
  } catch (...) {
    mine = std::current_exception();
  }
  t_in_worker = false;
  std::exception_ptr theirs;
  SpinUntil([&] { return impl_->remaining_spin.load(std::memory_order_acquire) == 0; });
  {
    std::unique_lock<std::mutex> lock(impl_->mu);
    impl_->done.wait(lock, [&] { return impl_->remaining == 0; });
    impl_->fn = nullptr;
    theirs = impl_->error;
    impl_->error = nullptr;
  }
  if (mine) std::rethrow_exception(mine);
  if (theirs) std::rethrow_exception(theirs);
}

void ThreadPool::ParallelFor(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  grain = std::max<int64_t>(1, grain);
  int64_t max_chunks = (n + grain - 1) / grain;
  int threads = static_cast<int>(std::min<int64_t>(max_chunks, num_threads()));
  Run(threads, [&](int tid, int nt) {
    int64_t begin = n * tid / nt;
    int64_t end = n * (tid + 1) / nt;
    if (begin < end) fn(begin, end);
  });
}

}  // namespace sslinv
