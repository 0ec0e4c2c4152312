// CUDA driver of accept_compact_rows: the same decisions, in-chunk index
// lists, chunk offsets and outputs as csrc/ops/accept_compact_rows/cpu.cpp, on
// the caller's stream, with no host synchronisation and no allocation (the
// scratch comes from torch). The compaction core's kernels
// (accept_compact/compaction.cuh) with this op's decide kernel and a zeroed
// tail:
//
//   decide  K1 decide_kernel  one block per chunk: the accept test of every
//                             row (rsfast::accept_row), then the chunk's
//                             index list and count (compact::list_accepted).
//           K2 scan_kernel    chunk offsets from 0; count[0] = the total.
//   gather  K3 gather_kernel  per tensor: the chunk's accepted rows to output
//                             rows chunk_offsets[c] + k (< capacity).
//           K4 zero_kernel    per tensor, when asked: zero output rows
//                             [count, capacity), count read on the device.
#include <cuda_runtime.h>

#include <climits>
#include <cstdint>
#include <cub/cub.cuh>
#include <stdexcept>

#include "ops/accept_compact/compaction.cuh"
#include "ops/accept_compact_rows/core.h"
#include "ops/accept_compact_rows/api.h"
#include "util.cuh"

namespace rsfast::cuda {
namespace {

using compact::kItems;
using compact::kThreads;
constexpr int kZeroThreads = 256;

// K1: decisions and in-chunk index lists. Thread t owns rows 8t .. 8t+7 of
// the chunk (blocked, loaded through a warp transpose).
template <typename T>
__global__ void __launch_bounds__(kThreads)
    decide_kernel(const T* __restrict__ lr, int64_t m, T log_M, const T* __restrict__ log_M_ptr, uint64_t seed,
                  uint32_t offset, uint16_t* __restrict__ idx, int64_t* __restrict__ chunk_offsets) {
  using Load = cub::BlockLoad<T, kThreads, kItems, cub::BLOCK_LOAD_WARP_TRANSPOSE>;
  __shared__ union {
    typename Load::TempStorage load;
    compact::RankScan::TempStorage scan;
  } tmp;

  const int64_t chunk = blockIdx.x;
  const int64_t row0 = chunk * kCompactChunk;
  const int valid = (int)(m - row0 < kCompactChunk ? m - row0 : kCompactChunk);
  const T lm = log_M_ptr != nullptr ? *log_M_ptr : log_M;
  T v[kItems];
  Load(tmp.load).Load(lr + row0, v, valid, (T)NAN);  // rows past m read as NaN: rejected
  __syncthreads();  // tmp is reused by the scan

  unsigned bits = 0;
#pragma unroll
  for (int k = 0; k < kItems; ++k) {
    const int j = threadIdx.x * kItems + k;
    const uint32_t a =
        j < valid ? accept_row<T>(v[k], lm, philox_block(seed, (uint64_t)(row0 + j), offset, 0)) : 0u;
    bits |= a << k;
  }
  compact::list_accepted(bits, tmp.scan, chunk, idx, chunk_offsets);
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

void launch_zero(const CompactScratch& s, int64_t nchunks, const void* src, void* dst, int64_t row_bytes,
                 int64_t capacity, cudaStream_t stream) {
  if (capacity <= 0) return;
  compact::with_copy_word(row_bytes, src, dst, [&](auto word) {
    using W = decltype(word);
    const int64_t wpr = row_bytes / (int64_t)sizeof(W);
    const int64_t blocks = (capacity * wpr + kZeroThreads * 4 - 1) / (kZeroThreads * 4);
    const unsigned grid = (unsigned)(blocks < 65535 ? (blocks > 0 ? blocks : 1) : 65535);
    zero_kernel<W><<<grid, kZeroThreads, 0, stream>>>(s.chunk_offsets, nchunks, static_cast<W*>(dst), wpr, capacity);
    CUDA_CHECK(cudaGetLastError());
  });
}

}  // namespace

int64_t accept_compact_rows_scratch_bytes(int64_t m) { return compact_scratch_bytes(m); }

void accept_compact_rows_decide(const CompactRowsArgs& a, int device, void* stream) {
  if (a.scratch == nullptr) throw std::invalid_argument("rsfast CUDA accept_compact_rows: no scratch");
  DeviceGuard guard(device);
  cudaStream_t st = static_cast<cudaStream_t>(stream);
  if (a.m <= 0) {
    CUDA_CHECK(cudaMemsetAsync(a.count, 0, sizeof(int64_t), st));
    return;
  }
  const int64_t nchunks = compact_chunks(a.m);
  if (nchunks > INT_MAX) throw std::invalid_argument("rsfast CUDA accept_compact_rows: too many rows");
  const CompactScratch s = compact_scratch(a.scratch, a.m);
  if (a.dtype == kFloat32)
    decide_kernel<float><<<(unsigned)nchunks, kThreads, 0, st>>>(
        static_cast<const float*>(a.log_ratio), a.m, (float)a.log_M, static_cast<const float*>(a.log_M_ptr),
        a.seed, a.offset, s.idx, s.chunk_offsets);
  else
    decide_kernel<double><<<(unsigned)nchunks, kThreads, 0, st>>>(
        static_cast<const double*>(a.log_ratio), a.m, a.log_M, static_cast<const double*>(a.log_M_ptr), a.seed,
        a.offset, s.idx, s.chunk_offsets);
  CUDA_CHECK(cudaGetLastError());
  compact::launch_scan(s, nchunks, nullptr, a.count, st);
}

void accept_compact_rows_gather(const GatherRowsArgs& a, int device, void* stream) {
  if (a.m <= 0) return;
  if (a.scratch == nullptr) throw std::invalid_argument("rsfast CUDA accept_compact_rows: no scratch");
  DeviceGuard guard(device);
  cudaStream_t st = static_cast<cudaStream_t>(stream);
  const int64_t nchunks = compact_chunks(a.m);
  const CompactScratch s = compact_scratch(a.scratch, a.m);
  for (int i = 0; i < a.ntensors; ++i) {
    const int64_t rb = a.row_bytes[i];
    if (rb <= 0) continue;
    compact::launch_gather(s, nchunks, a.src[i], a.dst[i], rb, a.capacity, st);
    if (a.zero_tail) launch_zero(s, nchunks, a.src[i], a.dst[i], rb, a.capacity, st);
  }
}

}  // namespace rsfast::cuda
