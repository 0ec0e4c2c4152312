// Fused ("slot") sampler core: propose from a built-in proposal, evaluate a
// mixture-of-normals target, accept, all in one pass per output row (design
// §3, slot mode). Shared by csrc/ops/fused_sample/cpu.cpp (rows in SIMD lanes, the same
// arithmetic written as loops over lanes) and csrc/ops/fused_sample/cuda.cu (one row per
// thread, these functions as they are).
//
// Stream of output row i at op offset o: try t (t = 0, 1, ...) reads the words
// of Philox blocks (t * B + b, i, o), b = 0 .. B - 1, in order (word j is word
// j % 4 of block j / 4). A try consumes, in this order:
//   MixtureNormal proposal: 1 word (float32) or 2 (float64): the component
//   values: Normal / MixtureNormal: Box-Muller pairs, 2 words per pair for
//           float32, 4 for float64 (the second normal of a last odd pair is
//           dropped); Uniform: 1 word per value (float32) or 2 (float64)
//   accept: 1 word (float32, log of a 31-bit uniform) or 2 (float64, 52-bit),
//           read by accept_compact/core.h's decide like accept_compact does
// and B = ceil(words / 4). Row i's result is its first accepted try; its
// proposals are the tries up to and including that one. So every row is a
// pure function of (inputs, seed, offset, i), whatever the thread count or
// lane width, and a try needs no memory outside the row.
#pragma once
#include <cmath>

#include "ops/accept_compact/core.h"
#include "ops/fused_sample/api.h"
#include "rsfast/fastmath.h"
#include "rsfast/philox.h"
#include "ops/propose/core.h"

