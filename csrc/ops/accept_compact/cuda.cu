// CUDA driver of accept_compact: the same result as csrc/ops/accept_compact/cpu.cpp
// (same decisions, same stable row order, same counts) in three launches on
// the caller's stream, with no host synchronisation and no allocation: the
// compaction core's (compaction.cuh) with this op's decide kernel.
//
//   K1 decide_kernel  one block per chunk of kCompactChunk rows: decide every
//                     row (shared core rsfast::decide, in the dtype T of
//                     log p and log q with log M cast to T, as on the CPU),
//                     list the chunk's accepted rows (compact::list_accepted),
//                     and fold the NaN / overweight / +inf counts and the max
//                     log-ratio into counts / max_log_ratio (one atomic each
//                     per block).
//   K2 scan_kernel    chunk offsets from the device-side counts[kAccepted]
//                     (never read on the host); then counts[kAccepted] += all
//                     accepted rows.
//   K3 gather_kernel  the accepted rows of each chunk to out[offset + rank]
//                     while < capacity (the rest are counted but dropped).
//
// Scratch: the core's layout (compact_scratch_bytes).
#include <cuda_runtime.h>

#include <climits>
#include <cstdint>
#include <cub/cub.cuh>
#include <stdexcept>

#include "ops/accept_compact/compaction.cuh"
#include "ops/accept_compact/core.h"
#include "ops/accept_compact/api.h"
#include "util.cuh"

namespace rsfast::cuda {
namespace {

using compact::kItems;
using compact::kThreads;

// ---------------------------------------------------------------------------
// K1: decisions, index lists and statistics.

struct ChunkStats {
  int nan, overweight, posinf;
  double max_ratio;
};

struct ChunkStatsOp {
  __device__ __forceinline__ ChunkStats operator()(const ChunkStats& a, const ChunkStats& b) const {
    ChunkStats r;
    r.nan = a.nan + b.nan;
    r.overweight = a.overweight + b.overweight;
    r.posinf = a.posinf + b.posinf;
    r.max_ratio = b.max_ratio > a.max_ratio ? b.max_ratio : a.max_ratio;
    return r;
  }
};

// *addr = max(*addr, v), updating only when v > *addr as the CPU driver does
// (so a NaN already stored stays, like `if (total > old) old = total`).
// A CAS loop on the bits: correct for every sign, -inf included.
__device__ __forceinline__ void atomic_max_double(double* addr, double v) {
  unsigned long long* p = reinterpret_cast<unsigned long long*>(addr);
  unsigned long long old = *reinterpret_cast<volatile unsigned long long*>(p);
  while (v > __longlong_as_double((long long)old)) {
    const unsigned long long seen = atomicCAS(p, old, (unsigned long long)__double_as_longlong(v));
    if (seen == old) break;
    old = seen;
  }
}

__device__ __forceinline__ void atomic_add_i64(int64_t* addr, int64_t v) {
  // Two's complement: unsigned addition is int64 addition.
  atomicAdd(reinterpret_cast<unsigned long long*>(addr), (unsigned long long)v);
}

template <typename T>
__global__ void __launch_bounds__(kThreads)
    decide_kernel(const T* __restrict__ lp, const T* __restrict__ lq, int64_t m, T log_M, uint64_t seed,
                  uint32_t offset, uint16_t* __restrict__ idx, int64_t* __restrict__ chunk_offsets,
                  int64_t* counts, double* max_log_ratio) {
  using Load = cub::BlockLoad<T, kThreads, kItems, cub::BLOCK_LOAD_WARP_TRANSPOSE>;
  using Reduce = cub::BlockReduce<ChunkStats, kThreads>;
  __shared__ union {
    typename Load::TempStorage load;
    compact::RankScan::TempStorage scan;
    typename Reduce::TempStorage reduce;
  } tmp;

  const int64_t chunk = blockIdx.x;
  const int64_t row0 = chunk * kCompactChunk;
  const int valid = (int)(m - row0 < kCompactChunk ? m - row0 : kCompactChunk);
  // Blocked rows (row0 + kItems * tid + k), loaded through a warp transpose
  // (coalesced); rows past m are never decided.
  T p[kItems], q[kItems];
  Load(tmp.load).Load(lp + row0, p, valid, (T)0);
  __syncthreads();  // tmp is reused by the next load
  Load(tmp.load).Load(lq + row0, q, valid, (T)0);
  __syncthreads();  // tmp is reused by the scan

  ChunkStats st{0, 0, 0, -INFINITY};
  unsigned bits = 0;
#pragma unroll
  for (int k = 0; k < kItems; ++k) {
    const int j = threadIdx.x * kItems + k;
    if (j < valid) {
      const Decision<T> d = decide<T>(p[k], q[k], log_M, philox_block(seed, (uint64_t)(row0 + j), offset, 0));
      bits |= d.accept << k;
      st.nan += (int)d.nan;
      st.overweight += (int)d.overweight;
      st.posinf += (int)d.posinf;
      // The CPU takes the max in T, then widens; widening is monotone, so the same value.
      const double r = (double)d.log_ratio;
      st.max_ratio = r > st.max_ratio ? r : st.max_ratio;
    }
  }
  compact::list_accepted(bits, tmp.scan, chunk, idx, chunk_offsets);
  __syncthreads();  // tmp is reused by the reduction
  const ChunkStats tot = Reduce(tmp.reduce).Reduce(st, ChunkStatsOp{});
  if (threadIdx.x == 0) {  // the block aggregate is valid in thread 0 only
    if (tot.nan) atomic_add_i64(counts + kNaN, tot.nan);
    if (tot.overweight) atomic_add_i64(counts + kOverweight, tot.overweight);
    if (tot.posinf) atomic_add_i64(counts + kPosInf, tot.posinf);
    if (tot.max_ratio > -INFINITY) atomic_max_double(max_log_ratio, tot.max_ratio);
  }
}

template <typename T>
void run(const AcceptArgs& a, cudaStream_t stream) {
  const int64_t nchunks = compact_chunks(a.m);
  if (nchunks > INT_MAX) throw std::invalid_argument("rsfast CUDA accept_compact: too many rows");
  const CompactScratch s = compact_scratch(a.scratch, a.m);
  decide_kernel<T><<<(unsigned)nchunks, kThreads, 0, stream>>>(
      static_cast<const T*>(a.log_p), static_cast<const T*>(a.log_q), a.m, (T)a.log_M, a.seed, a.offset, s.idx,
      s.chunk_offsets, a.counts, a.max_log_ratio);
  CUDA_CHECK(cudaGetLastError());
  // Offsets start at the rows already in out; counts[kAccepted] becomes the new total.
  compact::launch_scan(s, nchunks, a.counts + kAccepted, a.counts + kAccepted, stream);
  compact::launch_gather(s, nchunks, a.x, a.out, a.row_bytes, a.capacity, stream);
}

}  // namespace

int64_t accept_compact_scratch_bytes(int64_t m) { return compact_scratch_bytes(m); }

void accept_compact(const AcceptArgs& args, int device, void* stream) {
  if (args.m <= 0) return;
  if (args.row_bytes < 0) throw std::invalid_argument("rsfast CUDA accept_compact: negative row_bytes");
  if (args.scratch == nullptr) throw std::invalid_argument("rsfast CUDA accept_compact: no scratch");
  DeviceGuard guard(device);
  cudaStream_t s = static_cast<cudaStream_t>(stream);
  if (args.dtype == kFloat32)
    run<float>(args, s);
  else
    run<double>(args, s);
}

}  // namespace rsfast::cuda
