// Gamma(concentration, rate) by Marsaglia & Tsang (2000), with the boost
// Gamma(a) = Gamma(a + 1) * U^(1/a) for a < 1 taken in log space (a tiny
// concentration makes U^(1/a) underflow long before the product does); and
// Beta(concentration1, concentration0) = X / (X + Y) from two such gammas.
//
// Marsaglia-Tsang for a >= 1: d = a - 1/3, c = 1 / sqrt(9 d); z ~ N(0, 1),
// v = (1 + c z)^3, accept when v > 0 and (u < 1 - 0.0331 z^4 or
// log u < z^2/2 + d (1 - v + log v)); the sample is d v. Acceptance >= 0.951.
// Samples are clamped below at the smallest normal number of the type, as
// torch does (float32 Gamma(0.01) puts ~40 % of its mass below 1e-38).
//
// Beta: one try makes one Marsaglia-Tsang try for X and one for Y and accepts
// when both accept (the tries are independent, so given both accept (X, Y) has
// the product law; acceptance >= 0.951^2). X / (X + Y) directly when neither
// is boosted, else from e = exp(log Y - log X); the smaller of x and 1 - x is
// computed as its own share (X / (X + Y) or Y / (X + Y), 1 / (1 + e) or
// e / (1 + e)) and the larger as 1 minus it, so x keeps relative precision
// near 0 and the full grid below 1 near 1; clamped into
// [smallest normal, 1 - eps/2] like torch's Beta samples.
//
// Words: Gamma float (1 block): (w0, w1) Box-Muller (first normal used),
// u = u01_f23(w2), boost uniform u01_log_arg(w3); Gamma double (2 blocks):
// normal from w0..w3, u = u01_f52(w4, w5), boost u01_f52(w6, w7).
// Beta float (2 blocks): (w0, w1) Box-Muller -> (z_x, z_y), u_x = w2, u_y = w3,
// boosts w4, w5 (u01_log_arg); Beta double (3 blocks): w0..w3 -> (z_x, z_y),
// u_x = (w4, w5), u_y = (w6, w7), boosts (w8, w9), (w10, w11).
#pragma once
#include <cmath>

#include "ops/slot_sample/core.h"

namespace rsfast {

// Per-row constants of one Marsaglia-Tsang gamma of concentration a.
template <typename T>
struct MTConst {
  T d, c;
  T boost_scale;  // 1/a when boosted (a < 1), else 0: log-sample = log(d v) + boost_scale * log(u_b)
  uint32_t boost; // all-ones when boosted (masks vectorise where bools do not)
};

template <typename T>
RSFAST_HD MTConst<T> mt_prepare(T a) {
  MTConst<T> m;
  const bool boost = a < T(1);
  m.boost = slot_mask(boost);
  const T ab = boost ? a + T(1) : a;
  m.d = ab - T(1) / T(3);
  m.c = T(1) / std::sqrt(T(9) * m.d);
  m.boost_scale = boost ? T(1) / a : T(0);
  return m;
}

// One Marsaglia-Tsang try from (z, u): accepted?, and d v (the boost-free
// sample). Branch-free in float (fast_logf).
template <typename T>
RSFAST_HD bool mt_try(const MTConst<T> m, T z, T u, T& g) {
  const T v = T(1) + m.c * z;
  const T v3 = v * v * v;
  const T z2 = z * z;
  g = m.d * v3;
  if constexpr (sizeof(T) == 4) {
    const uint32_t ok = slot_mask(u < 1.0f - 0.0331f * (z2 * z2)) |
                        slot_mask(fast_logf(u) < 0.5f * z2 + m.d * (1.0f - v3 + fast_logf(v3)));
    return (slot_mask(v > 0.0f) & ok) != 0;
  } else {
    if (!(v > 0)) return false;
    return u < 1.0 - 0.0331 * (z2 * z2) || std::log(u) < 0.5 * z2 + m.d * (1.0 - v3 + std::log(v3));
  }
}

template <typename T>
RSFAST_HD T slot_exp(T x) {
  if constexpr (sizeof(T) == 4)
    return fast_expf(x);
  else
    return std::exp(x);
}

template <typename T>
RSFAST_HD T slot_log(T x) {
  if constexpr (sizeof(T) == 4)
    return fast_logf(x);
  else
    return std::log(x);
}

// log of the sample: log(d v) + log(u_boost) / a when boosted.
template <typename T>
RSFAST_HD T mt_log(const MTConst<T> m, T g, T log_ub) {
  return slot_log(g) + m.boost_scale * log_ub;
}

// X / (X + Y) from its two shares sx = X / (X + Y) and sy = Y / (X + Y): sx
// when X is the smaller (relative precision near 0), else 1 - sy (near 1).
// Branch-free in float (slot_pick: the vectorised lanes).
template <typename T>
RSFAST_HD T beta_share(bool x_larger, T sx, T sy) {
  return slot_pick(slot_mask(x_larger), T(1) - sy, sx);
}

template <typename T>
struct GammaLaw {
  static constexpr int kParams = 2;  // concentration, rate
  static constexpr int kBlocks = sizeof(T) == 4 ? 1 : 2;
  struct Prep {
    MTConst<T> m;
    T rate;
  };

  template <class P>  // const T*, or any p[k] accessor (the CPU driver's lane view)
  RSFAST_HD static Prep prepare(const P& p) { return Prep{mt_prepare<T>(p[0]), p[1]}; }
  // Bits 0-2: concentration NaN / inf / <= 0; bits 3-5: rate.
  template <class P>
  RSFAST_HD static uint32_t invalid(const P& p) { return slot_check_positive<T>(p[0], 0) | slot_check_positive<T>(p[1], 3); }

