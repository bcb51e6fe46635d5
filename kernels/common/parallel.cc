#include "common/parallel.h"

#include <sched.h>

#include <algorithm>
#include <atomic>
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

// Workers sleep on a condition variable between jobs; one job runs at a time (jobs come
// from one plan walk, and the runtime serialises plan walks).
class Pool {
 public:
  static Pool& Get() {
    static Pool* pool = new Pool();  // never destroyed: safe at process exit
    return *pool;
  }

  void Run(int64_t n, int threads, const std::function<void(int64_t, int64_t)>& fn) {
    std::lock_guard<std::mutex> job_lock(job_mutex_);
    EnsureWorkers(threads - 1);
    const int64_t chunk = (n + threads - 1) / threads;
    {
      std::lock_guard<std::mutex> lk(mu_);
      fn_ = &fn;
      n_ = n;
      chunk_ = chunk;
      active_ = threads - 1;
      pending_ = threads - 1;
      ++generation_;
    }
    cv_.notify_all();
    fn(0, std::min(n, chunk));  // the caller takes chunk 0
    std::unique_lock<std::mutex> lk(mu_);
    done_cv_.wait(lk, [&] { return pending_ == 0; });
    fn_ = nullptr;
  }

 private:
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
      const std::function<void(int64_t, int64_t)>* fn;
      int64_t begin, end;
      {
        std::unique_lock<std::mutex> lk(mu_);
        cv_.wait(lk, [&] { return generation_ != seen; });
        seen = generation_;
        if (index > active_) continue;  // not part of this job
        fn = fn_;
        begin = std::min(n_, chunk_ * index);
        end = std::min(n_, begin + chunk_);
      }
      if (begin < end) (*fn)(begin, end);
      std::lock_guard<std::mutex> lk(mu_);
      if (--pending_ == 0) done_cv_.notify_one();
    }
  }

  std::mutex job_mutex_, mu_;
  std::condition_variable cv_, done_cv_;
  std::vector<std::thread> workers_;
  const std::function<void(int64_t, int64_t)>* fn_ = nullptr;
  int64_t n_ = 0, chunk_ = 0;
  int active_ = 0, pending_ = 0;
  uint64_t generation_ = 0;
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
