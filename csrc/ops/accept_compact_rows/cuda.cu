// CUDA driver of accept_compact_rows: the same decisions, in-chunk index
// lists, chunk offsets and outputs as csrc/ops/accept_compact_rows/cpu.cpp, on the
// caller's stream, with no host synchronisation and no allocation (the
// scratch comes from torch).
//
//   decide  K1 decide_kernel  one block per chunk of kRowsChunk rows: decide
//                             every row (rsfast::accept_row), rank the
//                             accepted rows in row order (block scan), write
//                             their in-chunk indices to idx and the chunk's
//                             count to chunk_offsets[c + 1].
//           K2 scan_kernel    one block: exclusive scan of the chunk counts
//                             in place into chunk_offsets[0..n], and
//                             count[0] = the total.
//   gather  K3 gather_kernel  per tensor, one block per chunk: copy the
//                             chunk's accepted rows to output rows
//                             chunk_offsets[c] + k (< capacity), with the
//                             widest copy word that divides the row.
//           K4 zero_kernel    per tensor, when asked: zero output rows
//                             [count, capacity), count read on the device.
#include <cuda_runtime.h>

#include <climits>
#include <cstdint>
#include <cub/cub.cuh>
#include <stdexcept>

#include "ops/accept_compact_rows/core.h"
#include "ops/accept_compact_rows/api.h"
#include "util.cuh"

