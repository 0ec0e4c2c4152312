// Branch-free float32 log, exp and sincos(2*pi*t), and float64 exp, log and
// log1p, written so that the CPU compiler vectorises the loops that call them
// and the GPU runs the same arithmetic (no FMA contraction anywhere: the same
// bits on every CPU build and on the GPU). All are accurate to a few ulp on
// the ranges rsfast uses (log on positive normals, sincos on turns in [0, 1]);
// other float64 paths use the C library.
#pragma once
#include <cmath>

#include "rsfast/common.h"
#include "rsfast/philox.h"

namespace rsfast {

// Natural log of a positive normal float (Cephes-style reduction to
// m in [sqrt(1/2), sqrt(2)) and a degree-8 polynomial).
RSFAST_HD float fast_logf(float x) {
  const uint32_t bits = float_bits(x);
  int e = (int)((bits >> 23) & 0xffu) - 126;
  float m = bits_float((bits & 0x807fffffu) | 0x3f000000u);  // [0.5, 1)
  const bool small = m < 0.70710678118654752440f;
  e = small ? e - 1 : e;
  m = small ? m + m - 1.0f : m - 1.0f;
  const float z = m * m;
  float y = 7.0376836292e-2f;
  y = y * m - 1.1514610310e-1f;
  y = y * m + 1.1676998740e-1f;
  y = y * m - 1.2420140846e-1f;
  y = y * m + 1.4249322787e-1f;
  y = y * m - 1.6668057665e-1f;
  y = y * m + 2.0000714765e-1f;
  y = y * m - 2.4999993993e-1f;
  y = y * m + 3.3333331174e-1f;
  y = y * m * z;
  const float fe = (float)e;
  y += -2.12194440e-4f * fe;
  y += -0.5f * z;
  return m + y + 0.693359375f * fe;
}

// sin and cos of 2*pi*t for t in [0, 1]: reduce to the nearest quarter turn,
// evaluate minimax polynomials on [-pi/4, pi/4], rotate by the quadrant.
RSFAST_HD void fast_sincos_turns(float t, float& s, float& c) {
  const int q = (int)(4.0f * t + 0.5f);  // 0..4, t >= 0
  const float a = (t - 0.25f * (float)q) * 6.28318530717958647692f;
  const float z = a * a;
  const float sa = ((-1.9515295891e-4f * z + 8.3321608736e-3f) * z - 1.6666654611e-1f) * z * a + a;
  const float ca = ((2.443315711809948e-5f * z - 1.388731625493765e-3f) * z + 4.166664568298827e-2f) * z * z -
                   0.5f * z + 1.0f;
  const bool swap = (q & 1) != 0;
  const float s0 = swap ? ca : sa;
  const float c0 = swap ? sa : ca;
  s = (q & 2) ? -s0 : s0;
  c = ((q + 1) & 2) ? -c0 : c0;
}

// ---- Box-Muller: two words -> two standard normals ----

RSFAST_HD void box_muller(uint32_t r0, uint32_t r1, float& z0, float& z1) {
  const float rad = sqrtf(-2.0f * fast_logf(u01_log_arg(r0)));
  float s, c;
  fast_sincos_turns(u01_f23(r1), s, c);
  z0 = rad * c;
  z1 = rad * s;
}

// float64: four words -> two standard normals, 52-bit uniforms.
RSFAST_HD void box_muller(uint32_t r0, uint32_t r1, uint32_t r2, uint32_t r3, double& z0, double& z1) {
  const double u = u01_f52(r0, r1), t = u01_f52(r2, r3);
  const double rad = std::sqrt(-2.0 * std::log(u));
  const double a = 6.283185307179586476925 * t;
  z0 = rad * std::cos(a);
  z1 = rad * std::sin(a);
}

// exp(x) for float32, branch-free (vectorises), a few ulp: x = n ln 2 + r
// with n = round(x / ln 2) (two-part ln 2), a degree-6 Cephes polynomial in r,
// 2^n from the exponent bits. Clamped to [-103.9, 88.72]: the bottom gives a
// denormal, not 0 (callers that need 0 below a cut mask it).
RSFAST_HD float fast_expf(float x) {
  x = x < -103.9f ? -103.9f : x;
  x = x > 88.72f ? 88.72f : x;
  const float n = (float)(int)(x * 1.44269504088896341f + (x >= 0.0f ? 0.5f : -0.5f));
  float r = x - n * 0.693359375f;
  r = r + n * 2.12194440e-4f;
  const float z = r * r;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  const float e = p * z + r + 1.0f;
  // 2^n in two factors so that n down to -150 stays representable (denormals).
  const int ni = (int)n;
  const int n1 = ni / 2, n2 = ni - ni / 2;
  return e * bits_float((uint32_t)(n1 + 127) << 23) * bits_float((uint32_t)(n2 + 127) << 23);
}

// ---- float64: exp, log, log1p ----
// Integer-valued doubles are moved through the exponent bits, not int64
// conversions: AVX2 has no int64 <-> double conversion, so the loops that
// call these would not vectorise.

// exp(x) for x in [-38, 0] (the float64 selection probabilities, the
// discrete laws' first cells), about 1.4 ulp: Cephes reduction by
// round(x / ln 2) (two-part ln 2) and its (2, 3) rational approximation; 2^n
// from the bits of n + 1023 + 2^52.
RSFAST_HD double fast_exp(double x) {
  const double t = x * 1.4426950408889634073599;
  const double n = (double)(int)(t - 0.5);  // truncation toward zero
  double r = x - n * 6.93145751953125e-1;
  r = r - n * 1.42860682030941723212e-6;
  const double z = r * r;
  const double p = r * ((1.26177193074810590878e-4 * z + 3.02994407707441961300e-2) * z + 9.99999999999999999910e-1);
  const double q =
      ((3.00198505138664455042e-6 * z + 2.52448340349684104192e-3) * z + 2.27265548208155028766e-1) * z +
      2.00000000000000000009e0;
  const double y = 1.0 + 2.0 * (p / (q - p));
  return y * bits_double(double_bits(n + 4503599627371519.0) << 52);  // 2^52 + 1023
}

// log(x) for a positive normal double, about 1 ulp: x = 2^k m with m in
// [sqrt(1/2), sqrt(2)) (bits offset so that the exponent field turns over at
// sqrt(1/2) 2^j), then log m = f - s (f - R) with f = m - 1, s = f / (2 + f)
// and R = 2 s^2 / 3 + 2 s^4 / 5 + ... (|s| < 0.172: ten terms leave < 1e-17).
RSFAST_HD double fast_log(double x) {
  const uint64_t ix = double_bits(x);
  // kb = k + 1023 >= 1 for every positive normal x: logical shifts only.
  const uint64_t kb = (ix - 0x3fe6a09e667f3bcdull + 0x3ff0000000000000ull) >> 52;
  const double m = bits_double(ix - (kb << 52) + 0x3ff0000000000000ull);
  const double k = bits_double(0x4330000000000000ull | kb) - 4503599627371519.0;  // kb - 1023
  const double f = m - 1.0;
  const double s = f / (2.0 + f);
  const double z = s * s;
  // R = z (c1 + c2 z + ... + c10 z^9), c_j = 2 / (2 j + 1), by Estrin's
  // scheme: a short dependency chain (the SIMD lanes are latency-bound).
  const double z2 = z * z, z4 = z2 * z2, z8 = z4 * z4;
  const double a01 = 6.6666666666666666667e-01 + 4.0000000000000000000e-01 * z;
  const double a23 = 2.8571428571428571429e-01 + 2.2222222222222222222e-01 * z;
  const double a45 = 1.8181818181818181818e-01 + 1.5384615384615384615e-01 * z;
  const double a67 = 1.3333333333333333333e-01 + 1.1764705882352941176e-01 * z;
  const double a89 = 1.0526315789473684211e-01 + 9.5238095238095238095e-02 * z;
  const double R = ((a01 + a23 * z2) + (a45 + a67 * z2) * z4 + a89 * z8) * z;
  const double lm = f - s * (f - R);
  return k * 6.93147180369123816490e-01 + (lm + k * 1.90821492927058770002e-10);
}

// log(1 + x) for x in [-1/2, 1], about 1 ulp: u = 1 + x rounded (d = u - 1
// and c = x - d are exact), log1p x = log u + log(1 + c / u) = log u + c / u
// to far below an ulp, with 1 / u = 1 / (1 + d) taken as 1 - d: c is below
// half an ulp of 1 and the neglected c d^2 is below an ulp of log1p x. No
// division, and no branch where u rounds to 1 (then it is 0 + x).
RSFAST_HD double fast_log1p(double x) {
  const double u = 1.0 + x;
  const double d = u - 1.0;
  return fast_log(u) + (x - d) * (1.0 - d);
}

}  // namespace rsfast
