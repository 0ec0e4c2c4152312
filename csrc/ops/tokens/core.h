// Token sampling cores (rsfast.tokens): the kept set of a row under
// temperature / top-k / top-p / min-p, its integer weights, and the Philox
// draws of `sample` and `verify`. Torch-free, shared by csrc/ops/tokens/cpu.cpp
// and csrc/ops/tokens/cuda.cu; the sort-based twin is rsfast/reference/tokens.py.
//
// The law of a row, in the words of the docs:
//  * value x_i: the input as float32 (float16 / bfloat16 widen exactly).
//  * logits: z_i = (x_i - max x) / T in float32, weight w_i = fast_expf(z_i);
//    probs: weight p_i (T must be 1). Weights are quantised to integers
//    q_i = round(w_i * 2^s) (logits) or round(p_i * 2^(s - e)) with
//    2^(e-1) <= max p < 2^e (probs), s = min(45, 63 - ceil(log2 V)), so that
//    every sum of a row is an exact uint64: masses, thresholds and the inverse
//    CDF are the same bits on any device, thread count or reduction order.
//  * Kept set: all filters keep an upper set of values, so the kept set is
//    {i : key(x_i) >= t} for one order key t (ties at the boundary are kept or
//    dropped together, by value):
//      top-k: x_i >= the k-th largest value (counted with multiplicity);
//      top-p: mass of values strictly above x_i < ceil(p * Z), Z the mass of
//        the top-k survivors (order "hf") or of the whole row ("joint");
//      min-p: z_i >= log(min_p) (logits) or p_i >= min_p * max p (probs),
//        the max is always kept, so min-p commutes with the others.
//  * Draw: r = 64 Philox bits, target = floor(r * Z_kept / 2^64); the token
//    is the first index (in index order) whose running kept mass exceeds it.
#pragma once
#include <cmath>

#include "rsfast/common.h"
#include "rsfast/fastmath.h"
#include "rsfast/philox.h"

