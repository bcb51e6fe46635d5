// ParallelFor over [0, n) on a small persistent pool shared by all kernels of the process.
// Chunks are contiguous so each worker streams through its own rows.
#pragma once

#include <cstdint>
#include <functional>

namespace phoenix {

// Calls fn(begin, end) on up to num_threads workers (the caller is one of them).
void ParallelFor(int64_t n, int num_threads, const std::function<void(int64_t, int64_t)>& fn);

// Number of hardware threads this process may use (sched affinity aware).
int HardwareThreads();

}  // namespace phoenix