namespace rsfast::cuda {
namespace {

constexpr int kThreads = 256;                            // K1 and K3 block size
constexpr int kItems = (int)kRowsChunk / kThreads;       // rows per thread in K1 (8)
constexpr int kScanThreads = 512;                        // K2 block size
constexpr int kScanItems = 4;                            // chunks per K2 thread per round
constexpr int kZeroThreads = 256;
static_assert(kItems * kThreads == kRowsChunk, "a K1 block covers one chunk");

// ---------------------------------------------------------------------------
// K1: decisions and in-chunk index lists. Thread t owns rows 8t .. 8t+7 of
// the chunk (blocked, loaded through a warp transpose), so an exclusive scan
// of the per-thread counts is the in-chunk rank in row order.

template <typename T>
__global__ void __launch_bounds__(kThreads)
    decide_kernel(const T* __restrict__ lr, int64_t m, T log_M, const T* __restrict__ log_M_ptr, uint64_t seed,
                  uint32_t offset, uint16_t* __restrict__ idx, int64_t* __restrict__ chunk_offsets) {
  using Load = cub::BlockLoad<T, kThreads, kItems, cub::BLOCK_LOAD_WARP_TRANSPOSE>;
  using Scan = cub::BlockScan<int, kThreads>;
  __shared__ union {
    typename Load::TempStorage load;
    typename Scan::TempStorage scan;
  } tmp;

  const int64_t chunk = blockIdx.x;
  const int64_t row0 = chunk * kRowsChunk;
  const int valid = (int)(m - row0 < kRowsChunk ? m - row0 : kRowsChunk);
  const T lm = log_M_ptr != nullptr ? *log_M_ptr : log_M;
  T v[kItems];
  Load(tmp.load).Load(lr + row0, v, valid, (T)NAN);  // rows past m read as NaN: rejected
  __syncthreads();  // tmp is reused by the scan

  unsigned flags = 0;
  int mine = 0;
#pragma unroll
  for (int k = 0; k < kItems; ++k) {
    const int j = threadIdx.x * kItems + k;
    const uint32_t a =
        j < valid ? accept_row<T>(v[k], lm, philox_block(seed, (uint64_t)(row0 + j), offset, 0)) : 0u;
    flags |= a << k;
    mine += (int)a;
  }
  int rank, total;
  Scan(tmp.scan).ExclusiveSum(mine, rank, total);
  uint16_t* out = idx + row0;
#pragma unroll
  for (int k = 0; k < kItems; ++k)
    if ((flags >> k) & 1u) out[rank++] = (uint16_t)(threadIdx.x * kItems + k);
  if (threadIdx.x == 0) chunk_offsets[chunk + 1] = total;
}

// ---------------------------------------------------------------------------
// K2: in-place exclusive scan. chunk_offsets[c + 1] holds chunk c's count on
// entry; on exit chunk_offsets[c] = accepted rows in chunks < c and
// chunk_offsets[n] = the total. A round reads counts at positions
// [c0 + 1, c0 + R] and writes prefixes at [c0, c0 + R - 1], with a barrier
// between: no position is written before it is read.

__global__ void __launch_bounds__(kScanThreads)
    scan_kernel(int64_t* __restrict__ chunk_offsets, int64_t nchunks, int64_t* __restrict__ count) {
  using Scan = cub::BlockScan<int64_t, kScanThreads>;
  __shared__ typename Scan::TempStorage tmp;
  int64_t carry = 0;  // identical in every thread throughout
  for (int64_t c0 = 0; c0 < nchunks; c0 += (int64_t)kScanThreads * kScanItems) {
    const int64_t first = c0 + (int64_t)threadIdx.x * kScanItems;
    int64_t v[kScanItems], e[kScanItems];
#pragma unroll
    for (int k = 0; k < kScanItems; ++k) v[k] = first + k < nchunks ? chunk_offsets[first + k + 1] : 0;
    int64_t round_total;
    Scan(tmp).ExclusiveSum(v, e, round_total);
    __syncthreads();  // every read of this round happens before any write
#pragma unroll
    for (int k = 0; k < kScanItems; ++k)
      if (first + k < nchunks) chunk_offsets[first + k] = carry + e[k];
    carry += round_total;
    __syncthreads();  // writes done and tmp free before the next round reads
  }
  if (threadIdx.x == 0) {
    chunk_offsets[nchunks] = carry;
    count[0] = carry;
  }
}

// ---------------------------------------------------------------------------
// K3: gather. W is the copy word, wpr = row_bytes / sizeof(W).

template <typename W>
__global__ void __launch_bounds__(kThreads)
    gather_kernel(const uint16_t* __restrict__ idx, const int64_t* __restrict__ chunk_offsets,
                  const W* __restrict__ src, W* __restrict__ dst, int64_t wpr, int64_t capacity) {
  __shared__ uint16_t s_idx[kRowsChunk];
  const int64_t chunk = blockIdx.x;
  const int64_t dst0 = chunk_offsets[chunk];
  const int64_t room = capacity - dst0;
  const int64_t n_acc = chunk_offsets[chunk + 1] - dst0;
  const int n = room <= 0 ? 0 : (int)(room < n_acc ? room : n_acc);
  if (n == 0) return;  // uniform across the block
  for (int r = threadIdx.x; r < n; r += kThreads) s_idx[r] = idx[chunk * kRowsChunk + r];
  __syncthreads();
  const W* s = src + chunk * kRowsChunk * wpr;
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

// K4: dst words [count * wpr, capacity * wpr) = 0, count = chunk_offsets[nchunks].
template <typename W>
__global__ void __launch_bounds__(kZeroThreads)
    zero_kernel(const int64_t* __restrict__ chunk_offsets, int64_t nchunks, W* __restrict__ dst, int64_t wpr,
                int64_t capacity) {
  const int64_t count = chunk_offsets[nchunks];
  const int64_t end = capacity * wpr;
  const int64_t stride = (int64_t)gridDim.x * blockDim.x;
  for (int64_t i = count * wpr + (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < end; i += stride) dst[i] = W{};
}

template <typename W>
bool fits(int64_t row_bytes, const void* x, const void* out) {
  const uintptr_t s = sizeof(W);
  return row_bytes % (int64_t)s == 0 && reinterpret_cast<uintptr_t>(x) % s == 0 &&
         reinterpret_cast<uintptr_t>(out) % s == 0;
}

template <typename W>
void launch_tensor(const GatherRowsArgs& a, int i, const RowsScratch& s, int64_t nchunks, cudaStream_t stream) {
  const int64_t wpr = a.row_bytes[i] / (int64_t)sizeof(W);
  const W* src = static_cast<const W*>(a.src[i]);
  W* dst = static_cast<W*>(a.dst[i]);
  if (a.capacity > 0) {
    gather_kernel<W><<<(unsigned)nchunks, kThreads, 0, stream>>>(s.idx, s.chunk_offsets, src, dst, wpr, a.capacity);
    CUDA_CHECK(cudaGetLastError());
  }
  if (a.zero_tail && a.capacity > 0) {
    const int64_t words = a.capacity * wpr;
    const int64_t blocks = (words + kZeroThreads * 4 - 1) / (kZeroThreads * 4);
    const unsigned grid = (unsigned)(blocks < 65535 ? (blocks > 0 ? blocks : 1) : 65535);
    zero_kernel<W><<<grid, kZeroThreads, 0, stream>>>(s.chunk_offsets, nchunks, dst, wpr, a.capacity);
    CUDA_CHECK(cudaGetLastError());
  }
}

}  // namespace

int64_t accept_compact_rows_scratch_bytes(int64_t m) { return rows_scratch_bytes(m); }

void accept_compact_rows_decide(const CompactRowsArgs& a, int device, void* stream) {
  if (a.scratch == nullptr) throw std::invalid_argument("rsfast CUDA accept_compact_rows: no scratch");
  DeviceGuard guard(device);
  cudaStream_t st = static_cast<cudaStream_t>(stream);
  if (a.m <= 0) {
    CUDA_CHECK(cudaMemsetAsync(a.count, 0, sizeof(int64_t), st));
    return;
  }
  const int64_t nchunks = rows_chunks(a.m);
  if (nchunks > INT_MAX) throw std::invalid_argument("rsfast CUDA accept_compact_rows: too many rows");
  const RowsScratch s = rows_scratch(a.scratch, a.m);
  if (a.dtype == kFloat32)
    decide_kernel<float><<<(unsigned)nchunks, kThreads, 0, st>>>(
        static_cast<const float*>(a.log_ratio), a.m, (float)a.log_M, static_cast<const float*>(a.log_M_ptr),
        a.seed, a.offset, s.idx, s.chunk_offsets);
  else
    decide_kernel<double><<<(unsigned)nchunks, kThreads, 0, st>>>(
        static_cast<const double*>(a.log_ratio), a.m, a.log_M, static_cast<const double*>(a.log_M_ptr), a.seed,
        a.offset, s.idx, s.chunk_offsets);
  CUDA_CHECK(cudaGetLastError());
  scan_kernel<<<1, kScanThreads, 0, st>>>(s.chunk_offsets, nchunks, a.count);
  CUDA_CHECK(cudaGetLastError());
}

void accept_compact_rows_gather(const GatherRowsArgs& a, int device, void* stream) {
  if (a.m <= 0) return;
  if (a.scratch == nullptr) throw std::invalid_argument("rsfast CUDA accept_compact_rows: no scratch");
  DeviceGuard guard(device);
  cudaStream_t st = static_cast<cudaStream_t>(stream);
  const int64_t nchunks = rows_chunks(a.m);
  const RowsScratch s = rows_scratch(a.scratch, a.m);
  for (int i = 0; i < a.ntensors; ++i) {
    const int64_t rb = a.row_bytes[i];
    if (rb <= 0) continue;
    const void* x = a.src[i];
    const void* out = a.dst[i];
    if (fits<uint4>(rb, x, out))
      launch_tensor<uint4>(a, i, s, nchunks, st);
    else if (fits<uint2>(rb, x, out))
      launch_tensor<uint2>(a, i, s, nchunks, st);
    else if (fits<uint32_t>(rb, x, out))
      launch_tensor<uint32_t>(a, i, s, nchunks, st);
    else if (fits<uint16_t>(rb, x, out))
      launch_tensor<uint16_t>(a, i, s, nchunks, st);
    else
      launch_tensor<uint8_t>(a, i, s, nchunks, st);
  }
}

}  // namespace rsfast::cuda
