// Discrete laws of slot mode (slot_sample/core.h): Poisson(rate) and Binomial(total_count,
// probs). Counts are written as floating-point integers, like torch's samples.
//
// Algorithms (W. Hörmann, 1993):
//   Poisson,  rate >= 10:          PTRS, "The transformed rejection method for
//                                  generating Poisson random variables"; the squeeze
//                                  accepts 67 % (rate 100) to 80 % (large rates)
//                                  of candidates without a log
//   Poisson,  0 < rate < 10:       inversion, sequential search from 0
//   Binomial, n min(p, q) >= 10:   BTRS, "The generation of binomial random variates";
//                                  squeeze: 51 % at n p q = 21, -> 79 % for large npq
//   Binomial, n min(p, q) < 10:    inversion, sequential search from 0
// with Binomial(n, p) = n - Binomial(n, 1 - p) for p > 1/2, and the degenerate
// cases (rate 0, n 0, p 0 or 1) written directly.
//
// All arithmetic is in double whatever the output dtype (a float32 log-factorial
// at k ~ 1e7 would be off by whole units); the dtype only picks the uniforms:
//   float32: 32-bit uniforms (k + 1/2) 2^-32 from one word each: a try of PTRS /
//            BTRS makes two candidates (words 0-1, then 2-3), inversion one
//            (word 0);
//   float64: 52-bit uniforms u01_f52 from two words each: a try makes one PTRS /
//            BTRS candidate (words 0-1, 2-3) or one inversion (words 0-1).
// One Philox block per try (kBlocks = 1). Every uniform is strictly inside (0, 1),
// so 1/2 - |u - 1/2| > 0 and every log argument is positive.
//
// The exact tests compare with log pmf written through the Stirling correction
//   fc(k) = log k! - [(k + 1/2) log(k + 1) - (k + 1) + log(2 pi) / 2]
// so that no term is as large as log k! itself (whose rounding, ~1e-8 at
// k ~ 1e7, would otherwise enter the acceptance threshold).
#pragma once
#include <cmath>

#include "rsfast/common.h"
#include "rsfast/fastmath.h"
#include "rsfast/philox.h"
#include "ops/slot_sample/core.h"

