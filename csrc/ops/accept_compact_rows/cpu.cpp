// CPU driver of accept_compact_rows, in two calls so that Python can size the
// outputs between them (exactly `count` rows, or full capacity):
//
//   decide  parallel over fixed chunks of kRowsChunk rows (dynamic schedule):
//           Philox + decision for every row of the chunk (vectorised), then
//           the chunk's accepted rows as a list of uint16 in-chunk indices
//           (branch-free) and its count; then one thread takes the exclusive
//           prefix sum of the chunk counts (a few hundred numbers) and writes
//           the total to count[0].
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

#include "parallel.h"
#include "philox_lanes.h"
#include "ops/accept_compact_rows/core.h"
#include "ops/accept_compact_rows/api.h"

namespace rsfast::cpu::RSFAST_CPU_ISA {
namespace {

static_assert(kRowsChunk % kLanes == 0, "chunks hold whole Philox lane groups");

// Decide rows [begin, begin + n) (n <= kRowsChunk, begin a multiple of
// kRowsChunk so the high word of the row index is constant); write the
// in-chunk indices of the accepted rows to idx; return their number.
template <typename T>
int64_t decide_chunk(const T* __restrict lr, T log_M, uint32_t k0, uint32_t k1, uint32_t offset, int64_t begin,
                     int64_t n, uint16_t* __restrict idx) {
  alignas(64) uint8_t flags[kRowsChunk];
  const uint32_t hi = (uint32_t)((uint64_t)begin >> 32), lo0 = (uint32_t)begin;
  lr += begin;
  for (int64_t g = 0; g < n; g += kLanes) {
    alignas(32) uint32_t w[4][kLanes];
    philox_lanes(k0, k1, lo0 + (uint32_t)g, hi, offset, 0, w);
    const int64_t lim = std::min<int64_t>(kLanes, n - g);
    if (lim == kLanes) {
#pragma omp simd
      for (int l = 0; l < (int)kLanes; ++l)
        flags[g + l] = (uint8_t)accept_row<T>(lr[g + l], log_M, U32x4{{w[0][l], w[1][l], 0u, 0u}});
    } else {
      for (int64_t l = 0; l < lim; ++l)
        flags[g + l] = (uint8_t)accept_row<T>(lr[g + l], log_M, U32x4{{w[0][l], w[1][l], 0u, 0u}});
    }
  }
  // Branch-free stable compaction of the indices: idx[k] is written for every
  // row and kept only when the row is accepted (k <= j < kRowsChunk).
  int64_t k = 0;
  for (int64_t j = 0; j < n; ++j) {
    idx[k] = (uint16_t)j;
    k += flags[j];
  }
  return k;
}

template <typename T>
void decide(const CompactRowsArgs& a) {
  const T* lr = static_cast<const T*>(a.log_ratio);
  const T log_M = a.log_M_ptr != nullptr ? *static_cast<const T*>(a.log_M_ptr) : (T)a.log_M;
  const RowsScratch s = rows_scratch(a.scratch, a.m);
  const int64_t nchunks = rows_chunks(a.m);
  const uint32_t k0 = (uint32_t)a.seed, k1 = (uint32_t)(a.seed >> 32);
  const int nt = threads_for(a.m);
#pragma omp parallel for num_threads(nt) if (nt > 1) schedule(dynamic, 4)
  for (int64_t c = 0; c < nchunks; ++c) {
    const int64_t begin = c * kRowsChunk;
    const int64_t n = std::min(kRowsChunk, a.m - begin);
    s.chunk_offsets[c + 1] = decide_chunk<T>(lr, log_M, k0, k1, a.offset, begin, n, s.idx + begin);
  }
  int64_t total = 0;
  for (int64_t c = 0; c < nchunks; ++c) {
    const int64_t n = s.chunk_offsets[c + 1];
    s.chunk_offsets[c] = total;
    total += n;
  }
  s.chunk_offsets[nchunks] = total;
  a.count[0] = total;
}

// dst[k] = src[idx[k]] for k < n, rows of RB bytes (RB = 0: rb bytes).
template <int64_t RB>
void gather(const uint8_t* __restrict src, uint8_t* __restrict dst, const uint16_t* __restrict idx, int64_t n,
            int64_t rb) {
  const int64_t bytes = RB > 0 ? RB : rb;
  for (int64_t k = 0; k < n; ++k) std::memcpy(dst + k * bytes, src + (int64_t)idx[k] * bytes, RB > 0 ? RB : bytes);
}

void gather_dispatch(const uint8_t* src, uint8_t* dst, const uint16_t* idx, int64_t n, int64_t rb) {
  switch (rb) {
    case 1: return gather<1>(src, dst, idx, n, rb);
    case 2: return gather<2>(src, dst, idx, n, rb);
    case 4: return gather<4>(src, dst, idx, n, rb);
    case 8: return gather<8>(src, dst, idx, n, rb);
    case 12: return gather<12>(src, dst, idx, n, rb);
    case 16: return gather<16>(src, dst, idx, n, rb);
    case 24: return gather<24>(src, dst, idx, n, rb);
    case 32: return gather<32>(src, dst, idx, n, rb);
    case 48: return gather<48>(src, dst, idx, n, rb);
    case 64: return gather<64>(src, dst, idx, n, rb);
    case 128: return gather<128>(src, dst, idx, n, rb);
    default: return gather<0>(src, dst, idx, n, rb);
  }
}

}  // namespace

int64_t accept_compact_rows_scratch_bytes(int64_t m) { return rows_scratch_bytes(m); }

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
  const RowsScratch s = rows_scratch(a.scratch, a.m);
  const int64_t nchunks = rows_chunks(a.m);
  const int64_t count = s.chunk_offsets[nchunks];
  const int nt = threads_for(a.m);
  for (int i = 0; i < a.ntensors; ++i)
    if (a.row_bytes[i] > 0) advise_huge_pages(a.dst[i], a.capacity * a.row_bytes[i]);
#pragma omp parallel for num_threads(nt) if (nt > 1) schedule(dynamic, 4)
  for (int64_t c = 0; c < nchunks; ++c) {
    const int64_t begin = c * kRowsChunk;
    const int64_t pos = s.chunk_offsets[c];
    // Never past the capacity (the Python side always gives room for all).
    const int64_t n = std::max<int64_t>(0, std::min(s.chunk_offsets[c + 1], a.capacity) - pos);
    // This chunk's share of the tail: output rows [lo, hi) past the last
    // accepted row; chunk ranges are disjoint and cover [count, capacity).
    const int64_t lo = std::max(count, begin);
    const int64_t hi = std::min(a.capacity, c + 1 == nchunks ? a.capacity : begin + kRowsChunk);
    for (int i = 0; i < a.ntensors; ++i) {
      const int64_t rb = a.row_bytes[i];
      if (rb <= 0) continue;
      uint8_t* dst = static_cast<uint8_t*>(a.dst[i]);
      if (n > 0)
        gather_dispatch(static_cast<const uint8_t*>(a.src[i]) + begin * rb, dst + pos * rb, s.idx + begin, n, rb);
      if (a.zero_tail && hi > lo) std::memset(dst + lo * rb, 0, (size_t)((hi - lo) * rb));
    }
  }
}

}  // namespace rsfast::cpu::RSFAST_CPU_ISA
