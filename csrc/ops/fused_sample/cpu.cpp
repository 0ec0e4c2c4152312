// CPU driver of fused_sample (core: fused_sample/core.h). Each thread keeps kLanes
// output rows in SIMD lanes; one step evaluates one try of every lane (Philox
// with per-lane counters, the proposal, the target, the decision, each a loop
// over lanes that the compiler vectorises), then a lane whose row accepted
// writes it and takes the next row. Rows come in fixed chunks from a shared
// counter, so threads stay busy to the end; every row's result depends on its
// index only, so the output never depends on the thread count or the order.
// The loops below do fused_try's arithmetic in the same order (same bits).
#include <algorithm>
#include <atomic>
#include <utility>
#include <cmath>
#include <vector>

#include "parallel.h"
#include "philox_lanes.h"
#include "ops/fused_sample/api.h"
#include "ops/fused_sample/core.h"


namespace rsfast::cpu::RSFAST_CPU_ISA {
namespace {

constexpr int64_t W = kLanes;
constexpr int64_t kChunkRows = 256;  // rows a thread takes from the shared counter at a time
constexpr int kCheckSteps = 64;      // lane steps between looks at the global bound
// Below this many rows one thread runs everything (waking the pool costs more).
constexpr int64_t kFusedParallelMinRows = 2048;

RSFAST_HD float lane_uniform(const uint32_t* wd, int64_t j, int64_t l, float) { return u01_f23(wd[j * W + l]); }
RSFAST_HD double lane_uniform(const uint32_t* wd, int64_t j, int64_t l, double) {
  return u01_f52(wd[j * W + l], wd[(j + 1) * W + l]);
}
RSFAST_HD void lane_normals(const uint32_t* wd, int64_t j, int64_t l, float& z0, float& z1) {
  box_muller(wd[j * W + l], wd[(j + 1) * W + l], z0, z1);
}
RSFAST_HD void lane_normals(const uint32_t* wd, int64_t j, int64_t l, double& z0, double& z1) {
  box_muller(wd[j * W + l], wd[(j + 1) * W + l], wd[(j + 2) * W + l], wd[(j + 3) * W + l], z0, z1);
}

template <typename T>
RSFAST_HD T square(T t) {
  return t * t;
}

// fused::mixture_log_density for the W lanes of x[d * W + l], into out[l],
// for K and D known at compile time: loops over the lanes whose component
// loops are unrolled in the source (index sequences), so that GCC vectorises
// them (it does not with inner loops there) and the parameters stay in
// registers. The component terms are computed twice, as in the scalar core.
template <typename T, int D, int... Ds>
RSFAST_HD T comp_fixed(const T* x, int64_t l, const T* loc, const T* inv, T c, std::integer_sequence<int, Ds...>) {
  T ssq = 0;
  ((ssq += square((x[Ds * W + l] - loc[Ds]) * inv[Ds])), ...);
  return c - T(0.5) * ssq;
}

template <typename T, int K, int D, int... Ks>
void mixture_lanes_fixed_impl(const MixtureDensity<T>& p, const T* __restrict x, T* __restrict out,
                              std::integer_sequence<int, Ks...>) {
  T loc[K * D], inv[K * D], c[K];
  for (int i = 0; i < K * D; ++i) {
    loc[i] = p.loc[i];
    inv[i] = p.inv_scale[i];
  }
  for (int k = 0; k < K; ++k) c[k] = p.c[k];
  const auto ds = std::make_integer_sequence<int, D>{};
  T bestv[W], sv[W];
#pragma omp simd
  for (int64_t l = 0; l < W; ++l) {
    T best = -INFINITY;
    ((best = std::max(best, comp_fixed<T, D>(x, l, loc + Ks * D, inv + Ks * D, c[Ks], ds))), ...);
    bestv[l] = best;
  }
#pragma omp simd
  for (int64_t l = 0; l < W; ++l) {
    T s = 0;
    ((s += fused::exp_(comp_fixed<T, D>(x, l, loc + Ks * D, inv + Ks * D, c[Ks], ds) - bestv[l])), ...);
    sv[l] = s;
  }
#pragma omp simd
  for (int64_t l = 0; l < W; ++l) out[l] = bestv[l] > -INFINITY ? bestv[l] + fused::log_(sv[l]) : bestv[l];
}

template <typename T, int K, int D>
void mixture_lanes_fixed(const MixtureDensity<T>& p, const T* __restrict x, T* __restrict out) {
  mixture_lanes_fixed_impl<T, K, D>(p, x, out, std::make_integer_sequence<int, K>{});
}

// The same for any K and D; v is scratch [K * W].
template <typename T>
void mixture_lanes_any(const MixtureDensity<T>& p, const T* __restrict x, T* __restrict v, T* __restrict out) {
  const int64_t K = p.ncomp, D = p.dim;
  for (int64_t k = 0; k < K; ++k) {
    T ssq[W];
#pragma omp simd
    for (int64_t l = 0; l < W; ++l) ssq[l] = 0;
    for (int64_t d = 0; d < D; ++d) {
      const T lo = p.loc[k * D + d], is = p.inv_scale[k * D + d];
#pragma omp simd
      for (int64_t l = 0; l < W; ++l) {
        const T t = (x[d * W + l] - lo) * is;
        ssq[l] += t * t;
      }
    }
    const T c = p.c[k];
#pragma omp simd
    for (int64_t l = 0; l < W; ++l) v[k * W + l] = c - T(0.5) * ssq[l];
  }
  T best[W], s[W];
#pragma omp simd
  for (int64_t l = 0; l < W; ++l) {
    best[l] = -INFINITY;
    s[l] = 0;
  }
  for (int64_t k = 0; k < K; ++k)
#pragma omp simd
    for (int64_t l = 0; l < W; ++l) best[l] = v[k * W + l] > best[l] ? v[k * W + l] : best[l];
  for (int64_t k = 0; k < K; ++k)
#pragma omp simd
    for (int64_t l = 0; l < W; ++l) s[l] += fused::exp_(v[k * W + l] - best[l]);
#pragma omp simd
  for (int64_t l = 0; l < W; ++l) out[l] = best[l] > -INFINITY ? best[l] + fused::log_(s[l]) : best[l];
}

template <typename T, int K>
bool mixture_lanes_k(const MixtureDensity<T>& p, const T* x, T* out) {
  switch (p.dim) {
    case 1: mixture_lanes_fixed<T, K, 1>(p, x, out); return true;
    case 2: mixture_lanes_fixed<T, K, 2>(p, x, out); return true;
    case 3: mixture_lanes_fixed<T, K, 3>(p, x, out); return true;
    case 4: mixture_lanes_fixed<T, K, 4>(p, x, out); return true;
    default: return false;
  }
}

template <typename T>
void mixture_lanes(const MixtureDensity<T>& p, const T* __restrict x, T* __restrict v, T* __restrict out) {
  bool done = false;
  switch (p.ncomp) {
    case 1: done = mixture_lanes_k<T, 1>(p, x, out); break;
    case 2: done = mixture_lanes_k<T, 2>(p, x, out); break;
    case 3: done = mixture_lanes_k<T, 3>(p, x, out); break;
    case 4: done = mixture_lanes_k<T, 4>(p, x, out); break;
    default: break;
  }
  if (!done) mixture_lanes_any(p, x, v, out);
}

struct Shared {
  std::atomic<int64_t> next_chunk{0};
  std::atomic<int64_t> proposals{0};
  std::atomic<int> stopped{0};
};

struct Totals {
  int64_t accepted = 0, nan = 0, overweight = 0, posinf = 0;
  double max_ratio = -INFINITY;
};

// One thread's work: lanes fed with rows from the shared chunk counter until
// the rows run out or a bound stops everyone.
template <typename T>
void worker(const FusedParams<T>& f, const FusedArgs& a, Shared& sh, Totals& tot) {
  constexpr int64_t w = sizeof(T) == 4 ? 1 : 2;
  const ProposalParams<T>& q = f.q;
  const FusedLayout& L = f.layout;
  const int64_t D = q.dim, B = L.blocks, n = a.n;
  const uint32_t k0 = (uint32_t)a.seed, k1 = (uint32_t)(a.seed >> 32);
  const MixtureDensity<T> qmix{D, q.ncomp, q.a, f.q_inv_scale, q.c};
  const int64_t kmax = std::max<int64_t>(q.kind == kMixtureNormal ? q.ncomp : 1, f.p.ncomp);
  T* out = static_cast<T*>(a.out);

  std::vector<uint32_t> words((size_t)(4 * B * W));
  std::vector<T> xs((size_t)(std::max<int64_t>(D, 1) * W)), vs((size_t)(kmax * W));
  alignas(64) uint32_t c0[W], lo[W], hi[W], tries[W], active[W], acc[W];
  alignas(64) int64_t row[W];
  alignas(64) T lq[W], lp[W];
  alignas(64) int64_t comp[W];

  int64_t next = 0, end = 0;  // rows of this thread's current chunk
  auto take_row = [&](int64_t l) {
    if (next == end) {
      const int64_t c = sh.next_chunk.fetch_add(1, std::memory_order_relaxed);
      next = std::min(n, c * kChunkRows);
      end = std::min(n, next + kChunkRows);
    }
    if (next < end) {
      row[l] = next++;
      lo[l] = (uint32_t)row[l];
      hi[l] = (uint32_t)((uint64_t)row[l] >> 32);
      tries[l] = 0;
      active[l] = 1;
    } else {
      active[l] = 0;
      row[l] = 0;
      lo[l] = hi[l] = tries[l] = 0;
    }
  };
  for (int64_t l = 0; l < W; ++l) take_row(l);

  int64_t accepted = 0, nan = 0, over = 0, pinf = 0, pending = 0;
  T mx = -INFINITY;
  int steps = 0;
  bool stop = false;
  while (!stop) {
    uint32_t live = 0;
    for (int64_t l = 0; l < W; ++l) live += active[l];
    if (live == 0) break;

    // Words of this try of every lane.
    for (int64_t b = 0; b < B; ++b) {
#pragma omp simd
      for (int64_t l = 0; l < W; ++l) c0[l] = tries[l] * (uint32_t)B + (uint32_t)b;
      philox_lanes_counters<(int)W>(k0, k1, c0, lo, hi, a.offset, words.data() + 4 * b * W);
    }
    const uint32_t* wd = words.data();
    T* x = xs.data();

    // Proposal: x [D][W] and log q.
    if (q.kind == kUniform) {
      for (int64_t d = 0; d < D; ++d) {
        const T lo_d = q.a[d], wid = q.b[d];
#pragma omp simd
        for (int64_t l = 0; l < W; ++l) x[d * W + l] = lo_d + wid * lane_uniform(wd, w * d, l, T(0));
      }
      const T c = q.c[0];
#pragma omp simd
      for (int64_t l = 0; l < W; ++l) lq[l] = c;
    } else {
      T ssq[W];
#pragma omp simd
      for (int64_t l = 0; l < W; ++l) ssq[l] = 0;
      const bool mix = q.kind == kMixtureNormal;
      if (mix)
        for (int64_t l = 0; l < W; ++l) comp[l] = pick_component(q.cdf, q.ncomp, lane_uniform(wd, 0, l, T(0)));
      for (int64_t d = 0; d < D; d += 2) {
        const int64_t j = L.comp_words + w * d;
        const bool two = d + 1 < D;
        if (!mix) {
          const T l0 = q.a[d], s0 = q.b[d];
          if (two) {
            const T l1 = q.a[d + 1], s1 = q.b[d + 1];
#pragma omp simd
            for (int64_t l = 0; l < W; ++l) {
              T z0, z1;
              lane_normals(wd, j, l, z0, z1);
              x[d * W + l] = l0 + s0 * z0;
              x[(d + 1) * W + l] = l1 + s1 * z1;
              ssq[l] += z0 * z0;
              ssq[l] += z1 * z1;
            }
          } else {
#pragma omp simd
            for (int64_t l = 0; l < W; ++l) {
              T z0, z1;
              lane_normals(wd, j, l, z0, z1);
              x[d * W + l] = l0 + s0 * z0;
              ssq[l] += z0 * z0;
            }
          }
        } else if (two) {
#pragma omp simd
          for (int64_t l = 0; l < W; ++l) {
            T z0, z1;
            lane_normals(wd, j, l, z0, z1);
            const int64_t o = comp[l] * D + d;
            x[d * W + l] = q.a[o] + q.b[o] * z0;
            x[(d + 1) * W + l] = q.a[o + 1] + q.b[o + 1] * z1;
          }
        } else {
#pragma omp simd
          for (int64_t l = 0; l < W; ++l) {
            T z0, z1;
            lane_normals(wd, j, l, z0, z1);
            const int64_t o = comp[l] * D + d;
            x[d * W + l] = q.a[o] + q.b[o] * z0;
          }
        }
      }
      if (mix) {
        mixture_lanes(qmix, x, vs.data(), lq);
      } else {
        const T c = q.c[0];
#pragma omp simd
        for (int64_t l = 0; l < W; ++l) lq[l] = c - T(0.5) * ssq[l];
      }
    }

    // Target and decision.
    mixture_lanes(f.p, x, vs.data(), lp);
    const int64_t ja = L.comp_words + L.value_words;
    uint32_t s_nan = 0, s_over = 0, s_pinf = 0, s_acc = 0;
    T s_mx = -INFINITY;
#pragma omp simd reduction(+ : s_nan, s_over, s_pinf, s_acc) reduction(max : s_mx)
    for (int64_t l = 0; l < W; ++l) {
      const uint32_t a1 = w == 2 ? wd[(ja + 1) * W + l] : 0u;
      const Decision<T> dec = decide<T>(lp[l], lq[l], f.log_M, U32x4{{wd[ja * W + l], a1, 0, 0}});
      const uint32_t on = active[l];
      acc[l] = dec.accept & on;
      s_acc += dec.accept & on;
      s_nan += dec.nan & on;
      s_over += dec.overweight & on;
      s_pinf += dec.posinf & on;
      const T r = on ? dec.log_ratio : (T)-INFINITY;
      s_mx = r > s_mx ? r : s_mx;
    }
    nan += s_nan;
    over += s_over;
    pinf += s_pinf;
    pending += live;
    mx = s_mx > mx ? s_mx : mx;

    // Rejected lanes try again; accepted lanes write their row and take the next one.
    if (s_acc) {
      for (int64_t l = 0; l < W; ++l) {
        if (!acc[l]) continue;
        T* o = out + row[l] * D;
        for (int64_t d = 0; d < D; ++d) o[d] = x[d * W + l];
        ++accepted;
        take_row(l);
        tries[l] = UINT32_MAX;  // +1 below makes it 0
      }
    }
    uint32_t at_limit = 0;
#pragma omp simd reduction(+ : at_limit)
    for (int64_t l = 0; l < W; ++l) {
      tries[l] += 1;
      at_limit += (active[l] & (uint32_t)(tries[l] >= L.max_tries));
    }
    if (at_limit) {  // a row would run out of its stream: stop as the bound does
      sh.stopped.store(1, std::memory_order_relaxed);
      stop = true;
    }
    if (++steps == kCheckSteps) {
      steps = 0;
      const int64_t total = sh.proposals.fetch_add(pending, std::memory_order_relaxed) + pending;
      pending = 0;
      if (total > a.max_proposals) sh.stopped.store(1, std::memory_order_relaxed);
      if (sh.stopped.load(std::memory_order_relaxed)) stop = true;
    }
  }
  sh.proposals.fetch_add(pending, std::memory_order_relaxed);
  tot.accepted = accepted;
  tot.nan = nan;
  tot.overweight = over;
  tot.posinf = pinf;
  tot.max_ratio = (double)mx;
}

template <typename T>
void run(const FusedArgs& a) {
  const FusedParams<T> f = fused_params_of<T>(a);
  Shared sh;
  int nt = 1;
#ifdef _OPENMP
  if (a.n >= kFusedParallelMinRows) nt = std::max(1, std::min(kMaxThreads, omp_get_max_threads()));
#endif
  Totals per[kMaxThreads];
#pragma omp parallel num_threads(nt) if (nt > 1)
  {
#ifdef _OPENMP
    const int id = omp_get_thread_num();
#else
    const int id = 0;
#endif
    worker<T>(f, a, sh, per[id]);
  }
  int64_t* c = a.counts;
  double mx = a.max_log_ratio[0];
  for (int i = 0; i < nt; ++i) {
    c[kFusedAccepted] += per[i].accepted;
    c[kFusedNaN] += per[i].nan;
    c[kFusedOverweight] += per[i].overweight;
    c[kFusedPosInf] += per[i].posinf;
    if (per[i].max_ratio > mx) mx = per[i].max_ratio;
  }
  a.max_log_ratio[0] = mx;
  c[kFusedProposals] += sh.proposals.load();
  if (sh.stopped.load()) c[kFusedStopped] = 1;
}

}  // namespace

void fused_sample(const FusedArgs& args) {
  if (args.n <= 0) return;
  if (args.dtype == kFloat32)
    run<float>(args);
  else
    run<double>(args);
}

}  // namespace rsfast::cpu::RSFAST_CPU_ISA