namespace rsfast {

// Inversion is used below these means (rate, or n min(p, q)).
constexpr double kPoissonInversionMax = 10.0;
constexpr double kBinomialInversionMax = 10.0;
// Below this n, Binomial's first cell (1 - p)^n is a product of squares
// (binomial_p0): in SIMD lanes a third the cost of a log and an exp.
constexpr double kBinomialPowMax = 128.0;
// Sequential search gives up after this many cells (the mean is < 10: the mass
// beyond is < 1e-60) and the try fails: only a uniform within rounding of 1 of
// the last cumulative sum gets there.
constexpr int kInversionMaxCells = 120;
// Cumulative probabilities of the first cells, kept per row: most draws are
// decided by a branch-free count over them (a sequential search mispredicts its
// exit branch once per draw).
constexpr int kInversionTable = 8;
// Cells counted in SIMD lanes by the per-element path (try_lane): the first
// 10 in every lane group (P(X >= 10) < 1 % for a mean up to 4), 3 more at a
// time for a group with a draw past them (resumed, not rebuilt), up to 16
// (P(X >= 16) < 5 % for a mean below 10); then the scalar search.
constexpr int kLaneCellsFirst = 10;
constexpr int kLaneCellsStep = 3;
constexpr int kLaneCellsLast = 16;
// try_lane's x for a draw past the lanes' cells (never a count).
constexpr double kLanePast = -2.0;

// The lane-pass constants of the discrete laws, as the CPU driver reads them
// (Law::kLaneCellsFirst, ...).
struct InversionLanes {
  static constexpr int kLaneCellsFirst = rsfast::kLaneCellsFirst, kLaneCellsStep = rsfast::kLaneCellsStep,
                       kLaneCellsLast = rsfast::kLaneCellsLast;
  static constexpr double kLanePast = rsfast::kLanePast;
};

// fc(k) for k = 0..15 (computed to 40 digits); a Stirling series above.
RSFAST_HD double stirling_correction(double k) {
  if (k < 16.0) {
    const double table[16] = {
        8.10614667953272611e-02, 4.13406959554092970e-02, 2.76779256849983384e-02, 2.07906721037650934e-02,
        1.66446911898211931e-02, 1.38761288230707484e-02, 1.18967099458917695e-02, 1.04112652619720962e-02,
        9.25546218271273285e-03, 8.33056343336287079e-03, 7.57367548795184059e-03, 6.94284010720952992e-03,
        6.40899418800420714e-03, 5.95137011275884750e-03, 5.55473355196280105e-03, 5.20765591960964044e-03};
    return table[(int)k];
  }
  // 1/(12x) - 1/(360x^3) + 1/(1260x^5) - 1/(1680x^7), x = k + 1 >= 17: the first
  // omitted term is < 1/(1188 x^9) < 1e-14.
  const double x = k + 1.0, r = 1.0 / x, r2 = r * r;
  return r * (1.0 / 12 - r2 * (1.0 / 360 - r2 * (1.0 / 1260 - r2 * (1.0 / 1680))));
}

// log of the Poisson pmf at an integer k >= 0:
//   -lam + k log lam - log k! = k log(lam/(k+1)) + (k + 1 - lam) - log(k+1)/2 - log(2 pi)/2 - fc(k)
// with log(lam/(k+1)) = log1p((lam - k - 1)/(k + 1)): the difference is exact for k near lam.
RSFAST_HD double poisson_log_pmf(double k, double lam) {
  const double k1 = k + 1.0;
  const double t = k > 0.0 ? k * log1p((lam - k1) / k1) : 0.0;
  return t + (k1 - lam) - 0.5 * log(k1) - 0.91893853320467274178 - stirling_correction(k);
}

// A uniform in (0, 1) from one word, as a double: (w + 1/2) 2^-32. Through a
// signed conversion (exact: w - 2^31 + 2^31 + 1/2): AVX2 converts int32, not
// uint32, to double in SIMD lanes.
RSFAST_HD double u01_u32(uint32_t w) {
  return ((double)(int32_t)(w ^ 0x80000000u) + 2147483648.5) * 2.3283064365386962890625e-10;
}
// u01_f52 (philox.h) with the 52-bit integer moved into a double through the
// exponent bits (2^52 + k, less 2^52): the same value, in SIMD lanes (AVX2
// has no int64 -> double conversion).
RSFAST_HD double u01_f52_lanes(uint32_t hi, uint32_t lo) {
  const uint64_t k = ((uint64_t)(hi >> 6) << 26) | (uint64_t)(lo >> 6);
  return (bits_double(0x4330000000000000ull | k) - 4503599627370496.0 + 0.5) * 2.220446049250313080847e-16;
}

// ---------------------------------------------------------------- inversion

// Inversion by sequential search on the cumulative sums F_j = F_{j-1} + p_j,
// p_j = p_{j-1} * factor(j - 1), F_0 = p_0: the draw is the first j with u <= F_j.
struct InversionTable {
  double F[kInversionTable];  // F_0 .. F_7
  double p_last;              // p_7
};

template <class Factor>
RSFAST_HD InversionTable inversion_table(double p0, const Factor& factor) {
  InversionTable t;
  double p = p0, F = p0;
  t.F[0] = F;
  for (int j = 1; j < kInversionTable; ++j) {
    p *= factor(j - 1);
    F += p;
    t.F[j] = F;
  }
  t.p_last = p;
  return t;
}

// The first j with u <= F_j, or false past kInversionMaxCells.
template <class Factor>
RSFAST_HD bool inversion_search(const InversionTable& t, double u, const Factor& factor, double& k) {
  int c = 0;
  for (int j = 0; j < kInversionTable; ++j) c += u > t.F[j] ? 1 : 0;  // F is non-decreasing
  if (c < kInversionTable) {
    k = (double)c;
    return true;
  }
  double p = t.p_last, F = t.F[kInversionTable - 1];
  for (int j = kInversionTable; j < kInversionMaxCells; ++j) {
    p *= factor(j - 1);
    F += p;
    if (u <= F) {
      k = (double)j;
      return true;
    }
  }
  return false;
}

// Cells kFrom .. kTo - 1 of inversion_table, built on the fly from s (cell
// p0 first when kFrom is 0), counted into s.c: branch-free, for SIMD lanes.
// s.c < kTo: the draw is s.c (the first j with u <= F_j).
template <int kFrom, int kTo, class Factor>
RSFAST_HD void inversion_count_lanes(LaneCells& s, double p0, double u, const Factor& factor) {
  double p = s.p, F = s.F, c = s.c;
  if constexpr (kFrom == 0) {
    p = p0;
    F = p0;
    c = u > F ? 1.0 : 0.0;
  }
  for (int j = kFrom == 0 ? 1 : kFrom; j < kTo; ++j) {
    p = p * factor(j - 1);
    F = F + p;
    c += u > F ? 1.0 : 0.0;
  }
  s = LaneCells{p, F, c};
}

// The uniform of an inversion try: word 0 (float32 samples) or words 0-1.
template <typename T, int K>
RSFAST_HD double inversion_uniform_lanes(const SlotWords<K>& w) {
  if constexpr (sizeof(T) == 4)
    return u01_u32(w.w[0]);
  else
    return u01_f52_lanes(w.w[0], w.w[1]);
}

// ---------------------------------------------------------------- Poisson

// p_{j+1} / p_j of Poisson(lam). A product with the reciprocal (a constant
// where the cells are unrolled), not a division: SIMD lanes build 16 cells a
// row (try_lane).
struct PoissonFactor {
  double lam;
  RSFAST_HD double operator()(int j) const { return lam * (1.0 / (double)(j + 1)); }
};

struct PoissonPrep {
  double lam;
  InversionTable inv;  // inversion: cells of e^-lam lam^j / j!
  double a, b;      // PTRS hat
  double inv_alpha;
  double vr;        // PTRS squeeze bound on v
  int mode;         // 0: rate 0 (always 0), 1: inversion, 2: PTRS
};

RSFAST_HD PoissonPrep poisson_prepare(double lam) {
  PoissonPrep q{};
  q.lam = lam;
  q.mode = lam > 0.0 ? (lam < kPoissonInversionMax ? 1 : 2) : 0;
  if (q.mode == 1) q.inv = inversion_table(fast_exp(-lam), PoissonFactor{lam});
  if (q.mode == 2) {
    // Hörmann (1993), PTRS step 0.
    q.b = 0.931 + 2.53 * sqrt(lam);
    q.a = -0.059 + 0.02483 * q.b;
    q.inv_alpha = 1.1239 + 1.1328 / (q.b - 3.4);
    q.vr = 0.9277 - 3.6224 / (q.b - 2.0);
  }
  return q;
}

RSFAST_HD bool poisson_inversion(const PoissonPrep& q, double u, double& k) {
  return inversion_search(q.inv, u, PoissonFactor{q.lam}, k);
}

// One PTRS candidate from uniforms (u, v): steps 1-3.3 of Hörmann (1993).
RSFAST_HD bool poisson_ptrs(const PoissonPrep& q, double u, double v, double& k) {
  u -= 0.5;
  const double us = 0.5 - fabs(u);
  k = floor((2.0 * q.a / us + q.b) * u + q.lam + 0.43);
  if (us >= 0.07 && v <= q.vr) return true;  // squeeze: under the pmf for sure
  if (k < 0.0 || (us < 0.013 && v > us)) return false;
  // v scaled to the hat's height at u, against the pmf, on the log scale.
  return log(v * q.inv_alpha / (q.a / (us * us) + q.b)) <= poisson_log_pmf(k, q.lam);
}

template <typename T>
struct PoissonLaw : InversionLanes {
  static constexpr int kParams = 1;  // rate
  static constexpr int kBlocks = 1;
  using Prep = PoissonPrep;

