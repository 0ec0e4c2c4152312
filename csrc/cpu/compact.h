// CPU side of the compaction core (csrc/ops/accept_compact/compaction.h),
// shared by the CPU drivers of accept_compact and accept_compact_rows: the
// Philox words of a chunk of rows kLanes at a time, accept flags to in-chunk
// index lists, the exclusive prefix of the chunk counts, and row copies
// specialised on the row size. Compiled into each ISA build's own namespace
// (the same source, different code for baseline and AVX2).
#pragma once
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "parallel.h"
#include "philox_lanes.h"
#include "ops/accept_compact/compaction.h"

namespace rsfast::cpu::RSFAST_CPU_ISA {

static_assert(kCompactChunk % kLanes == 0, "chunks hold whole Philox lane groups");

// For rows [begin, begin + n) with a constant high index word (begin a
// multiple of the chunk size, n within one chunk), call
// f(g, lim, words) for every group of kLanes rows: words[k][l] = word k of
// Philox block (0, begin + g + l, offset) for l < lim = min(kLanes, n - g).
template <typename F>
inline void for_each_lane_group(uint32_t k0, uint32_t k1, uint32_t offset, int64_t begin, int64_t n, F&& f) {
  const uint32_t hi = (uint32_t)((uint64_t)begin >> 32), lo0 = (uint32_t)begin;
  for (int64_t g = 0; g < n; g += kLanes) {
    alignas(32) uint32_t w[4][kLanes];
    philox_lanes(k0, k1, lo0 + (uint32_t)g, hi, offset, 0, w);
    f(g, std::min<int64_t>(kLanes, n - g), w);
  }
}

// f(l) for the lanes l < lim of a lane group: under omp simd with a constant
// trip count when the group is full (no remainder loop), one by one at the
// end of the rows.
template <typename F>
inline void for_each_lane(int64_t lim, F&& f) {
  if (lim == kLanes) {
#pragma omp simd
    for (int l = 0; l < (int)kLanes; ++l) f(l);
  } else {
    for (int l = 0; l < (int)lim; ++l) f(l);
  }
}

// idx[k] = position of the k-th set flag among flags[0, n) (n <= 65536);
// returns the number of set flags. Branch-free and stable: idx[k] is written
// for every row and kept only when the row's flag (0 or 1) is set, so idx
// needs room for n entries.
inline int64_t list_flags(const uint8_t* __restrict flags, int64_t n, uint16_t* __restrict idx) {
  int64_t k = 0;
  for (int64_t j = 0; j < n; ++j) {
    idx[k] = (uint16_t)j;
    k += flags[j];
  }
  return k;
}

// offsets[c + 1] holds chunk c's count on entry (c < nchunks); on exit
// offsets[c] = base + counts of the chunks before c and offsets[nchunks] =
// base + all counts, which is returned.
inline int64_t exclusive_prefix(int64_t* offsets, int64_t nchunks, int64_t base) {
  int64_t total = base;
  for (int64_t c = 0; c < nchunks; ++c) {
    const int64_t n = offsets[c + 1];
    offsets[c] = total;
    total += n;
  }
  offsets[nchunks] = total;
  return total;
}

// f(std::integral_constant<int64_t, RB>{}) with RB = rb for the common row
// sizes (copies of a compile-time size become plain loads and stores), RB = 0
// for any other size (the callee then copies rb bytes).
template <typename F>
inline auto with_row_bytes(int64_t rb, F&& f) {
  switch (rb) {
    case 1: return f(std::integral_constant<int64_t, 1>{});
    case 2: return f(std::integral_constant<int64_t, 2>{});
    case 4: return f(std::integral_constant<int64_t, 4>{});
    case 8: return f(std::integral_constant<int64_t, 8>{});
    case 12: return f(std::integral_constant<int64_t, 12>{});
    case 16: return f(std::integral_constant<int64_t, 16>{});
    case 24: return f(std::integral_constant<int64_t, 24>{});
    case 32: return f(std::integral_constant<int64_t, 32>{});
    case 48: return f(std::integral_constant<int64_t, 48>{});
    case 64: return f(std::integral_constant<int64_t, 64>{});
    case 128: return f(std::integral_constant<int64_t, 128>{});
    default: return f(std::integral_constant<int64_t, 0>{});
  }
}

// dst row k = src row idx[k] for k < n, rows of RB bytes (RB = 0: rb bytes).
template <int64_t RB>
inline void gather_rows_rb(const uint8_t* __restrict src, uint8_t* __restrict dst, const uint16_t* __restrict idx,
                           int64_t n, int64_t rb) {
  const int64_t bytes = RB > 0 ? RB : rb;
  for (int64_t k = 0; k < n; ++k) std::memcpy(dst + k * bytes, src + (int64_t)idx[k] * bytes, RB > 0 ? RB : bytes);
}

// dst row k = src row idx[k] for k < n, rows of rb bytes.
inline void gather_rows(const uint8_t* src, uint8_t* dst, const uint16_t* idx, int64_t n, int64_t rb) {
  with_row_bytes(rb, [&](auto rbc) { gather_rows_rb<decltype(rbc)::value>(src, dst, idx, n, rb); });
}

}  // namespace rsfast::cpu::RSFAST_CPU_ISA
