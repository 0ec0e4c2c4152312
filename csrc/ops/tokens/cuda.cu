// CUDA driver of rsfast.tokens: one block per row (sample, filter) or per
// request (verify), on the caller's stream, no host synchronisation.
//
// The same results as csrc/ops/tokens/cpu.cpp, bit for bit: the kept set is one order-key
// threshold t found by the same radix descent (levels of 11, 11, 10 bits, here
// each level a pass over the row into a shared-memory histogram), masses are
// exact uint64 sums (atomics and reductions in any order give the same
// integers), and the draw is the first index, in index order, whose running
// kept mass exceeds the Philox target (a block-wide scan tile by tile). The
// one float difference: log(min_p) and the returned logprobs use the CUDA
// double log, within an ulp of glibc's.
#include <cuda_runtime.h>

#include <cub/cub.cuh>

#include "util.cuh"
#include "ops/tokens/core.h"
#include "ops/tokens/api.h"

namespace rsfast::tokens::cuda {
namespace {

constexpr int kThreads = 256;

constexpr int kWarps = kThreads / 32;
using U64Scan = cub::BlockScan<unsigned long long, kThreads>;

struct Shared {
  union {
    typename U64Scan::TempStorage scan;
  } tmp;
  float redf[kWarps];
  unsigned red32[kWarps];
  unsigned long long red64[kWarps];
  long long redi[kWarps];
  uint32_t cnt[kBuckets];
  uint64_t mass[kBuckets];
  uint64_t z;
  int64_t i;
  int bucket;
  uint64_t above_cnt, above_mass;
};

// Block reduction, the same value on every thread: warp shuffles, then the
// warp results combined in warp order.
template <typename T, typename Op>
__device__ T block_reduce(T v, Op op, T* scratch) {
  for (int o = 16; o > 0; o >>= 1) v = op(v, __shfl_down_sync(0xffffffffu, v, o));
  if ((threadIdx.x & 31) == 0) scratch[threadIdx.x >> 5] = v;
  __syncthreads();
  T r = scratch[0];
  for (int w = 1; w < kWarps; ++w) r = op(r, scratch[w]);
  __syncthreads();
  return r;
}
struct MaxOp {
  template <typename T>
  __device__ T operator()(T a, T b) const { return a > b ? a : b; }
};
struct MinOp {
  template <typename T>
  __device__ T operator()(T a, T b) const { return a < b ? a : b; }
};
struct SumOp {
  template <typename T>
  __device__ T operator()(T a, T b) const { return a + b; }
};

struct Row {
  const void* x;
  int64_t V;
  int input;
};

template <int DT>
__device__ float xv(const Row& r, int64_t i) {
  return load_x<DT>(r.x, i);
}

struct MaxBad {
  float m;
  bool bad;
};

template <int DT>
__device__ MaxBad scan_row(const Row& r, Shared& sh) {
  float m = -INFINITY;
  unsigned bad = 0;
  for (int64_t i = threadIdx.x; i < r.V; i += kThreads) {
    const float x = xv<DT>(r, i);
    m = x > m ? x : m;
    if (r.input == kLogits)
      bad |= (unsigned)(x != x) | (unsigned)(x == INFINITY);
    else
      bad |= (unsigned)!(x >= 0.0f) | (unsigned)(x == INFINITY);
  }
  MaxBad out{block_reduce(m, MaxOp(), sh.redf), block_reduce(bad, MaxOp(), sh.red32) != 0};
  out.bad = out.bad || (r.input == kLogits ? !(out.m > -INFINITY) : !(out.m > 0.0f));
  return out;
}

template <int DT>
__device__ int64_t first_max(const Row& r, float m, Shared& sh) {
  long long best = r.V;
  for (int64_t i = threadIdx.x; i < r.V; i += kThreads)
    if (xv<DT>(r, i) == m && i < best) best = i;
  const long long b = block_reduce(best, MinOp(), sh.redi);
  return b < r.V ? b : 0;
}

__device__ uint64_t block_sum(uint64_t v, Shared& sh) {
  return block_reduce((unsigned long long)v, SumOp(), sh.red64);
}

struct Weights {
  float m, T;
  double scale;
  int input;
  __device__ uint64_t operator()(float x) const { return token_weight(x, m, T, scale, input); }
};

struct Boundary {
  uint32_t key;
  uint64_t mass_ge;
};

// The radix descent of the CPU driver, one pass over the row per level.
template <int DT>
__device__ Boundary descend(const Row& r, const Weights& w, bool by_mass, uint64_t need, Shared& sh) {
  uint32_t prefix = 0;
  uint64_t group_mass = 0;
  if (threadIdx.x == 0) sh.above_cnt = sh.above_mass = 0;
  for (int level = 0; level < kLevels; ++level) {
    const int shift = level_shift(level), nb = 1 << level_bits(level);
    const int done = 32 - (shift + level_bits(level));  // bits fixed by the levels above
    for (int b = threadIdx.x; b < nb; b += kThreads) {
      sh.cnt[b] = 0;
      sh.mass[b] = 0;
    }
    __syncthreads();
    for (int64_t i = threadIdx.x; i < r.V; i += kThreads) {
      const float x = xv<DT>(r, i);
      const uint32_t k = token_key(x);
      if (done > 0 && (k >> (32 - done)) != prefix) continue;
      const uint32_t d = (k >> shift) & (uint32_t)(nb - 1);
      atomicAdd(&sh.cnt[d], 1u);
      atomicAdd((unsigned long long*)&sh.mass[d], (unsigned long long)w(x));
    }
    __syncthreads();
    if (threadIdx.x == 0) {
      uint64_t ac = sh.above_cnt, am = sh.above_mass;
      int d = find_bucket(sh.cnt, sh.mass, nb, by_mass, need, &ac, &am);
      if (d < 0) d = 0;
      sh.above_cnt = ac;
      sh.above_mass = am;
      sh.bucket = d;
      sh.z = sh.mass[d];
    }
    __syncthreads();
    prefix = (prefix << level_bits(level)) | (uint32_t)sh.bucket;
    group_mass = sh.z;
    __syncthreads();
  }
  const Boundary out{prefix, sh.above_mass + group_mass};
  __syncthreads();
  return out;
}

template <int DT>
__device__ RowPlan plan_row(const Row& r, const RowParams& P, int order, Shared& sh, Weights* wout) {
  RowPlan plan{};
  const MaxBad sc = scan_row<DT>(r, sh);
  plan.m = sc.m;
  if (sc.bad || !params_ok(P, r.input)) return plan;
  plan.valid = true;
  if (P.temperature == 0.0f) {
    plan.greedy = true;
    plan.argmax = first_max<DT>(r, sc.m, sh);
    return plan;
  }
  const int shift = weight_shift(r.V);
  plan.scale = r.input == kLogits ? pow2(shift) : probs_scale(sc.m, shift);
  const Weights w{sc.m, P.temperature, plan.scale, r.input};
  *wout = w;
  const bool topk = topk_active(P.top_k, r.V), topp = P.top_p < 1.0, minp = P.min_p > 0.0;
  const double lmin = minp ? log(P.min_p) : 0.0, pmin = P.min_p * (double)sc.m;
  uint64_t part = 0;
  unsigned tmin = 0xffffffffu;
  for (int64_t i = threadIdx.x; i < r.V; i += kThreads) {
    const float x = xv<DT>(r, i);
    part += w(x);
    if (minp && minp_keep(x, sc.m, P.temperature, lmin, pmin, r.input)) {
      const uint32_t k = token_key(x);
      tmin = k < tmin ? k : tmin;
    }
  }
  const uint64_t z_all = block_sum(part, sh);
  const uint32_t t_min = block_reduce(tmin, MinOp(), sh.red32);
  uint32_t t = 0;
  uint64_t z = z_all;
  if (topk) {
    const Boundary bk = descend<DT>(r, w, false, (uint64_t)P.top_k, sh);
    t = bk.key;
    z = bk.mass_ge;
  }
  if (topp) {
    const uint64_t need = ceil_mul(P.top_p, order == kOrderHF ? z : z_all);
    const Boundary bp = descend<DT>(r, w, true, need, sh);
    if (bp.key > t) {
      t = bp.key;
      z = bp.mass_ge;
    }
  }
  if (minp && t_min > t) {
    t = t_min;
    uint64_t zp = 0;
    for (int64_t i = threadIdx.x; i < r.V; i += kThreads) {
      const float x = xv<DT>(r, i);
      zp += token_key(x) >= t ? w(x) : 0ull;
    }
    z = block_sum(zp, sh);
  }
  plan.t = t;
  plan.Z = z;
  return plan;
}

// The first index whose running weight (weight(i), in index order) exceeds target.
template <typename F>
__device__ int64_t inverse_cdf(int64_t V, uint64_t target, F weight, Shared& sh) {
  uint64_t acc = 0;
  for (int64_t i0 = 0; i0 < V; i0 += kThreads) {
    const int64_t i = i0 + threadIdx.x;
    const unsigned long long wi = i < V ? (unsigned long long)weight(i) : 0ull;
    unsigned long long incl, total;
    U64Scan(sh.tmp.scan).InclusiveSum(wi, incl, total);
    if (threadIdx.x == 0) sh.i = -1;
    __syncthreads();
    if (acc + total > target) {
      if (wi > 0 && acc + incl > target && acc + incl - wi <= target) sh.i = i;
    }
    __syncthreads();
    const int64_t found = sh.i;
    __syncthreads();
    if (found >= 0) return found;
    acc += total;
  }
  return 0;  // unreachable: the kept mass is exact
}

template <int DT>
__device__ bool kept(const Row& r, const RowPlan& plan, int64_t i) {
  return plan.t == 0 || token_key(xv<DT>(r, i)) >= plan.t;
}

__device__ RowParams row_params(const RowParamArrays& p, int64_t b) {
  return RowParams{p.temperature[b], p.top_k[b], p.top_p[b], p.min_p[b]};
}

__device__ U32x4 row_block(const RowParamArrays& p, int64_t b, uint64_t stream_const, uint32_t block) {
  const uint64_t stream = p.per_row_stream ? (uint64_t)b : stream_const;
  return philox_block((uint64_t)p.seeds[b], stream, (uint32_t)p.offsets[b], block);
}

__device__ size_t x_bytes(int dt) { return dt == kFloat32 ? 4 : (dt == kFloat64 ? 8 : 2); }

// ------------------------------------------------------------------- sample

template <int DT>
__global__ void __launch_bounds__(kThreads) sample_kernel(SampleArgs a) {
  __shared__ Shared sh;
  for (int64_t b = blockIdx.x; b < a.B; b += gridDim.x) {
    const Row r{static_cast<const char*>(a.x) + (size_t)b * (size_t)a.V * x_bytes(DT), a.V, a.input};
    Weights w{};
    const RowPlan plan = plan_row<DT>(r, row_params(a.p, b), a.order, sh, &w);
    int64_t* ids = a.ids + b * a.num_samples;
    float* lps = a.logprobs ? a.logprobs + b * a.num_samples : nullptr;
    const double lz = plan.valid && !plan.greedy ? log((double)plan.Z) : 0.0;
    for (int64_t j = 0; j < a.num_samples; ++j) {
      int64_t id = 0;
      float lp = NAN;
      if (plan.valid && plan.greedy) {
        id = plan.argmax;
        lp = 0.0f;
      } else if (plan.valid) {
        const U32x4 words = row_block(a.p, b, kSampleStream, (uint32_t)j);
        id = inverse_cdf(a.V, draw_target(words.v[0], words.v[1], plan.Z),
                         [&](int64_t i) { return kept<DT>(r, plan, i) ? w(xv<DT>(r, i)) : 0ull; }, sh);
        lp = (float)(log((double)w(xv<DT>(r, id))) - lz);
      }
      if (threadIdx.x == 0) {
        ids[j] = id;
        if (lps) lps[j] = lp;
      }
    }
    if (threadIdx.x == 0) a.valid[b] = plan.valid ? 1 : 0;
    __syncthreads();
  }
}

// ------------------------------------------------------------------- filter

template <int DT>
__global__ void __launch_bounds__(kThreads) filter_kernel(FilterArgs a) {
  __shared__ Shared sh;
  for (int64_t b = blockIdx.x; b < a.B; b += gridDim.x) {
    const Row r{static_cast<const char*>(a.x) + (size_t)b * (size_t)a.V * x_bytes(DT), a.V, a.input};
    Weights w{};
    const RowPlan plan = plan_row<DT>(r, row_params(a.p, b), a.order, sh, &w);
    float* out = a.out + b * a.V;
    const double zd = (double)plan.Z;
    for (int64_t i = threadIdx.x; i < a.V; i += kThreads) {
      float o = a.mode == kRenorm ? 0.0f : -INFINITY;
      if (plan.valid && plan.greedy) {
        if (i == plan.argmax) o = a.mode == kRenorm ? 1.0f : xv<DT>(r, i);
      } else if (plan.valid && kept<DT>(r, plan, i)) {
        const float x = xv<DT>(r, i);
        o = a.mode == kRenorm ? (float)((double)w(x) / zd) : x;
      }
      out[i] = o;
    }
    if (threadIdx.x == 0) a.valid[b] = plan.valid ? 1 : 0;
    __syncthreads();
  }
}

// ------------------------------------------------------------------- verify

template <int DT, int QT>
__device__ bool request_ok(const VerifyArgs& a, int64_t b, const RowParams& P, int64_t n, int64_t d0, int64_t r0,
                           Shared& sh) {
  bool ok = params_ok(P, a.input) && n >= 0 && n <= a.S && (!a.cu || (a.cu[b] >= 0 && a.cu[b + 1] <= a.N));
  for (int64_t j = 0; ok && j <= n; ++j) {
    const Row r{static_cast<const char*>(a.target) + (size_t)(r0 + j) * a.V * x_bytes(DT), a.V, a.input};
    ok = !scan_row<DT>(r, sh).bad;
  }
  for (int64_t j = 0; ok && j < n; ++j) ok = a.draft[d0 + j] >= 0 && a.draft[d0 + j] < a.V;
  for (int64_t j = 0; ok && a.draft_probs && j < n; ++j) {
    const Row q{static_cast<const char*>(a.draft_probs) + (size_t)(d0 + j) * a.V * x_bytes(QT), a.V, kProbs};
    ok = !scan_row<QT>(q, sh).bad;
  }
  return ok;
}

template <int DT, int QT>
__global__ void __launch_bounds__(kThreads) verify_kernel(VerifyArgs a) {
  __shared__ Shared sh;
  for (int64_t b = blockIdx.x; b < a.B; b += gridDim.x) {
    const int64_t n = a.cu ? a.cu[b + 1] - a.cu[b] : a.S;
    const int64_t d0 = a.cu ? a.cu[b] : b * a.S;
    const int64_t r0 = a.cu ? a.cu[b] + b : b * (a.S + 1);
    int64_t* ids = a.ids + b * (a.S + 1);
    for (int64_t j = threadIdx.x; j <= a.S; j += kThreads) ids[j] = -1;
    __syncthreads();
    const RowParams P = row_params(a.p, b);
    const bool ok = request_ok<DT, QT>(a, b, P, n, d0, r0, sh);
    if (!ok) {
      if (threadIdx.x == 0) {
        a.valid[b] = 0;
        a.num_accepted[b] = 0;
        a.num_emitted[b] = 0;
      }
      __syncthreads();
      continue;
    }
    auto trow = [&](int64_t j) {
      return Row{static_cast<const char*>(a.target) + (size_t)(r0 + j) * a.V * x_bytes(DT), a.V, a.input};
    };
    int64_t j = 0, out = 0;
    for (; j < n; ++j) {
      const int64_t d = a.draft[d0 + j];
      const Row r = trow(j);
      if (a.mode == kGreedy) {
        const int64_t am = first_max<DT>(r, scan_row<DT>(r, sh).m, sh);
        if (am == d) continue;
        out = am;
        break;
      }
      Weights w{};
      const RowPlan plan = plan_row<DT>(r, P, a.order, sh, &w);
      const U32x4 words = row_block(a.p, b, kVerifyStream, (uint32_t)j);
      const void* qrow = a.draft_probs ? static_cast<const char*>(a.draft_probs) + (size_t)(d0 + j) * a.V * x_bytes(QT)
                                       : nullptr;
      const double qd = qrow ? (double)load_x<QT>(qrow, d) : 1.0;
      const double u = u01_f52(words.v[0], words.v[1]);
      if (plan.greedy) {
        if (u * qd < (d == plan.argmax ? 1.0 : 0.0)) continue;
        out = plan.argmax;
        break;
      }
      const bool dk = kept<DT>(r, plan, d);
      const uint64_t wd = dk ? w(xv<DT>(r, d)) : 0ull;
      const double pd = dk ? (double)wd / (double)plan.Z : 0.0;
      if (u * qd < pd) continue;
      if (!qrow) {
        const uint64_t R = plan.Z - wd;
        if (R == 0) {
          out = d;
          break;
        }
        out = inverse_cdf(a.V, draw_target(words.v[2], words.v[3], R),
                          [&](int64_t i) { return i != d && kept<DT>(r, plan, i) ? w(xv<DT>(r, i)) : 0ull; }, sh);
        break;
      }
      const double zd = (double)plan.Z;
      auto resid = [&](int64_t i) -> uint64_t {
        if (!kept<DT>(r, plan, i)) return 0ull;
        const uint64_t wi = w(xv<DT>(r, i));
        if (!wi) return 0ull;
        const double q = (double)load_x<QT>(qrow, i) * zd;
        return q >= (double)wi ? 0ull : wi - (uint64_t)q;
      };
      uint64_t part = 0;
      for (int64_t i = threadIdx.x; i < a.V; i += kThreads) part += resid(i);
      const uint64_t R = block_sum(part, sh);
      if (R == 0) {
        out = d;
        break;
      }
      out = inverse_cdf(a.V, draw_target(words.v[2], words.v[3], R), resid, sh);
      break;
    }
    if (j == n) {
      const Row r = trow(n);
      if (a.mode == kGreedy) {
        out = first_max<DT>(r, scan_row<DT>(r, sh).m, sh);
      } else {
        Weights w{};
        const RowPlan plan = plan_row<DT>(r, P, a.order, sh, &w);
        if (plan.greedy) {
          out = plan.argmax;
        } else {
          const U32x4 words = row_block(a.p, b, kVerifyStream, (uint32_t)n);
          out = inverse_cdf(a.V, draw_target(words.v[2], words.v[3], plan.Z),
                            [&](int64_t i) { return kept<DT>(r, plan, i) ? w(xv<DT>(r, i)) : 0ull; }, sh);
        }
      }
    }
    for (int64_t i = threadIdx.x; i < j; i += kThreads) ids[i] = a.draft[d0 + i];
    if (threadIdx.x == 0) {
      ids[j] = out;
      a.valid[b] = 1;
      a.num_accepted[b] = j;
      a.num_emitted[b] = j + 1;
    }
    __syncthreads();
  }
}

unsigned grid_for(int64_t B) { return (unsigned)(B < 65535 ? (B > 0 ? B : 1) : 65535); }

}  // namespace

void sample(const SampleArgs& a, int device, void* stream) {
  if (a.B == 0) return;
  ::rsfast::cuda::DeviceGuard guard(device);
  const cudaStream_t s = static_cast<cudaStream_t>(stream);
  switch (a.xdtype) {
    case kFloat16: sample_kernel<kFloat16><<<grid_for(a.B), kThreads, 0, s>>>(a); break;
    case kBFloat16: sample_kernel<kBFloat16><<<grid_for(a.B), kThreads, 0, s>>>(a); break;
    case kFloat64: sample_kernel<kFloat64><<<grid_for(a.B), kThreads, 0, s>>>(a); break;
    default: sample_kernel<kFloat32><<<grid_for(a.B), kThreads, 0, s>>>(a); break;
  }
  CUDA_CHECK(cudaGetLastError());
}

void filter(const FilterArgs& a, int device, void* stream) {
  if (a.B == 0) return;
  ::rsfast::cuda::DeviceGuard guard(device);
  const cudaStream_t s = static_cast<cudaStream_t>(stream);
  switch (a.xdtype) {
    case kFloat16: filter_kernel<kFloat16><<<grid_for(a.B), kThreads, 0, s>>>(a); break;
    case kBFloat16: filter_kernel<kBFloat16><<<grid_for(a.B), kThreads, 0, s>>>(a); break;
    case kFloat64: filter_kernel<kFloat64><<<grid_for(a.B), kThreads, 0, s>>>(a); break;
    default: filter_kernel<kFloat32><<<grid_for(a.B), kThreads, 0, s>>>(a); break;
  }
  CUDA_CHECK(cudaGetLastError());
}

namespace {
template <int DT>
void verify_q(const VerifyArgs& a, cudaStream_t s) {
  switch (a.qdtype) {
    case kFloat16: verify_kernel<DT, kFloat16><<<grid_for(a.B), kThreads, 0, s>>>(a); break;
    case kBFloat16: verify_kernel<DT, kBFloat16><<<grid_for(a.B), kThreads, 0, s>>>(a); break;
    case kFloat64: verify_kernel<DT, kFloat64><<<grid_for(a.B), kThreads, 0, s>>>(a); break;
    default: verify_kernel<DT, kFloat32><<<grid_for(a.B), kThreads, 0, s>>>(a); break;
  }
}
}  // namespace

void verify(const VerifyArgs& a, int device, void* stream) {
  if (a.B == 0) return;
  ::rsfast::cuda::DeviceGuard guard(device);
  const cudaStream_t s = static_cast<cudaStream_t>(stream);
  switch (a.xdtype) {
    case kFloat16: verify_q<kFloat16>(a, s); break;
    case kBFloat16: verify_q<kBFloat16>(a, s); break;
    case kFloat64: verify_q<kFloat64>(a, s); break;
    default: verify_q<kFloat32>(a, s); break;
  }
  CUDA_CHECK(cudaGetLastError());
}

}  // namespace rsfast::tokens::cuda