  RSFAST_HD static Prep prepare(const T* p) { return poisson_prepare((double)p[0]); }
  // Bits 0-2: rate NaN / inf / < 0.
  template <class P>
  RSFAST_HD static uint32_t invalid(const P& p) {
    return slot_check_finite(p[0], 1) | slot_bit<T>(p[0] != p[0], 0) | slot_bit<T>(!(p[0] >= T(0)), 2);
  }

  RSFAST_HD static bool try_once(const Prep& q, const SlotWords<kBlocks>& w, T& x) {
    double k = 0.0;
    bool ok = true;
    if constexpr (sizeof(T) == 4) {
      if (q.mode == 1) {
        ok = poisson_inversion(q, u01_u32(w.w[0]), k);
      } else if (q.mode == 2) {
        ok = poisson_ptrs(q, u01_u32(w.w[0]), u01_u32(w.w[1]), k);
        if (!ok) ok = poisson_ptrs(q, u01_u32(w.w[2]), u01_u32(w.w[3]), k);
      }
    } else {
      if (q.mode == 1)
        ok = poisson_inversion(q, u01_f52(w.w[0], w.w[1]), k);
      else if (q.mode == 2)
        ok = poisson_ptrs(q, u01_f52(w.w[0], w.w[1]), u01_f52(w.w[2], w.w[3]), k);
    }
    x = (T)k;
    return ok;
  }

