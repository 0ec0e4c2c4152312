// OpenMP helpers for the CPU drivers. Work is split into fixed chunks of rows
// (multiples of kLanes), scheduled dynamically; every result is a function of
// the row index only, so the output never depends on the number of threads.
#pragma once
#include <algorithm>
#include <cstdint>
#ifdef _OPENMP
#include <omp.h>
#endif
#ifdef __linux__
#include <sys/mman.h>
#endif

// The CPU kernels are compiled once per instruction set (CMakeLists.txt:
// baseline, and AVX2 on x86-64) into rsfast::cpu::RSFAST_CPU_ISA;
// csrc/cpu/dispatch.cpp picks one at run time, so that one wheel is fast on
// new CPUs and still runs on old ones. Both give the same bits.
#ifndef RSFAST_CPU_ISA
#define RSFAST_CPU_ISA base
#endif

namespace rsfast::cpu {

constexpr int64_t kLanes = 16;
// Below this many rows a single thread is faster than waking the pool.
constexpr int64_t kParallelMinRows = 1 << 15;
constexpr int kMaxThreads = 256;

inline int threads_for(int64_t m) {
#ifdef _OPENMP
  if (m < kParallelMinRows) return 1;
  return std::max(1, std::min(kMaxThreads, omp_get_max_threads()));
#else
  (void)m;
  return 1;
#endif
}

// Calls f(lo, hi_word, count) on pieces of [begin, end) inside which the high
// 32 bits of the row index are constant and count < 2^31, so that SIMD lanes
// and counters stay 32 bits wide.
template <typename F>
inline void for_each_piece(int64_t begin, int64_t end, F&& f) {
  constexpr int64_t kPiece = int64_t(1) << 30;
  while (begin < end) {
    const int64_t limit = std::min(end, std::min(begin + kPiece, ((begin >> 32) + 1) << 32));
    f(begin, (uint32_t)((uint64_t)begin >> 32), (uint32_t)(limit - begin));
    begin = limit;
  }
}

// Ask the OS to back the 2 MiB-aligned interior of a large output buffer with
// transparent huge pages before the kernel first writes it. A fresh tensor of
// tens of MB (glibc serves it by mmap) otherwise costs one page fault per 4 KiB
// on first touch, which takes longer than the copy itself; with huge pages it
// is one fault per 2 MiB. Advice only: the memory stays torch's, contents and
// results are unchanged, errors (no THP, an old kernel) are ignored.
inline void advise_huge_pages(void* data, int64_t bytes) {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  constexpr uintptr_t kHuge = uintptr_t(1) << 21;
  if (bytes < int64_t(4 * kHuge)) return;
  const uintptr_t p = reinterpret_cast<uintptr_t>(data);
  const uintptr_t lo = (p + kHuge - 1) & ~(kHuge - 1), hi = (p + (uintptr_t)bytes) & ~(kHuge - 1);
  if (hi > lo) (void)madvise(reinterpret_cast<void*>(lo), hi - lo, MADV_HUGEPAGE);
#else
  (void)data;
  (void)bytes;
#endif
}

}  // namespace rsfast::cpu
