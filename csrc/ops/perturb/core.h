// Perturb core: adds scale * z in place to a list of tensors, z ~ N(0, I) from
// Philox, shared by csrc/ops/perturb/cpu.cpp (16 streams in SIMD lanes) and
// csrc/ops/perturb/cuda.cu (one stream per thread).
//
// Noise layout. Element j (flat, row-major) of the i-th tensor of a call gets
//   tile t = j / 64, r = j % 64, k = r / 16, l = r % 16,
//   z_ij  = normal k of Philox block (counter (i, s_lo, s_hi, kPerturbTag),
//           key (seed_lo, seed_hi)) with stream s = 16 t + l,
// where "normal k" is the float32 Box-Muller of fastmath.h (words 0,1 give
// normals 0 (cos), 1 (sin); words 2,3 give normals 2, 3). So z_ij is a function
// of (seed, i, j) only, whatever the other tensors, the dtype, the device or the
// thread count; a tile of 64 consecutive elements is 16 streams times 4 normals,
// which keeps the CPU loads and stores contiguous across SIMD lanes.
//
// Arithmetic (no FMA contraction anywhere, see CMakeLists.txt):
//   float32:        x <- x + s * z          with s = (float)scale
//   float16/bf16:   x <- rne(float(x) + s * z)   in float32, rounded once
//   float64:        x <- x + scale * (double)z
// The same noise for every dtype: a bf16 perturbation is the float32 one
// rounded, and undo is the same call with -scale.
#pragma once
#include "rsfast/common.h"
#include "ops/perturb/api.h"
#include "rsfast/fastmath.h"
#include "rsfast/philox.h"

namespace rsfast {

// Counter word 3 of every perturb draw: keeps perturb's streams apart from the
// propose / accept streams of the same seed (whose word 3 is an op offset).
constexpr uint32_t kPerturbTag = 0x70657274u;  // "pert"
constexpr int64_t kPerturbTile = 64;            // elements per 16 streams
constexpr int kPerturbStreamsPerTile = 16;

// Storage dtypes: kFloat32, kFloat64, kFloat16, kBFloat16 (DType, rsfast/registry.h).

// ---- portable float16 / bfloat16 <-> float32, round to nearest even ----

RSFAST_HD float bf16_to_float(uint16_t h) { return bits_float((uint32_t)h << 16); }

RSFAST_HD uint16_t float_to_bf16(float f) {
  const uint32_t u = float_bits(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x0040u);  // NaN stays a quiet NaN
  return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);  // overflow carries into inf
}

RSFAST_HD float half_to_float(uint16_t h) {
  const uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1fu, man = h & 0x3ffu;
  if (exp == 0x1fu) return bits_float(sign | 0x7f800000u | (man << 13));  // inf, NaN
  if (exp != 0) return bits_float(sign | ((exp + 112u) << 23) | (man << 13));
  // zero or subnormal: man * 2^-24, exact in float
  const float v = (float)man * 5.9604644775390625e-08f;
  return sign ? -v : v;
}

RSFAST_HD uint16_t float_to_half(float f) {
  const uint32_t u = float_bits(f);
  const uint16_t sign = (uint16_t)((u >> 16) & 0x8000u);
  const uint32_t a = u & 0x7fffffffu;
  if (a > 0x7f800000u) return (uint16_t)(sign | 0x7e00u | ((a >> 13) & 0x3ffu));  // NaN (quiet)
  if (a >= 0x477ff000u) return (uint16_t)(sign | 0x7c00u);  // >= 65520 rounds to inf (and inf)
  if (a >= 0x38800000u) {                                   // normal half (>= 2^-14)
    const uint32_t r = a + 0xfffu + ((a >> 13) & 1u);       // RNE on the 13 dropped bits
    return (uint16_t)(sign | (uint16_t)((r - 0x38000000u) >> 13));
  }
  if (a < 0x33000000u) return sign;  // < 2^-25: rounds to zero (2^-25 itself ties to even 0)
  // subnormal half: value = a's significand * 2^(e-150), result m * 2^-24
  const uint32_t e = a >> 23;                          // 102 .. 112
  const uint32_t mant = (a & 0x7fffffu) | 0x800000u;   // 24-bit significand
  const uint32_t shift = 126u - e;                     // 14 .. 24: bits dropped
  const uint32_t m = mant >> shift;
  const uint32_t rem = mant & ((1u << shift) - 1u), halfway = 1u << (shift - 1u);
  const uint32_t up = (rem > halfway || (rem == halfway && (m & 1u))) ? 1u : 0u;
  return (uint16_t)(sign | (uint16_t)(m + up));  // m + up may reach 0x400: the smallest normal, correct
}

// ---- storage access: load as float / double, store rounded ----

template <int D>
struct Storage;
template <>
struct Storage<kFloat32> {
  using T = float;
  using Acc = float;
  RSFAST_HD static Acc load(T v) { return v; }
  RSFAST_HD static T store(Acc v) { return v; }
};
template <>
struct Storage<kFloat64> {
  using T = double;
  using Acc = double;
  RSFAST_HD static Acc load(T v) { return v; }
  RSFAST_HD static T store(Acc v) { return v; }
};
template <>
struct Storage<kFloat16> {
  using T = uint16_t;
  using Acc = float;
  RSFAST_HD static Acc load(T v) { return half_to_float(v); }
  RSFAST_HD static T store(Acc v) { return float_to_half(v); }
};
template <>
struct Storage<kBFloat16> {
  using T = uint16_t;
  using Acc = float;
  RSFAST_HD static Acc load(T v) { return bf16_to_float(v); }
  RSFAST_HD static T store(Acc v) { return float_to_bf16(v); }
};

// x + scale * z in the storage's arithmetic (see the header comment).
template <int D>
RSFAST_HD typename Storage<D>::T perturb_value(typename Storage<D>::T x, float z, float s_f, double s_d) {
  using S = Storage<D>;
  if constexpr (D == kFloat64) {
    return S::store(S::load(x) + s_d * (double)z);
  } else {
    (void)s_d;
    return S::store(S::load(x) + s_f * z);
  }
}

// The four normals of stream s of the tensor with index i in the call.
struct Normals4 {
  float v[4];
};
RSFAST_HD Normals4 perturb_normals(const U32x4& r) {
  Normals4 z;
  box_muller(r.v[0], r.v[1], z.v[0], z.v[1]);
  box_muller(r.v[2], r.v[3], z.v[2], z.v[3]);
  return z;
}
RSFAST_HD Normals4 perturb_normals(uint64_t seed, uint32_t tensor_index, uint64_t stream) {
  return perturb_normals(philox_block(seed, stream, kPerturbTag, tensor_index));
}

// Element j of a tensor draws normal perturb_slot(j) of stream perturb_stream(j).
RSFAST_HD uint64_t perturb_stream(uint64_t j) { return ((j >> 6) << 4) | (j & 15u); }
RSFAST_HD int perturb_slot(uint64_t j) { return (int)((j >> 4) & 3u); }

}  // namespace rsfast