  // The CPU driver's per-element path rebuilds this Prep in SIMD lanes (slot.cpp;
  // GCC vectorises that loop for float32 Gamma, not for the other laws: measured).
  static constexpr bool kLanePrepare = sizeof(T) == 4;
  // Variants: 0 = a >= 1, 1 = boosted (a < 1); the CPU driver runs one per chunk.
  static constexpr int kVariants = 2;
  RSFAST_HD static int variant(const Prep& q) { return q.m.boost ? 1 : 0; }

  template <int V>
  RSFAST_HD static bool try_variant(const Prep& q, const SlotWords<kBlocks>& w, T& x) {
    T z, z1, u;
    w.normal_pair(0, z, z1);
    if constexpr (sizeof(T) == 4)
      u = u01_f23(w.w[2]);
    else
      u = u01_f52(w.w[4], w.w[5]);
    T g;
    const bool ok = mt_try(q.m, z, u, g);
    if constexpr (V == 1) {
      T log_ub;
      if constexpr (sizeof(T) == 4)
        log_ub = fast_logf(u01_log_arg(w.w[3]));
      else
        log_ub = std::log(u01_f52(w.w[6], w.w[7]));
      g = slot_exp(mt_log(q.m, g, log_ub));
    }
    const T v = g / q.rate;
    x = v < SlotLimits<T>::kTiny ? SlotLimits<T>::kTiny : v;
    return ok;
  }

  RSFAST_HD static bool try_once(const Prep& q, const SlotWords<kBlocks>& w, T& x) {
    return q.m.boost ? try_variant<1>(q, w, x) : try_variant<0>(q, w, x);
  }
};

template <typename T>
struct BetaLaw {
  static constexpr int kParams = 2;  // concentration1 (of x), concentration0 (of 1 - x)
  static constexpr int kBlocks = sizeof(T) == 4 ? 2 : 3;
  struct Prep {
    MTConst<T> mx, my;
  };

  template <class P>  // const T*, or any p[k] accessor (the CPU driver's lane view)
  RSFAST_HD static Prep prepare(const P& p) { return Prep{mt_prepare<T>(p[0]), mt_prepare<T>(p[1])}; }
  // Bits 0-2: concentration1 NaN / inf / <= 0; bits 3-5: concentration0.
  template <class P>
  RSFAST_HD static uint32_t invalid(const P& p) { return slot_check_positive<T>(p[0], 0) | slot_check_positive<T>(p[1], 3); }

  // The CPU driver's per-element path rebuilds both gammas' constants in SIMD
  // lanes, as for GammaLaw (float32 only: float64 is not vectorised).
  static constexpr bool kLanePrepare = sizeof(T) == 4;
  // Variants: 0 = neither concentration below 1 (X / (X + Y) directly), 1 = log space.
  static constexpr int kVariants = 2;
  RSFAST_HD static int variant(const Prep& q) { return (q.mx.boost | q.my.boost) ? 1 : 0; }

  template <int V>
  RSFAST_HD static bool try_variant(const Prep q, const SlotWords<kBlocks>& w, T& x) {
    T zx, zy, ux, uy;
    w.normal_pair(0, zx, zy);
    if constexpr (sizeof(T) == 4) {
      ux = u01_f23(w.w[2]);
      uy = u01_f23(w.w[3]);
    } else {
      ux = u01_f52(w.w[4], w.w[5]);
      uy = u01_f52(w.w[6], w.w[7]);
    }
    T gx, gy;
    const bool okx = mt_try(q.mx, zx, ux, gx);
    const bool oky = mt_try(q.my, zy, uy, gy);
    T v;
    if constexpr (V == 0) {
      // The smaller share by its own division, the larger as 1 minus the
      // smaller: relative precision near 0 and near 1 (gx / (gx + gy) alone
      // rounds 1 - x to the spacing of gx + gy, coarser than 1's grid).
      const T s = gx + gy;
      v = beta_share(gx > gy, gx / s, gy / s);
    } else {
      T lbx, lby;
      if constexpr (sizeof(T) == 4) {
        lbx = fast_logf(u01_log_arg(w.w[4]));
        lby = fast_logf(u01_log_arg(w.w[5]));
      } else {
        lbx = std::log(u01_f52(w.w[8], w.w[9]));
        lby = std::log(u01_f52(w.w[10], w.w[11]));
      }
      // e = Y / X; x = 1 / (1 + e) near 0 (e > 1), 1 - e / (1 + e) near 1
      // (1 / (1 + e) there loses the bits of e below 1's grid).
      const T e = slot_exp(mt_log(q.my, gy, lby) - mt_log(q.mx, gx, lbx));
      const T s = T(1) + e;
      v = beta_share(e < T(1), T(1) / s, e / s);
    }
    v = v < SlotLimits<T>::kTiny ? SlotLimits<T>::kTiny : v;
    x = v > SlotLimits<T>::kBelowOne ? SlotLimits<T>::kBelowOne : v;
    return (slot_mask(okx) & slot_mask(oky)) != 0;
  }

  RSFAST_HD static bool try_once(const Prep& q, const SlotWords<kBlocks>& w, T& x) {
    return (q.mx.boost | q.my.boost) ? try_variant<1>(q, w, x) : try_variant<0>(q, w, x);
  }
};

}  // namespace rsfast
