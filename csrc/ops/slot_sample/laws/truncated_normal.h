// TruncatedNormal(loc, scale, low, high): the normal law restricted to
// [low, high] (either end may be infinite), by rejection with a proposal picked
// per interval (Robert 1995, "Simulation of truncated normal variables").
//
// In standard units a = (low - loc)/scale, b = (high - loc)/scale; an interval
// left of 0 (b <= 0) is mirrored to [-b, -a]. Then:
//   kNormal  a < 0 < b, b - a > sqrt(2 pi): z ~ N(0, 1) until a <= z <= b
//            (acceptance >= Phi(2.5) - 1/2 = 0.49).
//   kUniform a < 0 < b narrow, or 0 <= a with b - a below Robert's bound:
//            z ~ U(a, b), accept when E > (z - s)(z + s)/2, with s = 0 (or a)
//            the point of largest density and E ~ Exp(1) (acceptance >= 0.49).
//   kExp     0 <= a, wider interval: Robert's translated exponential,
//            lam = (a + sqrt(a^2 + 4))/2, z = a + E1/lam, reject z > b, accept
//            when E2 > (z - lam)^2/2 (acceptance >= 0.45, -> 1 in far tails).
// The sample loc + scale * z is clamped to [low, high] (rounding of the affine
// map could step outside by an ulp).
//
// Words of one try (one Philox block): kNormal: a Box-Muller pair, two
// candidates z0 then z1 (float: w0, w1; double: w0..w3); kUniform: one
// candidate (uniform, exponential), float (w0, w1), double (w0w1, w2w3);
// kExp: one candidate (exponential, exponential), same words. (float32 w2, w3
// unused: one candidate per try is cheaper in SIMD lanes than two.)
// The first acceptable candidate of a try is taken. float32 exponentials reach
// 22.2, so the kExp proposal is cut at a + 22.2/lam (tail mass < e^-22 of the
// proposal), and float32 normals reach 6.7 sigma.
#pragma once
#include <cmath>

#include "ops/slot_sample/core.h"

namespace rsfast {

template <typename T>
struct TruncatedNormalLaw {
  static constexpr int kParams = 4;  // loc, scale, low, high
  static constexpr int kBlocks = 1;
  enum Mode : int { kNormal = 0, kUniform = 1, kExp = 2 };
  struct Prep {
    T loc, scale, low, high;
    T a, b;      // standard-unit interval after mirroring
    T s;         // kUniform: point of largest density (0 or a)
    T lam;       // kExp: rate of the exponential proposal
    T sign;      // +1, or -1 when mirrored
    int mode;
  };

  // Bit 0: loc not finite; 1-3: scale NaN / inf / <= 0; 4: low NaN; 5: high
  // NaN; 6: not low < high; 7: a finite end more than kStdLimit scales from
  // loc (the tail proposal's a + sqrt(a^2 + 4) would overflow and no try could
  // be accepted; log_prob squares it in float64).
  static constexpr T kStdLimit = sizeof(T) == 4 ? T(8.507059e37) : T(1e150);

  template <class P>  // const T*, or any p[k] accessor (the CPU driver's lane view)
  RSFAST_HD static uint32_t invalid(const P& p) {
    const T a = (p[2] - p[0]) / p[1], b = (p[3] - p[0]) / p[1];
    // Bitwise & and | (not && and ||): GCC vectorises the check loop only without short circuits.
    const bool base = (p[0] - p[0] == T(0)) & (p[1] > T(0));  // else bits 0-3 already say why
    const bool far_lo = base & (p[2] - p[2] == T(0)) & !((a <= kStdLimit) & (a >= -kStdLimit));
    const bool far_hi = base & (p[3] - p[3] == T(0)) & !((b <= kStdLimit) & (b >= -kStdLimit));
    return slot_check_finite(p[0], 0) | slot_check_positive(p[1], 1) | slot_bit<T>(p[2] != p[2], 4) |
           slot_bit<T>(p[3] != p[3], 5) | slot_bit<T>(!(p[2] < p[3]), 6) | slot_bit<T>(far_lo | far_hi, 7);
  }

  template <class P>  // const T*, or any p[k] accessor (the CPU driver's lane view)
  RSFAST_HD static Prep prepare(const P& p) {
    Prep q;
    q.loc = p[0];
    q.scale = p[1];
    q.low = p[2];
    q.high = p[3];
    T a = (q.low - q.loc) / q.scale, b = (q.high - q.loc) / q.scale;
    q.sign = T(1);
    if (b <= T(0)) {  // mirror a left interval (or a left tail) to the right
      const T t = a;
      a = -b;
      b = -t;
      q.sign = T(-1);
    }
    q.a = a;
    q.b = b;
    q.s = T(0);
    q.lam = T(1);
    if (a < T(0)) {
      // Contains 0 in its interior (b > 0 here).
      q.mode = (b - a > T(2.5066282746310002)) ? kNormal : kUniform;
    } else {
      // sqrt(a^2 + 4) without overflowing a^2 in far tails.
      const T root = a > T(1e6) ? a + T(2) / a : std::sqrt(a * a + T(4));
      q.lam = (a + root) / T(2);
      // Robert (1995), Prop. 2.3: the uniform proposal beats the exponential
      // one when the interval is shorter than this bound; a^2 - a*root is
      // written as -4a/(a + root) (no cancellation).
      // An unbounded right end (b - a = inf) is never below the finite bound:
      // skip its exp (the per-element tail case).
      q.mode = kExp;
      if (b - a < T(INFINITY)) {
        const T bound = T(2) / (a + root) * std::exp(-a / (a + root) + T(0.5));
        q.mode = (b - a < bound) ? kUniform : kExp;
      }
      q.s = a;
    }
    return q;
  }

