// VonMises(loc, concentration): density exp(k cos(x - loc)) / (2 pi I0(k)) on
// [-pi, pi), by Best & Fisher (1979) rejection, rewritten without
// cancellation for any concentration (1e-30 .. 1e30 and beyond):
//   tau = 1 + s, s = sqrt(1 + 4k^2), rho = 2k / (tau + sqrt(2 tau)),
//   r = (1 + rho^2) / (2 rho); with h = pi u1 / 2 (u1 uniform) the proposal's
//   z = cos(pi u1), f = (1 + r z)/(r + z) and the test quantity
//   c = k (r - f) = K1 A / (A + B cos^2 h),  K1 = k (r + 1) = (1 + rho)^2 (tau + sqrt(2 tau)) / 4,
//   A = (1 - rho)^2, B = 4 rho,  1 - rho = (1 + 1/(s + 2k) + sqrt(2 tau)) / (tau + sqrt(2 tau));
//   accept when c (2 - c) > u2 or log(c / u2) + 1 - c >= 0 (u2 uniform); the
//   angle acos(f) = 2 atan(q tan h), q = (1 - rho)/(1 + rho), is computed as
//   2 atan2(q sin h, cos h): exact near 0 even when k is huge (float32 acos(f)
//   near f = 1 would lose half the digits). Acceptance >= 0.656 for every k.
// Words of one try (one block, one candidate): float: u1 = u01_f23(w0), sign
// from bit 0 of w0, u2 = u01_f23(w1) (w2, w3 unused); double: u1 =
// u01_f52(w0, w1), sign from bit 0 of w0, u2 = u01_f52(w2, w3).
// The sample loc + sign * angle is wrapped once into [-pi, pi) (loc is first
// reduced to [-pi, pi) in prepare).
#pragma once
#include <cmath>

#include "ops/slot_sample/core.h"

namespace rsfast {

template <typename T>
struct VonMisesLaw {
  static constexpr int kParams = 2;  // loc, concentration
  static constexpr int kBlocks = 1;
  struct Prep {
    T loc;  // reduced to [-pi, pi)
    T K1, A, B, q;
    int far;  // 1: loc reduced by fmod (|loc| >= 2^20), else 0 (the variant)
  };

  // Bit 0: loc not finite; bits 1-3: concentration NaN / inf / <= 0.
  template <class P>  // const T*, or any p[k] accessor (the CPU driver's lane view)
  RSFAST_HD static uint32_t invalid(const P& p) { return slot_check_finite<T>(p[0], 0) | slot_check_positive<T>(p[1], 1); }

  // Variants by how prepare reduces loc (0: rint, 1: fmod); the tries are the
  // same. They let the CPU driver's per-element path rebuild a lane's Prep in
  // SIMD lanes (float32: kLanePrepare) with prepare_lane<0>, which has no libm
  // fmod; the rare far locs (variant 1) take prepare there.
  static constexpr int kVariants = 2;
  static constexpr bool kLanePrepare = sizeof(T) == 4;
  RSFAST_HD static int variant(const Prep& q) { return q.far; }
  template <class P>
  RSFAST_HD static int lane_variant(const P& p) { return std::fabs(p[0]) < T(1048576) ? 0 : 1; }
  template <int V>
  RSFAST_HD static bool try_variant(const Prep q, const SlotWords<kBlocks>& w, T& x) {
    return try_once(q, w, x);
  }

  template <class P>  // const T*, or any p[k] accessor (the CPU driver's lane view)
  RSFAST_HD static Prep prepare(const P& p) {
    constexpr T kTwoPi = T(2) * SlotLimits<T>::kPi;
    // Far from 0 the product kTwoPi * rint(.) rounds by many periods (loc 1e30 gave 7.6e22): there
    // fmod, which is exact, takes over (below 2^20 the cheaper form is kept, so streams are unchanged).
    const bool far = !(std::fabs(p[0]) < T(1048576));
    Prep r = prepare_with_loc(far ? std::fmod(p[0], kTwoPi) : near_loc(p[0]), p[1]);
    r.far = far ? 1 : 0;
    return r;
  }