namespace rsfast {


// A mixture of K diagonal normals as a log density:
//   log sum_k exp(c_k - 0.5 * sum_d ((x_d - loc_kd) * inv_scale_kd)^2)
// with c_k = log w_k - sum_d log scale_kd - D/2 log 2 pi (computed in torch).
template <typename T>
struct MixtureDensity {
  int64_t dim;
  int64_t ncomp;
  const T* loc;        // [K, D]
  const T* inv_scale;  // [K, D]
  const T* c;          // [K]
};

namespace fused {

RSFAST_HD float exp_(float x) { return fast_expf(x); }
RSFAST_HD double exp_(double x) { return std::exp(x); }
RSFAST_HD float log_(float x) { return fast_logf(x); }
RSFAST_HD double log_(double x) { return std::log(x); }

// c_k - 0.5 * |(x - loc_k) * inv_scale_k|^2 for x[d * stride].
template <typename T>
RSFAST_HD T component_log(const MixtureDensity<T>& p, int64_t k, const T* x, int64_t stride) {
  T ssq = 0;
  for (int64_t d = 0; d < p.dim; ++d) {
    const T t = (x[d * stride] - p.loc[k * p.dim + d]) * p.inv_scale[k * p.dim + d];
    ssq += t * t;
  }
  return p.c[k] - T(0.5) * ssq;
}

// The mixture's log density at x[d * stride]: the largest component term
// plus log of sum_k exp(term_k - largest) (in [1, K]); -inf where every term
// is -inf. The CPU lanes version in fused.cpp does the same arithmetic.
template <typename T>
RSFAST_HD T mixture_log_density(const MixtureDensity<T>& p, const T* x, int64_t stride = 1) {
  T best = -INFINITY;
  for (int64_t k = 0; k < p.ncomp; ++k) {
    const T v = component_log(p, k, x, stride);
    best = v > best ? v : best;
  }
  if (!(best > -INFINITY)) return best;
  T s = 0;
  for (int64_t k = 0; k < p.ncomp; ++k) s += exp_(component_log(p, k, x, stride) - best);
  return best + log_(s);
}

}  // namespace fused

// Word counts and blocks of one try (see the top of this file).
struct FusedLayout {
  int64_t comp_words;   // the mixture proposal's component draw (0 for other kinds)
  int64_t value_words;  // the D proposal values
  int64_t words;        // comp + values + accept
  uint32_t blocks;      // B = ceil(words / 4)
  uint32_t max_tries;   // tries a row may take: t * B + b must fit 32 bits
};

template <typename T>
RSFAST_HD FusedLayout fused_layout(int kind, int64_t dim) {
  constexpr int64_t w = sizeof(T) == 4 ? 1 : 2;  // words per uniform
  FusedLayout L;
  L.comp_words = kind == kMixtureNormal ? w : 0;
  L.value_words = kind == kUniform ? w * dim : 2 * w * ((dim + 1) / 2);
  L.words = L.comp_words + L.value_words + w;
  const int64_t blocks = (L.words + 3) / 4;
  L.blocks = blocks >= 0xFFFFFFFFll ? 0xFFFFFFFFu : (uint32_t)blocks;
  L.max_tries = 0xFFFFFFFFu / L.blocks;
  return L;
}

// Everything a try reads besides the stream: the proposal (ProposalParams of
// propose/core.h, from ops.derived_params), the inverse scales of a mixture
// proposal, the target, the envelope.
template <typename T>
struct FusedParams {
  ProposalParams<T> q;
  const T* q_inv_scale;  // [K_q, D] for a MixtureNormal proposal, else unused
  MixtureDensity<T> p;
  T log_M;
  FusedLayout layout;
};

template <typename T>
RSFAST_HD FusedParams<T> fused_params_of(const FusedArgs& a) {
  FusedParams<T> f;
  f.q = ProposalParams<T>{a.kind,
                          a.dim,
                          a.ncomp_q,
                          static_cast<const T*>(a.q_a),
                          static_cast<const T*>(a.q_b),
                          static_cast<const T*>(a.q_c),
                          static_cast<const T*>(a.q_cdf)};
  f.q_inv_scale = static_cast<const T*>(a.q_inv_scale);
  f.p = MixtureDensity<T>{a.dim, a.ncomp_p, static_cast<const T*>(a.p_loc), static_cast<const T*>(a.p_inv_scale),
                          static_cast<const T*>(a.p_c)};
  f.log_M = (T)a.log_M;
  f.layout = fused_layout<T>(a.kind, a.dim);
  return f;
}

// The words of one try, drawn one Philox block at a time as they are read in
// increasing order (each block once).
struct TryWords {
  uint32_t k0, k1, lo, hi, offset, base;
  uint32_t cur;
  U32x4 blk;
  RSFAST_HD uint32_t operator()(int64_t j) {
    const uint32_t b = (uint32_t)(j >> 2);
    if (b != cur) {
      blk = philox4x32_10(base + b, lo, hi, offset, k0, k1);
      cur = b;
    }
    return blk.v[j & 3];
  }
};

RSFAST_HD float try_uniform(TryWords& w, int64_t j, float) { return u01_f23(w(j)); }
RSFAST_HD double try_uniform(TryWords& w, int64_t j, double) { return u01_f52(w(j), w(j + 1)); }
RSFAST_HD void try_normals(TryWords& w, int64_t j, float& z0, float& z1) { box_muller(w(j), w(j + 1), z0, z1); }
RSFAST_HD void try_normals(TryWords& w, int64_t j, double& z0, double& z1) {
  const uint32_t r0 = w(j), r1 = w(j + 1), r2 = w(j + 2), r3 = w(j + 3);
  box_muller(r0, r1, r2, r3, z0, z1);
}

// Try t of row `row`: the candidate x [D] (written to x[d * stride]) and its
// decision against the target.
template <typename T>
RSFAST_HD Decision<T> fused_try(const FusedParams<T>& f, uint64_t seed, uint32_t offset, uint64_t row, uint32_t t,
                                T* x, int64_t stride = 1) {
  constexpr int64_t w = sizeof(T) == 4 ? 1 : 2;
  const ProposalParams<T>& q = f.q;
  const int64_t D = q.dim;
  TryWords words{(uint32_t)seed,      (uint32_t)(seed >> 32), (uint32_t)row, (uint32_t)(row >> 32), offset,
                 t * f.layout.blocks, 0xFFFFFFFFu,           U32x4{{0, 0, 0, 0}}};
  T lq;
  if (q.kind == kUniform) {
    for (int64_t d = 0; d < D; ++d) x[d * stride] = q.a[d] + q.b[d] * try_uniform(words, w * d, T(0));
    lq = q.c[0];
  } else {
    int64_t comp = 0;
    if (q.kind == kMixtureNormal) comp = pick_component(q.cdf, q.ncomp, try_uniform(words, 0, T(0)));
    const T* loc = q.a + comp * D;
    const T* scale = q.b + comp * D;
    T ssq = 0;
    for (int64_t d = 0; d < D; d += 2) {
      T z0, z1;
      try_normals(words, f.layout.comp_words + w * d, z0, z1);
      x[d * stride] = loc[d] + scale[d] * z0;
      ssq += z0 * z0;
      if (d + 1 < D) {
        x[(d + 1) * stride] = loc[d + 1] + scale[d + 1] * z1;
        ssq += z1 * z1;
      }
    }
    if (q.kind == kMixtureNormal)
      lq = fused::mixture_log_density(MixtureDensity<T>{D, q.ncomp, q.a, f.q_inv_scale, q.c}, x, stride);
    else
      lq = q.c[0] - T(0.5) * ssq;
  }
  const T lp = fused::mixture_log_density(f.p, x, stride);
  const int64_t j = f.layout.comp_words + f.layout.value_words;
  const uint32_t a0 = words(j);
  const uint32_t a1 = w == 2 ? words(j + 1) : 0u;
  return decide<T>(lp, lq, f.log_M, U32x4{{a0, a1, 0, 0}});
}

}  // namespace rsfast
