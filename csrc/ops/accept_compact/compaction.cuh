// CUDA side of the compaction core (compaction.h), shared by the CUDA
// drivers of accept_compact and accept_compact_rows. A compaction is three
// launches on the caller's stream, with no host synchronisation:
//
//   K1 (the op's own decide kernel) one block per chunk of kCompactChunk
//      rows; thread t decides rows kItems * t .. kItems * t + kItems - 1 of
//      the chunk (blocked) and hands their accept bits to list_accepted,
//      which ranks them in row order (block scan) and writes the chunk's
//      in-chunk index list and its count (chunk_offsets[c + 1]).
//   K2 scan_kernel  one block: exclusive scan of the chunk counts in place,
//      offset by a device-side base (rows already in the output).
//   K3 gather_kernel  one block per chunk: copy the chunk's accepted rows,
//      which are consecutive in the output, to rows chunk_offsets[c] + k
//      while < capacity, with the widest copy word that divides the row
//      (launch_gather).
#pragma once
#include <cuda_runtime.h>

#include <cstdint>
#include <cub/cub.cuh>

#include "ops/accept_compact/compaction.h"
#include "util.cuh"

namespace rsfast::cuda::compact {
// Internal linkage: each driver (.cu file) compiles its own copy of the
// kernels (no relocatable device code).
namespace {

constexpr int kThreads = 256;                       // K1 and K3 block size
constexpr int kItems = (int)kCompactChunk / kThreads;  // rows per thread in K1 (8)
constexpr int kScanThreads = 512;                   // K2 block size (1024 spills int64 scans)
constexpr int kScanItems = 4;                       // chunks per K2 thread per round
static_assert(kItems * kThreads == kCompactChunk, "a K1 block covers one chunk");
static_assert(kItems <= 32, "a thread's accept bits fit one word");

using RankScan = cub::BlockScan<int, kThreads>;

// K1's end: bit k of `bits` is the accept flag of in-chunk row
// kItems * threadIdx.x + k. Writes the in-chunk indices of the accepted rows
// in row order to idx + chunk * kCompactChunk and their number to
// chunk_offsets[chunk + 1]. Every thread of the block calls it.
__device__ __forceinline__ void list_accepted(unsigned bits, RankScan::TempStorage& tmp, int64_t chunk,
                                              uint16_t* __restrict__ idx, int64_t* __restrict__ chunk_offsets) {
  int rank, total;
  RankScan(tmp).ExclusiveSum(__popc(bits), rank, total);  // total is given to every thread
  uint16_t* out = idx + chunk * kCompactChunk;
#pragma unroll
  for (int k = 0; k < kItems; ++k)
    if ((bits >> k) & 1u) out[rank++] = (uint16_t)(threadIdx.x * kItems + k);
  if (threadIdx.x == 0) chunk_offsets[chunk + 1] = total;
}

// K2: chunk_offsets[c + 1] holds chunk c's count on entry; on exit
// chunk_offsets[c] = b + accepted rows in chunks < c and chunk_offsets[n] =
// *total = b + all, with b = *base (0 when base is null). Only thread 0
// touches base and total (which may alias): it reads base first and writes
// total last. A round reads counts at [c0 + 1, c0 + R] and writes prefixes at
// [c0, c0 + R - 1], with a barrier between: no position is written before it
// is read.
__global__ void __launch_bounds__(kScanThreads)
    scan_kernel(int64_t* __restrict__ chunk_offsets, int64_t nchunks, const int64_t* base, int64_t* total) {
  using Scan = cub::BlockScan<int64_t, kScanThreads>;
  __shared__ typename Scan::TempStorage tmp;
  __shared__ int64_t s_base;
  if (threadIdx.x == 0) s_base = base != nullptr ? *base : 0;
  __syncthreads();
  int64_t carry = s_base;  // identical in every thread throughout
  for (int64_t c0 = 0; c0 < nchunks; c0 += (int64_t)kScanThreads * kScanItems) {
    const int64_t first = c0 + (int64_t)threadIdx.x * kScanItems;  // blocked: scan order = chunk order
    int64_t v[kScanItems], e[kScanItems];
#pragma unroll
    for (int k = 0; k < kScanItems; ++k) v[k] = first + k < nchunks ? chunk_offsets[first + k + 1] : 0;
    int64_t round_total;
    Scan(tmp).ExclusiveSum(v, e, round_total);  // round_total is given to every thread
    __syncthreads();  // every read of this round happens before any write
#pragma unroll
    for (int k = 0; k < kScanItems; ++k)
      if (first + k < nchunks) chunk_offsets[first + k] = carry + e[k];
    carry += round_total;
    __syncthreads();  // writes done and tmp free before the next round reads
  }
  if (threadIdx.x == 0) {
    chunk_offsets[nchunks] = carry;
    *total = carry;
  }
}

inline void launch_scan(const CompactScratch& s, int64_t nchunks, const int64_t* base, int64_t* total,
                        cudaStream_t stream) {
  scan_kernel<<<1, kScanThreads, 0, stream>>>(s.chunk_offsets, nchunks, base, total);
  CUDA_CHECK(cudaGetLastError());
}

// K3: W is the copy word, wpr = row_bytes / sizeof(W) (0 copies nothing).
template <typename W>
__global__ void __launch_bounds__(kThreads)
    gather_kernel(const uint16_t* __restrict__ idx, const int64_t* __restrict__ chunk_offsets,
                  const W* __restrict__ src, W* __restrict__ dst, int64_t wpr, int64_t capacity) {
  __shared__ uint16_t s_idx[kCompactChunk];
  const int64_t chunk = blockIdx.x;
  const int64_t dst0 = chunk_offsets[chunk];
  const int64_t room = capacity - dst0;
  const int64_t n_acc = chunk_offsets[chunk + 1] - dst0;
  const int n = room <= 0 ? 0 : (int)(room < n_acc ? room : n_acc);
  if (n == 0) return;  // uniform across the block: no barrier skipped by a subset
  for (int r = threadIdx.x; r < n; r += kThreads) s_idx[r] = idx[chunk * kCompactChunk + r];
  __syncthreads();
  const W* s = src + chunk * kCompactChunk * wpr;
  W* d = dst + dst0 * wpr;  // the chunk's output rows are consecutive
  if (wpr >= 32) {
    // Large rows: one warp per row, lanes over its words.
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    for (int r = warp; r < n; r += kThreads / 32) {
      const W* sr = s + (int64_t)s_idx[r] * wpr;
      W* dr = d + (int64_t)r * wpr;
      for (int64_t w = lane; w < wpr; w += 32) dr[w] = sr[w];
    }
  } else {
    // Small rows: the block walks the n * wpr output words in order (coalesced stores).
    const unsigned wp = (unsigned)wpr;
    const unsigned total = (unsigned)n * wp;  // < 2048 * 32
    for (unsigned i = threadIdx.x; i < total; i += kThreads) {
      const unsigned r = i / wp, w = i - r * wp;
      d[i] = s[(int64_t)s_idx[r] * wpr + w];
    }
  }
}

// f(W{}) with W the widest copy word of rows of row_bytes bytes at x and out
// (copy_word_bytes): uint4, uint2, uint32_t, uint16_t or uint8_t.
template <typename F>
void with_copy_word(int64_t row_bytes, const void* x, const void* out, F&& f) {
  switch (copy_word_bytes(row_bytes, x, out)) {
    case 16: return f(uint4{});
    case 8: return f(uint2{});
    case 4: return f(uint32_t{});
    case 2: return f(uint16_t{});
    default: return f(uint8_t{});
  }
}

// K3 for rows of row_bytes >= 0 bytes from src to dst (up to capacity rows);
// nothing to do when capacity <= 0.
inline void launch_gather(const CompactScratch& s, int64_t nchunks, const void* src, void* dst, int64_t row_bytes,
                          int64_t capacity, cudaStream_t stream) {
  if (capacity <= 0) return;
  with_copy_word(row_bytes, src, dst, [&](auto word) {
    using W = decltype(word);
    gather_kernel<W><<<(unsigned)nchunks, kThreads, 0, stream>>>(s.idx, s.chunk_offsets, static_cast<const W*>(src),
                                                                 static_cast<W*>(dst),
                                                                 row_bytes / (int64_t)sizeof(W), capacity);
    CUDA_CHECK(cudaGetLastError());
  });
}

}  // namespace
}  // namespace rsfast::cuda::compact