namespace rsfast::tokens {

// Codes (DType, TokensInput, TokensOrder, VerifyMode, FilterMode): rsfast/registry.h.

// Row-independent Philox streams of the ops when the caller gives per-row seeds
// ("sample", "verify" in ASCII); rows without seeds use stream = row index.
constexpr uint64_t kSampleStream = 0x73616d706c65ull;
constexpr uint64_t kVerifyStream = 0x766572696679ull;

// ---- loading a value as float32 (exact widening) ----

RSFAST_HD float half_to_float(uint16_t h) {
  const uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1fu, mant = h & 0x3ffu;
  if (exp == 0x1fu) return bits_float(sign | 0x7f800000u | (mant << 13));  // inf / NaN
  if (exp != 0) return bits_float(sign | ((exp + 112u) << 23) | (mant << 13));
  // zero or subnormal: mant * 2^-24, exact in float32
  const float v = (float)mant * 5.9604644775390625e-08f;
  return sign ? -v : v;
}

template <int DT>
RSFAST_HD float load_x(const void* p, int64_t i) {
  if (DT == kFloat32) return static_cast<const float*>(p)[i];
  if (DT == kFloat64) return (float)static_cast<const double*>(p)[i];
  const uint16_t h = static_cast<const uint16_t*>(p)[i];
  if (DT == kBFloat16) return bits_float((uint32_t)h << 16);
  return half_to_float(h);
}

// Unsigned key whose order is the float order, -0 == +0, NaN lowest.
RSFAST_HD uint32_t token_key(float x) {
  if (x != x) return 0u;
  const uint32_t b = float_bits(x == 0.0f ? 0.0f : x);
  return (b & 0x80000000u) ? ~b : (b | 0x80000000u);
}

// ---- integer weights ----

// Bits of fixed point: every row sum fits in 63 bits.
RSFAST_HD int weight_shift(int64_t V) {
  int lg = 0;
  while ((int64_t(1) << lg) < V && lg < 62) ++lg;
  const int s = 63 - lg;
  return s < 45 ? s : 45;
}

RSFAST_HD double pow2(int e) {  // 2^e for -1022 <= e <= 1023
  uint64_t b = (uint64_t)(e + 1023) << 52;
  double d;
  memcpy(&d, &b, sizeof d);
  return d;
}

// round-half-even(w * scale) for 0 <= w * scale < 2^52: adding 2^52 rounds
// to an integer, whose bits minus 2^52's are the integer (vectorises).
RSFAST_HD uint64_t quantise(float w, double scale) {
  const double d = (double)w * scale + 4503599627370496.0;
  uint64_t b;
  memcpy(&b, &d, sizeof b);
  return b - 0x4330000000000000ull;
}

// Scale of a probs row: 2^(s - e) with 2^(e-1) <= pmax < 2^e (pmax > 0, finite).
RSFAST_HD double probs_scale(float pmax, int s) {
  const uint32_t b = float_bits(pmax);
  const int be = (int)((b >> 23) & 0xffu);
  const int e = be == 0 ? -126 : be - 126;  // subnormal pmax < 2^-126
  return pow2(s - e);
}

// ceil(p * Z) exactly, for p in (0, 1] (0 for p <= 0).
RSFAST_HD uint64_t ceil_mul(double p, uint64_t Z) {
  uint64_t b;
  memcpy(&b, &p, sizeof b);
  const int be = (int)((b >> 52) & 0x7ffu);
  if (!(p > 0.0)) return 0;
  if (p >= 1.0) return Z;
  const uint64_t mant = be == 0 ? (b & 0xfffffffffffffull) : ((b & 0xfffffffffffffull) | (1ull << 52));
  const int k = be == 0 ? 1074 : 1075 - be;  // p = mant * 2^-k, k >= 53
  const unsigned __int128 prod = (unsigned __int128)mant * Z;
  if (prod == 0) return 0;
  if (k >= 127) return 1;
  const unsigned __int128 one = 1;
  return (uint64_t)((prod + ((one << k) - 1)) >> k);
}

RSFAST_HD uint64_t mulhi64(uint64_t a, uint64_t b) {
#if defined(__CUDA_ARCH__)
  return __umul64hi(a, b);
#else
  return (uint64_t)(((unsigned __int128)a * b) >> 64);
#endif
}

// A uniform integer in [0, Z) from two Philox words (error <= 2^-64 per token).
RSFAST_HD uint64_t draw_target(uint32_t hi, uint32_t lo, uint64_t Z) {
  return mulhi64(((uint64_t)hi << 32) | lo, Z);
}

// ---- per-row parameters ----

struct RowParams {
  float temperature;  // > 0, or 0: greedy
  int64_t top_k;      // k in [1, V - 1] filters, anything else keeps all
  double top_p;       // (0, 1]; 1 keeps all
  double min_p;       // [0, 1]; 0 keeps all
};

// Parameters a row can run with; anything else gives valid = false.
RSFAST_HD bool params_ok(const RowParams& p, int input) {
  const float T = p.temperature;
  if (!(T >= 0.0f) || !(T < INFINITY)) return false;
  if (input == kProbs && !(T == 0.0f || T == 1.0f)) return false;
  if (!(p.top_p > 0.0 && p.top_p <= 1.0)) return false;
  if (!(p.min_p >= 0.0 && p.min_p <= 1.0)) return false;
  return true;
}

RSFAST_HD bool topk_active(int64_t k, int64_t V) { return k >= 1 && k < V; }

// ---- what one row's kept set and mass are ----

struct RowPlan {
  bool valid;
  bool greedy;
  int64_t argmax;    // greedy token (first index of the max)
  float m;           // max value
  double scale;      // quantisation scale of the row
  uint32_t t;        // kept set: key >= t
  uint64_t Z;        // kept mass
};

// The integer weight of value x in a row with max m.
RSFAST_HD uint64_t token_weight(float x, float m, float T, double scale, int input) {
  if (input == kProbs) return quantise(x, scale);
  return quantise(fast_expf((x - m) / T), scale);
}

// min-p: the token is kept (logits: lmin = log(min_p); probs: pmin = min_p * max p).
RSFAST_HD bool minp_keep(float x, float m, float T, double lmin, double pmin, int input) {
  if (input == kProbs) return (double)x >= pmin;
  return (double)((x - m) / T) >= lmin;
}

// ---- radix select over order keys: levels of 11, 11 and 10 bits ----

constexpr int kLevels = 3;
RSFAST_HD int level_shift(int level) { return level == 0 ? 21 : (level == 1 ? 10 : 0); }
RSFAST_HD int level_bits(int level) { return level == 2 ? 10 : 11; }
constexpr int kBuckets = 2048;

// Walks histogram buckets from the top; returns the first bucket at which the
// running count (by_mass false) or mass (true) reaches `need`, adding the
// totals of the buckets above it to *above_cnt / *above_mass. -1 when never.
RSFAST_HD int find_bucket(const uint32_t* cnt, const uint64_t* mass, int nb, bool by_mass, uint64_t need,
                          uint64_t* above_cnt, uint64_t* above_mass) {
  for (int b = nb - 1; b >= 0; --b) {
    const uint64_t reach = by_mass ? *above_mass + mass[b] : *above_cnt + cnt[b];
    if (reach >= need && cnt[b] > 0) return b;
    *above_cnt += cnt[b];
    *above_mass += mass[b];
  }
  return -1;
}

// ---- verify: the Philox block of draft position j ----
// Words 0-1: 52-bit uniform of the accept test; words 2-3: the 64 bits of the
// replacement (or bonus) draw. `sample` uses block 0, words 0-1.

}  // namespace rsfast::tokens