  // The per-element path's SIMD pass (slot_sample/cpu.cpp) over inversion
  // cells kFrom .. kTo - 1, resumed from s (built from e^-rate when kFrom is
  // 0): true, with x, where the row is an inversion row (rate < 10, or 0)
  // whose draw is among cells 0 .. kTo - 1 (try_once's value, without a
  // stored table); else false (left to try_once), with x = kLanePast for an
  // inversion row whose draw lies past them (more cells may decide it).
  // One kind of pass (kKind 1).
  // (A bool and a sentinel, not a three-valued int: GCC 12 did not
  // vectorise the float32 Binomial with the int.)
  static constexpr int kLaneKinds = 1;
  template <int kFrom, int kTo, int kKind, class P>
  RSFAST_HD static bool try_lane(const P p, const SlotWords<kBlocks>& w, LaneCells& s, T& x) {
    const double lam = (double)p[0];
    const bool inv = lam < kPoissonInversionMax;
    const double l = inv ? lam : 0.0;  // keeps other rows' arithmetic finite
    inversion_count_lanes<kFrom, kTo>(s, kFrom == 0 ? fast_exp(-l) : 0.0, inversion_uniform_lanes<T>(w), PoissonFactor{l});
    const bool in = s.c < (double)kTo;
    x = (T)(in ? s.c : kLanePast);
    return inv && in;
  }
  // Whether the lane pass of kind kKind may decide a try of this valid row
  // (the per-element check loop skips a pass for chunks without one).
  template <int kKind, class P>
  RSFAST_HD static bool lane_row(const P& p) {
    return p[0] < T(kPoissonInversionMax);  // a hint (see BinomialLaw::lane_row)
  }
};

// ---------------------------------------------------------------- Binomial

// q^n for an integer n in [0, 128): the product of q^(2^b) over the bits of
// n (read from the mantissa of n + 2^52), branch-free. With q = 1 - p
// rounded, within (n + 14) 2^-53 of (1 - p)^n relatively (measured against
// exact rationals; the rounding of 1 - p, raised to the n, dominates).
RSFAST_HD double pow_small(double q, double n) {
  const uint64_t bits = double_bits(n + 4503599627370496.0);
  double acc = 1.0, s = q;
  for (int b = 0; b < 7; ++b) {
    acc = acc * ((bits & (1ull << b)) ? s : 1.0);
    s = s * s;
  }
  return acc;
}

// The first inversion cell (1 - p)^n, p <= 1/2: by squaring below
// kBinomialPowMax, else exp(n log1p(-p)) (without the rounding of 1 - p).
// The SIMD lanes run each branch in a pass of its own (BinomialLaw::try_lane).
RSFAST_HD double binomial_p0(double n, double p) {
  return n < kBinomialPowMax ? pow_small(1.0 - p, n) : fast_exp(n * fast_log1p(-p));
}

// p_{j+1} / p_j of Binomial(n, p), r = p / (1 - p); 0 at j = n, so the cells
// past n add nothing.
struct BinomialFactor {
  double n, r;
  RSFAST_HD double operator()(int j) const { return (n - (double)j) * (1.0 / (double)(j + 1)) * r; }
};

struct BinomialPrep {
  double n;
  double p;          // min(p, 1 - p)
  double r;          // p / (1 - p)
  double spq;        // BTRS: sqrt(n p (1 - p))
  InversionTable inv;  // inversion: cells of the pmf (0 past n)
  double a, b, c;    // BTRS hat
  double vr;         // BTRS squeeze bound on v
  double alpha;      // BTRS hat scale (not set by a light prepare)
  double m;          // BTRS mode floor((n + 1) p)
  double h;          // BTRS: the mode's terms of log f(k)/f(m) (see binomial_btrs; not set by a light prepare)
  double value;      // mode 0: the constant result
  int flip;          // 1: the draw is n - k (p > 1/2)
  int mode;          // 0: constant (n = 0, p = 0 or p = 1), 1: inversion, 2: BTRS
};

RSFAST_HD double btrs_alpha(double b, double spq) { return (2.83 + 5.1 / b) * spq; }
RSFAST_HD double btrs_h(double n, double r, double m) {
  return (m + 0.5) * log((m + 1.0) / (r * (n - m + 1.0))) + stirling_correction(m) + stirling_correction(n - m);
}

// light (a Prep used for one try): BTRS's alpha and h, needed only past the
// squeeze, are left to binomial_btrs<true>.
RSFAST_HD BinomialPrep binomial_prepare(double n, double prob, bool light = false) {
  BinomialPrep q{};
  q.flip = prob > 0.5 ? 1 : 0;
  const double p = q.flip ? 1.0 - prob : prob;  // exact for prob in [1/2, 1]
  const double qq = 1.0 - p;
  q.n = n;
  q.p = p;
  if (n <= 0.0 || p <= 0.0) {
    q.mode = 0;
    q.value = q.flip ? n : 0.0;
    return q;
  }
  q.r = p / qq;
  if (n * p < kBinomialInversionMax) {
    q.mode = 1;
    q.inv = inversion_table(binomial_p0(n, p), BinomialFactor{n, q.r});
    return q;
  }
  // Hörmann (1993), BTRS step 0.
  q.mode = 2;
  const double spq = sqrt(n * p * qq);
  q.spq = spq;
  q.b = 1.15 + 2.53 * spq;
  q.a = -0.0873 + 0.0248 * q.b + 0.01 * p;
  q.c = n * p + 0.5;
  q.vr = 0.92 - 4.2 / q.b;
  q.m = floor((n + 1.0) * p);
  if (!light) {
    q.alpha = btrs_alpha(q.b, spq);
    q.h = btrs_h(n, q.r, q.m);
  }
  return q;
}

RSFAST_HD bool binomial_inversion(const BinomialPrep& q, double u, double& k) {
  return inversion_search(q.inv, u, BinomialFactor{q.n, q.r}, k);
}

// One BTRS candidate from uniforms (u, v) for p <= 1/2: steps 1-3.3 of Hörmann
// (1993), the final test log v' <= log f(k)/f(m) written as
//   (m+1/2) log((m+1)/(r(n-m+1))) + fc(m) + fc(n-m)             [= h, per row]
//   + (n+1) log((n-m+1)/(n-k+1)) + (k+1/2) log(r(n-k+1)/(k+1)) - fc(k) - fc(n-k)
// with r = p/q (expand log m!, log (n-m)!, log k!, log (n-k)! by fc: the linear
// terms and constants cancel).
// kLight: a light Prep; alpha and h are computed here, by the same expressions.
template <bool kLight = false>
RSFAST_HD bool binomial_btrs(const BinomialPrep& q, double u, double v, double& k) {
  u -= 0.5;
  const double us = 0.5 - fabs(u);
  k = floor((2.0 * q.a / us + q.b) * u + q.c);
  if (us >= 0.07 && v <= q.vr) return true;  // squeeze
  if (k < 0.0 || k > q.n) return false;
  const double alpha = kLight ? btrs_alpha(q.b, q.spq) : q.alpha;
  const double h = kLight ? btrs_h(q.n, q.r, q.m) : q.h;
  const double lv = log(v * alpha / (q.a / (us * us) + q.b));
  const double nk = q.n - k + 1.0;
  const double bound = h + (q.n + 1.0) * log1p((k - q.m) / nk) + (k + 0.5) * log(q.r * nk / (k + 1.0)) -
                       stirling_correction(k) - stirling_correction(q.n - k);
  return lv <= bound;
}

template <typename T>
struct BinomialLaw : InversionLanes {
  static constexpr int kParams = 2;  // total_count, probs
  static constexpr int kBlocks = 1;
  using Prep = BinomialPrep;

