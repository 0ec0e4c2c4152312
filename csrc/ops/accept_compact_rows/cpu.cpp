// CPU driver of accept_compact_rows, in two calls so that Python can size the
// outputs between them (exactly `count` rows, or full capacity):
//
//   decide  parallel over the compaction core's chunks of kCompactChunk rows
//           (dynamic schedule): Philox + accept test for every row of the
//           chunk (vectorised), then the chunk's accepted rows as a list of
//           uint16 in-chunk indices and its count; then one thread takes the
//           exclusive prefix of the chunk counts (a few hundred numbers) and
//           writes the total to count[0].
//   gather  parallel over the same chunks: chunk c copies its accepted rows
//           of every tensor to output rows chunk_offsets[c] + k (stable row
//           order), with a row-size-specialised gather loop (no branch per
//           row, every thread writes its own output range), and zeroes its
//           share of the tail rows [count, capacity) when asked.
//
// Every byte written is a function of the row index only: the same output on
// any thread count.
#include <algorithm>
#include <cstring>

#include "compact.h"
#include "parallel.h"
#include "ops/accept_compact_rows/core.h"
#include "ops/accept_compact_rows/api.h"

namespace rsfast::cpu::RSFAST_CPU_ISA {
namespace {

// Decide rows [begin, begin + n) of one chunk; write the in-chunk indices of
// the accepted rows to idx; return their number.
template <typename T>
int64_t decide_chunk(const T* __restrict lr, T log_M, uint32_t k0, uint32_t k1, uint32_t offset, int64_t begin,
                     int64_t n, uint16_t* __restrict idx) {
  alignas(64) uint8_t flags[kCompactChunk];
  lr += begin;
  for_each_lane_group(k0, k1, offset, begin, n, [&](int64_t g, int64_t lim, const uint32_t (&w)[4][kLanes]) {
    for_each_lane(lim, [&](int l) {
      flags[g + l] = (uint8_t)accept_row<T>(lr[g + l], log_M, U32x4{{w[0][l], w[1][l], 0u, 0u}});
    });
  });
  return list_flags(flags, n, idx);
}

template <typename T>
void decide(const CompactRowsArgs& a) {
  const T* lr = static_cast<const T*>(a.log_ratio);
  const T log_M = a.log_M_ptr != nullptr ? *static_cast<const T*>(a.log_M_ptr) : (T)a.log_M;
  const CompactScratch s = compact_scratch(a.scratch, a.m);
  const int64_t nchunks = compact_chunks(a.m);
  const uint32_t k0 = (uint32_t)a.seed, k1 = (uint32_t)(a.seed >> 32);
  const int nt = threads_for(a.m);
#pragma omp parallel for num_threads(nt) if (nt > 1) schedule(dynamic, 4)
  for (int64_t c = 0; c < nchunks; ++c) {
    const int64_t begin = c * kCompactChunk;
    const int64_t n = std::min(kCompactChunk, a.m - begin);
    s.chunk_offsets[c + 1] = decide_chunk<T>(lr, log_M, k0, k1, a.offset, begin, n, s.idx + begin);
  }
  a.count[0] = exclusive_prefix(s.chunk_offsets, nchunks, 0);
}

}  // namespace

int64_t accept_compact_rows_scratch_bytes(int64_t m) { return compact_scratch_bytes(m); }

void accept_compact_rows_decide(const CompactRowsArgs& args) {
  if (args.m <= 0) {
    args.count[0] = 0;
    return;
  }
  if (args.dtype == kFloat32)
    decide<float>(args);
  else
    decide<double>(args);
}

void accept_compact_rows_gather(const GatherRowsArgs& a) {
  if (a.m <= 0) return;
  const CompactScratch s = compact_scratch(a.scratch, a.m);
  const int64_t nchunks = compact_chunks(a.m);
  const int64_t count = s.chunk_offsets[nchunks];
  const int nt = threads_for(a.m);
  for (int i = 0; i < a.ntensors; ++i)
    if (a.row_bytes[i] > 0) advise_huge_pages(a.dst[i], a.capacity * a.row_bytes[i]);
#pragma omp parallel for num_threads(nt) if (nt > 1) schedule(dynamic, 4)
  for (int64_t c = 0; c < nchunks; ++c) {
    const int64_t begin = c * kCompactChunk;
    const int64_t pos = s.chunk_offsets[c];
    // Never past the capacity (the Python side always gives room for all).
    const int64_t n = std::max<int64_t>(0, std::min(s.chunk_offsets[c + 1], a.capacity) - pos);
    // This chunk's share of the tail: output rows [lo, hi) past the last
    // accepted row; chunk ranges are disjoint and cover [count, capacity).
    const int64_t lo = std::max(count, begin);
    const int64_t hi = std::min(a.capacity, c + 1 == nchunks ? a.capacity : begin + kCompactChunk);
    for (int i = 0; i < a.ntensors; ++i) {
      const int64_t rb = a.row_bytes[i];
      if (rb <= 0) continue;
      uint8_t* dst = static_cast<uint8_t*>(a.dst[i]);
      if (n > 0) gather_rows(static_cast<const uint8_t*>(a.src[i]) + begin * rb, dst + pos * rb, s.idx + begin, n, rb);
      if (a.zero_tail && hi > lo) std::memset(dst + lo * rb, 0, (size_t)((hi - lo) * rb));
    }
  }
}

}  // namespace rsfast::cpu::RSFAST_CPU_ISA