  // The Prep of an element known to be of variant V, without the mode choice
  // (whose bound needs a libm exp): branch-free, the same bits as prepare for
  // every field try_variant<V> reads. The CPU driver's per-element path calls
  // it in SIMD lanes (kLanePrepare). float64 too: its tries do not vectorise
  // (libm log), but rebuilding the Prep at each try in the scalar loop costs
  // less than storing and reloading 80 bytes an element (measured), and the
  // check loop (lane_variant) still runs in SIMD lanes.
  static constexpr bool kLanePrepare = true;
  template <int V, class P>
  RSFAST_HD static Prep prepare_lane(const P& p) {
    Prep q;
    q.loc = p[0];
    q.scale = p[1];
    q.low = p[2];
    q.high = p[3];
    const T a0 = (q.low - q.loc) / q.scale, b0 = (q.high - q.loc) / q.scale;
    const bool mirror = b0 <= T(0);
    const T a = mirror ? -b0 : a0, b = mirror ? -a0 : b0;
    q.sign = mirror ? T(-1) : T(1);
    q.a = a;
    q.b = b;
    q.s = a < T(0) ? T(0) : a;
    q.lam = T(1);
    if constexpr (V == kExp) {  // a >= 0 here
      const T root = a > T(1e6) ? a + T(2) / a : std::sqrt(a * a + T(4));
      q.lam = (a + root) / T(2);
    }
    q.mode = V;
    return q;
  }

  // The variant of a valid row from its raw parameters, without prepare's
  // branches and, mostly, without its libm exp: Robert's bound is q2 e^x with
  // q2 = 2 / (a + root) and x in [0, 1/2], so it lies in [q2, q2 e^(1/2)]
  // (rounded: fl(exp) is in [1, kExpHalfUp]); an interval width outside that
  // bracket decides the mode, one inside it returns kVariants (undecided:
  // the caller takes variant(prepare(p))). The CPU driver's per-element check
  // runs it in SIMD lanes; the decided modes are those of prepare, bit for bit.
  static constexpr T kExpHalfUp = T(1.6487213);  // > e^(1/2) and >= its rounding to T
  template <class P>
  RSFAST_HD static int lane_variant(const P& p) {
    const T a0 = (p[2] - p[0]) / p[1], b0 = (p[3] - p[0]) / p[1];
    const bool mirror = b0 <= T(0);
    const T a = mirror ? -b0 : a0, b = mirror ? -a0 : b0;
    const T w = b - a;
    const T root = a > T(1e6) ? a + T(2) / a : std::sqrt(a * a + T(4));
    const T q2 = T(2) / (a + root);
    const int tail = w < q2 ? kUniform : (w < q2 * kExpHalfUp ? kVariants : kExp);
    const int inner = w > T(2.5066282746310002) ? kNormal : kUniform;
    return a < T(0) ? inner : tail;
  }

  // Candidate (z, accepted) of mode kUniform from (uniform u, exponential e)
  // and of mode kExp from (exponential e0, exponential e).
  RSFAST_HD static bool uniform_candidate(const Prep q, T u, T e, T& z) {
    z = q.a + (q.b - q.a) * u;
    return e > (z - q.s) * (z + q.s) * T(0.5);
  }
  RSFAST_HD static bool exp_candidate(const Prep q, T e0, T e, T& z) {
    z = q.a + e0 / q.lam;
    const T d = z - q.lam;
    return z <= q.b && e > d * d * T(0.5);
  }

  // Variants: the CPU driver runs one mode per chunk of a single parameter row
  // (only that mode's arithmetic in the SIMD lanes); try_once switches.
  static constexpr int kVariants = 3;
  RSFAST_HD static int variant(const Prep& q) { return q.mode; }

  template <int V>
  RSFAST_HD static bool try_variant(const Prep q, const SlotWords<kBlocks>& w, T& x) {
    constexpr bool f32 = sizeof(T) == 4;
    T z;
    bool ok;
    if constexpr (V == kNormal) {
      T z0, z1;
      w.normal_pair(0, z0, z1);
      const bool n0 = z0 >= q.a && z0 <= q.b, n1 = z1 >= q.a && z1 <= q.b;
      z = slot_pick(slot_mask(n0), z0, z1);
      ok = n0 || n1;
    } else if constexpr (V == kUniform) {
      ok = uniform_candidate(q, w.template uniform<T>(0), w.template exponential<T>(f32 ? 1 : 2), z);
    } else {
      ok = exp_candidate(q, w.template exponential<T>(0), w.template exponential<T>(f32 ? 1 : 2), z);
    }
    T v = q.loc + q.scale * (q.sign * z);
    v = v < q.low ? q.low : v;
    x = v > q.high ? q.high : v;
    return ok;
  }

  RSFAST_HD static bool try_once(const Prep q, const SlotWords<kBlocks>& w, T& x) {
    if (q.mode == kNormal) return try_variant<kNormal>(q, w, x);
    if (q.mode == kUniform) return try_variant<kUniform>(q, w, x);
    return try_variant<kExp>(q, w, x);
  }
};

}  // namespace rsfast