  RSFAST_HD static Prep prepare(const T* p) { return binomial_prepare((double)p[0], (double)p[1]); }
  // Bits 0-3: total_count NaN / inf / < 0 / not an integer; 4: probs NaN; 5: probs outside [0, 1].
  template <class P>
  RSFAST_HD static uint32_t invalid(const P& p) {
    const T n = p[0], pr = p[1];
    return slot_bit<T>(n != n, 0) | slot_check_finite(n, 1) | slot_bit<T>(!(n >= T(0)), 2) |
           slot_bit<T>(!(n == std::floor(n)), 3) | slot_bit<T>(pr != pr, 4) | slot_bit<T>(!(pr >= T(0) && pr <= T(1)), 5);
  }

  RSFAST_HD static bool try_once(const Prep& q, const SlotWords<kBlocks>& w, T& x) { return try_with<false>(q, w, x); }
  // One try from the raw parameters (the CPU driver's per-element path, where
  // a Prep serves one try): BTRS's log-factorial constants are computed only
  // past the squeeze (about 1 candidate in 8); the same bits as prepare +
  // try_once.
  RSFAST_HD static bool try_fresh(const T* p, const SlotWords<kBlocks>& w, T& x) {
    return try_with<true>(binomial_prepare((double)p[0], (double)p[1], true), w, x);
  }

