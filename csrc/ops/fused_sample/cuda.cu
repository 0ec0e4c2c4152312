// CUDA driver of fused_sample: one thread per output row (grid-stride), each
// running the shared fused_try core of fused_sample/core.h on its row's stream
// until a try accepts, so that every row is the one the CPU driver produces
// (bit-identical for float32, see CMakeLists --fmad). One launch on the
// caller's stream, no host synchronisation, no allocation: the statistics are
// reduced per block and added to `counts` with one atomic per slot and block.
//
// The bound on tries is global and coarse: a thread adds its tries to
// counts[kFusedProposals] every kFlushTries tries and stops everyone (sets
// counts[kFusedStopped]) once the total passes max_proposals.
#include <cuda_runtime.h>

#include <algorithm>
#include <cub/cub.cuh>
#include <stdexcept>

#include "ops/fused_sample/api.h"
#include "ops/fused_sample/core.h"
#include "util.cuh"

namespace rsfast::cuda {
namespace {

constexpr int kFusedThreads = 128;
constexpr uint32_t kFlushTries = 256;
constexpr int64_t kLocalDim = 8;  // rows up to this D are built in registers / local memory

struct FusedStats {
  long long accepted, nan, overweight, posinf;
  double max_ratio;
};

struct FusedStatsOp {
  __device__ __forceinline__ FusedStats operator()(const FusedStats& a, const FusedStats& b) const {
    return FusedStats{a.accepted + b.accepted, a.nan + b.nan, a.overweight + b.overweight, a.posinf + b.posinf,
                      b.max_ratio > a.max_ratio ? b.max_ratio : a.max_ratio};
  }
};

__device__ __forceinline__ void add_i64(int64_t* addr, long long v) {
  atomicAdd(reinterpret_cast<unsigned long long*>(addr), (unsigned long long)v);
}

__device__ __forceinline__ void max_double(double* addr, double v) {
  unsigned long long* p = reinterpret_cast<unsigned long long*>(addr);
  unsigned long long old = *reinterpret_cast<volatile unsigned long long*>(p);
  while (v > __longlong_as_double((long long)old)) {
    const unsigned long long seen = atomicCAS(p, old, (unsigned long long)__double_as_longlong(v));
    if (seen == old) break;
    old = seen;
  }
}

// Adds `pending` tries to the global count; true when everyone must stop.
__device__ __forceinline__ bool flush(int64_t* counts, uint32_t& pending, int64_t max_proposals) {
  const long long before =
      (long long)atomicAdd(reinterpret_cast<unsigned long long*>(counts + kFusedProposals), (unsigned long long)pending);
  const bool over = before + (long long)pending > (long long)max_proposals;
  pending = 0;
  if (over) atomicExch(reinterpret_cast<unsigned long long*>(counts + kFusedStopped), 1ull);
  return over || *reinterpret_cast<volatile int64_t*>(counts + kFusedStopped) != 0;
}

template <typename T, bool kLocal>
__global__ void __launch_bounds__(kFusedThreads)
    fused_kernel(const FusedParams<T> f, uint64_t seed, uint32_t offset, int64_t n, int64_t max_proposals,
                 T* __restrict__ out, int64_t* counts, double* max_log_ratio) {
  using Reduce = cub::BlockReduce<FusedStats, kFusedThreads>;
  __shared__ typename Reduce::TempStorage tmp;
  const int64_t D = f.q.dim;
  FusedStats st{0, 0, 0, 0, -INFINITY};
  uint32_t pending = 0;
  bool stop = false;
  const int64_t stride = (int64_t)gridDim.x * blockDim.x;
  for (int64_t row = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; row < n && !stop; row += stride) {
    T local[kLocal ? kLocalDim : 1];
    T* x = kLocal ? local : out + row * D;
    for (uint32_t t = 0;; ++t) {
      if (t == f.layout.max_tries) {  // the row's stream is used up: stop as the bound does
        atomicExch(reinterpret_cast<unsigned long long*>(counts + kFusedStopped), 1ull);
        stop = true;
        break;
      }
      const Decision<T> d = fused_try<T>(f, seed, offset, (uint64_t)row, t, x);
      ++pending;
      st.nan += d.nan;
      st.overweight += d.overweight;
      st.posinf += d.posinf;
      const double r = (double)d.log_ratio;
      st.max_ratio = r > st.max_ratio ? r : st.max_ratio;
      if (d.accept) {
        if (kLocal)
          for (int64_t k = 0; k < D; ++k) out[row * D + k] = local[k];
        ++st.accepted;
        break;
      }
      if (pending >= kFlushTries && flush(counts, pending, max_proposals)) {
        stop = true;
        break;
      }
    }
  }
  if (pending) flush(counts, pending, max_proposals);
  const FusedStats tot = Reduce(tmp).Reduce(st, FusedStatsOp{});
  if (threadIdx.x == 0) {
    if (tot.accepted) add_i64(counts + kFusedAccepted, tot.accepted);
    if (tot.nan) add_i64(counts + kFusedNaN, tot.nan);
    if (tot.overweight) add_i64(counts + kFusedOverweight, tot.overweight);
    if (tot.posinf) add_i64(counts + kFusedPosInf, tot.posinf);
    max_double(max_log_ratio, tot.max_ratio);
  }
}

template <typename T>
void launch(const FusedArgs& a, cudaStream_t stream) {
  const FusedParams<T> f = fused_params_of<T>(a);
  const int64_t blocks = (a.n + kFusedThreads - 1) / kFusedThreads;
  const unsigned grid = (unsigned)std::min<int64_t>(blocks, int64_t(1) << 20);
  T* out = static_cast<T*>(a.out);
  if (a.dim <= kLocalDim)
    fused_kernel<T, true><<<grid, kFusedThreads, 0, stream>>>(f, a.seed, a.offset, a.n, a.max_proposals, out,
                                                              a.counts, a.max_log_ratio);
  else
    fused_kernel<T, false><<<grid, kFusedThreads, 0, stream>>>(f, a.seed, a.offset, a.n, a.max_proposals, out,
                                                               a.counts, a.max_log_ratio);
  CUDA_CHECK(cudaGetLastError());
}

}  // namespace

void fused_sample(const FusedArgs& args, int device, void* stream) {
  if (args.n <= 0) return;
  if (args.dim < 1 || args.ncomp_q < 1 || args.ncomp_p < 1)
    throw std::invalid_argument("rsfast CUDA fused_sample: bad dim or component counts");
  DeviceGuard guard(device);
  cudaStream_t s = static_cast<cudaStream_t>(stream);
  if (args.dtype == kFloat32)
    launch<float>(args, s);
  else
    launch<double>(args, s);
}

}  // namespace rsfast::cuda