  // Prep of an element of variant V (the CPU driver's lanes): variant 0
  // without prepare's branch and fmod, the same bits.
  template <int V, class P>
  RSFAST_HD static Prep prepare_lane(const P& p) {
    if constexpr (V == 0) {
      Prep r = prepare_with_loc(near_loc(p[0]), p[1]);
      r.far = 0;
      return r;
    } else {
      return prepare(p);
    }
  }

  // loc - 2 pi rint(loc / (2 pi)), for |loc| < 2^20.
  RSFAST_HD static T near_loc(T loc) {
    constexpr T kTwoPi = T(2) * SlotLimits<T>::kPi;
    return loc - kTwoPi * std::rint(loc / kTwoPi);
  }

  // The Prep from loc reduced to about (-2 pi, 2 pi) and the concentration k.
  RSFAST_HD static Prep prepare_with_loc(T loc, const T k) {
    constexpr T kPi = SlotLimits<T>::kPi, kTwoPi = T(2) * SlotLimits<T>::kPi;
    Prep r;
    loc = loc >= kPi ? loc - kTwoPi : loc;
    r.loc = loc < -kPi ? loc + kTwoPi : loc;
    // s = sqrt(1 + 4k^2) without overflow for huge k.
    const T s = k > T(1) ? T(2) * k * std::sqrt(T(1) + T(0.25) / (k * k)) : std::sqrt(T(1) + T(4) * k * k);
    const T tau = T(1) + s;
    const T sq = std::sqrt(T(2) * tau);
    const T den = tau + sq;
    const T rho = T(2) * k / den;
    const T omr = (T(1) + T(1) / (s + T(2) * k) + sq) / den;  // 1 - rho
    r.A = omr * omr;
    r.B = T(4) * rho;
    r.K1 = (T(1) + rho) * (T(1) + rho) * den / T(4);
    r.q = omr / (T(1) + rho);
    return r;
  }

  // The angle of a candidate, wrapped into [-pi, pi).
  RSFAST_HD static T finish(const Prep q, T half_angle, bool negative) {
    constexpr T kPi = SlotLimits<T>::kPi, kTwoPi = T(2) * SlotLimits<T>::kPi;
    const T theta = T(2) * half_angle;
    T x = q.loc + (negative ? -theta : theta);
    x = x >= kPi ? x - kTwoPi : x;
    return x < -kPi ? x + kTwoPi : x;
  }

  // float32 candidate from words (w1, w2): half angle, accepted and sign masks.
  RSFAST_HD static void candidate(const Prep q, uint32_t w1, uint32_t w2, float& ha, uint32_t& ok,
                                  uint32_t& neg) {
    float s, c;
    fast_sincos_turns(u01_f23(w1) * 0.25f, s, c);
    const float u2 = u01_f23(w2);
    const float cc = q.K1 * q.A / (q.A + q.B * (c * c));
    ok = slot_mask(cc * (2.0f - cc) > u2) | slot_mask(fast_logf(cc / u2) + 1.0f - cc >= 0.0f);
    neg = slot_mask((w1 & 1u) != 0);
    ha = fast_atan2_pos(q.q * s, c);
  }

  RSFAST_HD static bool try_once(const Prep q, const SlotWords<kBlocks>& w, T& x) {
    if constexpr (sizeof(T) == 4) {
      // One candidate per try: in SIMD lanes every candidate costs the same, and with
      // acceptance >= 0.66 a second one per try would cost more than the rounds it saves.
      float ha;
      uint32_t ok, neg;
      candidate(q, w.w[0], w.w[1], ha, ok, neg);
      x = finish(q, slot_pick(neg, -ha, ha), false);
      return ok != 0;
    } else {
      const double h = 1.57079632679489661923 * w.template uniform<T>(0);
      const double u2 = w.template uniform<T>(2);
      const double s = std::sin(h), c = std::cos(h);
      const double cc = q.K1 * q.A / (q.A + q.B * (c * c));
      const bool acc = cc * (2.0 - cc) > u2 || std::log(cc / u2) + 1.0 - cc >= 0.0;
      x = finish(q, std::atan2(q.q * s, c), (w.w[0] & 1u) != 0);
      return acc;
    }
  }
};

}  // namespace rsfast