  template <bool kLight>
  RSFAST_HD static bool try_with(const Prep& q, const SlotWords<kBlocks>& w, T& x) {
    double k = q.value;
    bool ok = true;
    if constexpr (sizeof(T) == 4) {
      if (q.mode == 1) {
        ok = binomial_inversion(q, u01_u32(w.w[0]), k);
      } else if (q.mode == 2) {
        ok = binomial_btrs<kLight>(q, u01_u32(w.w[0]), u01_u32(w.w[1]), k);
        if (!ok) ok = binomial_btrs<kLight>(q, u01_u32(w.w[2]), u01_u32(w.w[3]), k);
      }
    } else {
      if (q.mode == 1)
        ok = binomial_inversion(q, u01_f52(w.w[0], w.w[1]), k);
      else if (q.mode == 2)
        ok = binomial_btrs<kLight>(q, u01_f52(w.w[0], w.w[1]), u01_f52(w.w[2], w.w[3]), k);
    }
    if (q.mode != 0 && q.flip) k = q.n - k;
    x = (T)k;
    return ok;
  }

  // The per-element path's SIMD passes, as PoissonLaw::try_lane: true, with
  // x, for a constant row or an inversion row of the pass's kind whose draw
  // is among cells 0 .. kTo - 1 (the arithmetic of binomial_prepare and
  // try_once); x = kLanePast for such a row whose draw lies past them. Kind
  // 1: inversion rows with n < kBinomialPowMax, the first cell by squaring;
  // kind 2: the others, by exp and log. (One pass computing both and
  // choosing per lane was left scalar by GCC 12.)
  static constexpr int kLaneKinds = 2;
  template <int kFrom, int kTo, int kKind, class P>
  RSFAST_HD static bool try_lane(const P p, const SlotWords<kBlocks>& w, LaneCells& s, T& x) {
    const double n = (double)p[0], prob = (double)p[1];
    const bool flip = prob > 0.5;
    const double pr = flip ? 1.0 - prob : prob;
    const bool constant = n <= 0.0 || pr <= 0.0;
    const bool inv = !constant && n * pr < kBinomialInversionMax && (n < kBinomialPowMax) == (kKind == 1);
    // Other rows' arithmetic (discarded) runs on Binomial(1, 1/4). The
    // stand-ins are not constants (0 times a parameter does not fold): from
    // constants GCC builds those rows' cells apart and blends every cell.
    const double z = 0.0 * prob;
    const double nn = inv ? n : 1.0 + z, pp = inv ? pr : 0.25 + z;
    const double r = pp / (1.0 - pp);
    double p0 = 0.0;  // binomial_p0, by the kind's branch
    if constexpr (kFrom == 0) p0 = kKind == 1 ? pow_small(1.0 - pp, nn) : fast_exp(nn * fast_log1p(-pp));
    inversion_count_lanes<kFrom, kTo>(s, p0, inversion_uniform_lanes<T>(w), BinomialFactor{nn, r});
    const double k = constant ? 0.0 : s.c;
    const bool in = s.c < (double)kTo;
    x = (T)(in ? (flip ? n - k : k) : kLanePast);
    return constant || (inv && in);
  }
  // Whether the lane pass of kind kKind may decide a try of this valid row.
  // In T: a hint only (a row the passes skip takes the scalar try, with the
  // same value), so float32 rows are checked in float32 lanes.
  template <int kKind, class P>
  RSFAST_HD static bool lane_row(const P& p) {
    const T n = p[0], prob = p[1];
    const T pr = prob > T(0.5) ? T(1) - prob : prob;
    const bool inv = n * pr < T(kBinomialInversionMax);
    if constexpr (kKind == 1)
      return (n <= T(0)) | (pr <= T(0)) | (inv & (n < T(kBinomialPowMax)));
    else
      return inv & (n >= T(kBinomialPowMax)) & (pr > T(0));
  }
};

}  // namespace rsfast
