// Branch-free float32 log and sincos(2*pi*t), written so that the CPU
// compiler vectorises the loops that call them and the GPU runs the same
// arithmetic. Both are accurate to a few ulp on the ranges rsfast uses
// (log on positive normal floats, sincos on turns in [0, 1]); float64 paths
// use the C library instead.
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

}  // namespace rsfast
