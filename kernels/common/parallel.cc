#include "common/parallel.h"

#include <sched.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

namespace phoenix {

int HardwareThreads() {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) == 0) return std::max(1, CPU_COUNT(&set));
  return std::max(1u, std::thread::hardware_concurrency());
}

namespace {

inline void CpuRelax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

// Spins until pred() or about `micros` microseconds have passed; returns pred().
template <typename Pred>
bool SpinFor(int micros, Pred pred) {
  const auto end = std::chrono::steady_clock::now() + std::chrono::microseconds(micros);
  for (;;) {
    for (int i = 0; i < 64; ++i) {
      if (pred()) return true;
      CpuRelax();
    }
    if (std::chrono::steady_clock::now() >= end) return pred();
  }
}

// One job runs on the pool at a time. A caller that finds the pool busy (another thread's job,
// e.g. two sessions running at once) does its whole range itself instead of waiting, so
// concurrent callers never block each other and a nested call cannot deadlock.
// Workers spin briefly after a job (kernels of a plan come back to back) before sleeping on a
// condition variable; the caller spins briefly for the last worker in the same way.
class Pool {
 public:
  static Pool& Get() {
    static Pool* pool = new Pool();  // never destroyed: safe at process exit
    return *pool;
  }

  void Run(int64_t n, int threads, const std::function<void(int64_t, int64_t)>& fn) {
    std::unique_lock<std::mutex> job_lock(job_mutex_, std::try_to_lock);
    if (!job_lock.owns_lock()) {
      fn(0, n);
      return;
    }
    EnsureWorkers(threads - 1);
    const int64_t chunk = (n + threads - 1) / threads;
    {
      std::lock_guard<std::mutex> lk(mu_);
      fn_ = &fn;
      n_ = n;
      chunk_ = chunk;
      active_ = threads - 1;
      pending_.store(threads - 1, std::memory_order_relaxed);
      generation_.fetch_add(1, std::memory_order_release);
    }
    cv_.notify_all();
    fn(0, std::min(n, chunk));  // the caller takes chunk 0
    if (!SpinFor(kSpinMicros, [&] { return pending_.load(std::memory_order_acquire) == 0; })) {
      std::unique_lock<std::mutex> lk(mu_);
      done_cv_.wait(lk, [&] { return pending_.load(std::memory_order_acquire) == 0; });
    }
    std::lock_guard<std::mutex> lk(mu_);
    fn_ = nullptr;
  }

 private:
  static constexpr int kSpinMicros = 50;

  void EnsureWorkers(int count) {
    while (static_cast<int>(workers_.size()) < count) {
      int index = static_cast<int>(workers_.size()) + 1;
      workers_.emplace_back([this, index] { Loop(index); });
      workers_.back().detach();
    }
  }

  void Loop(int index) {
    uint64_t seen = 0;
    for (;;) {
      const std::function<void(int64_t, int64_t)>* fn = nullptr;
      int64_t begin = 0, end = 0;
      SpinFor(kSpinMicros, [&] { return generation_.load(std::memory_order_acquire) != seen; });
      {
        // Snapshot the job under mu_: the poster writes all fields and the generation under it.
        std::unique_lock<std::mutex> lk(mu_);
        cv_.wait(lk, [&] { return generation_.load(std::memory_order_relaxed) != seen; });
        seen = generation_.load(std::memory_order_relaxed);
        if (index > active_) continue;  // not part of this job
        fn = fn_;
        begin = std::min(n_, chunk_ * index);
        end = std::min(n_, begin + chunk_);
      }
      if (begin < end) (*fn)(begin, end);
      if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
        std::lock_guard<std::mutex> lk(mu_);  // pairs with the caller's predicate check
        done_cv_.notify_one();
      }
    }
  }

  std::mutex job_mutex_, mu_;
  std::condition_variable cv_, done_cv_;
  std::vector<std::thread> workers_;
  const std::function<void(int64_t, int64_t)>* fn_ = nullptr;
  int64_t n_ = 0, chunk_ = 0;
  int active_ = 0;
  std::atomic<int> pending_{0};
  std::atomic<uint64_t> generation_{0};
};

}  // namespace

void ParallelFor(int64_t n, int num_threads, const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  int threads = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(num_threads, n)));
  if (threads == 1) {
    fn(0, n);
    return;
  }
  Pool::Get().Run(n, threads, fn);
}

}  // namespace phoenix
