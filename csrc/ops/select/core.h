// Group selection cores (rsfast.select): best-of-n order, the RSO accept
// decision and its random stream, float order keys and the dedupe hash.
// Shared by csrc/ops/select/cpu.cpp and csrc/ops/select/cuda.cu; the pure-torch twins
// in rsfast/_reference.py run the same arithmetic.
//
// Groups: dense (P groups of n values, offsets == nullptr) or ragged (group g
// is values[offsets[g] .. offsets[g + 1])).
//
// RSO stream: the uniform of candidate c of group g in round t is lane c % V
// of Philox block (t * ceil(n_g / V) + c / V, stream g, offset), V = 4 float32
// uniforms (u01_f23 of each word) or 2 float64 uniforms (u01_f52 of word
// pairs) per block. Candidate c is accepted in round t when it is not yet
// accepted, the round has not yet reached k, and r == r_max or u < p with
// p = exp((r - r_max) / beta) computed in the rewards' dtype (fast_expf for
// float32, fast_exp for float64; p is taken as 0 below the smallest uniform).
#pragma once
#include <cmath>

#include "rsfast/common.h"
#include "rsfast/fastmath.h"
#include "rsfast/philox.h"

namespace rsfast {

// Values are float32, float64 or (filter_groups) int64: kInt64 of DType.

struct GroupLayout {
  int64_t groups;          // P
  int64_t n;               // dense: values per group
  const int64_t* offsets;  // ragged: [P + 1], or nullptr for dense

  RSFAST_HD int64_t begin(int64_t g) const { return offsets ? offsets[g] : g * n; }
  RSFAST_HD int64_t size(int64_t g) const { return offsets ? offsets[g + 1] - offsets[g] : n; }
};

// ---- best-of-n order: reward descending, equal rewards by lower index, NaN
// below everything (the Python API rejects NaN; the kernels stay defined).
template <typename T>
RSFAST_HD bool ranks_before(T a, int64_t ia, T b, int64_t ib) {
  const bool na = a != a, nb = b != b;
  if (na || nb) return na == nb ? ia < ib : nb;
  return a > b || (a == b && ia < ib);
}

// ---- order keys: unsigned integers whose order is the float order, with
// -0.0 equal to +0.0 (they compare equal, so they tie by index) and NaN
// lowest.
RSFAST_HD uint32_t order_key(float x) {
  if (x != x) return 0u;
  const uint32_t b = float_bits(x == 0.0f ? 0.0f : x);
  return (b & 0x80000000u) ? ~b : (b | 0x80000000u);
}
RSFAST_HD uint64_t order_key(double x) {
  if (x != x) return 0ull;
  uint64_t b;
  const double y = x == 0.0 ? 0.0 : x;
  memcpy(&b, &y, sizeof b);
  return (b & 0x8000000000000000ull) ? ~b : (b | 0x8000000000000000ull);
}

// ---- RSO acceptance.

// Below these x = (r - r_max) / beta the true probability is smaller than the
// smallest uniform (2^-24 for float32, 2^-53 for float64), so p = 0 decides
// exactly the same.
constexpr float kRsoCutF = -17.0f;
constexpr double kRsoCutD = -38.0;

// Branch-free (bit masks, not a conditional: GCC vectorises the CPU loop
// only then); the value is x >= cut ? fast_expf(x) : 0.
RSFAST_HD float rso_prob(float r, float rmax, float beta) {
  const float x = (r - rmax) / beta;
  const uint32_t live = 0u - (uint32_t)(x >= kRsoCutF);
  const float e = fast_expf(bits_float(float_bits(x) & live));
  return bits_float(float_bits(e) & live);
}
RSFAST_HD double rso_prob(double r, double rmax, double beta) {
  const double x = (r - rmax) / beta;
  const uint64_t live = 0ull - (uint64_t)(x >= kRsoCutD);
  const double e = fast_exp(bits_double(double_bits(x) & live));
  return bits_double(double_bits(e) & live);
}

// Uniforms per Philox block of the RSO stream.
template <typename T>
struct RsoLayout {
  static constexpr int kPerBlock = sizeof(T) == 4 ? 4 : 2;
};

RSFAST_HD float rso_uniform(U32x4 w, int lane, float) { return u01_f23(w.v[lane]); }
RSFAST_HD double rso_uniform(U32x4 w, int lane, double) { return u01_f52(w.v[2 * lane], w.v[2 * lane + 1]); }

// Uniform of candidate c in round t of group g (n_g candidates).
template <typename T>
RSFAST_HD T rso_uniform_at(uint64_t seed, uint32_t offset, int64_t g, int64_t n_g, int64_t t, int64_t c) {
  constexpr int V = RsoLayout<T>::kPerBlock;
  const int64_t nb = (n_g + V - 1) / V;
  const U32x4 w = philox_block(seed, (uint64_t)g, offset, (uint32_t)(t * nb + c / V));
  return rso_uniform(w, (int)(c % V), T(0));
}

// The accept decision of a candidate with reward r, in a round whose largest
// remaining reward is rmax: the max (and every reward equal to it, -inf and
// +inf included) is always accepted; NaN never.
template <typename T>
RSFAST_HD bool rso_accept(T r, T rmax, T p, T u) {
  return r == rmax || u < p;
}

// ---- dedupe hash of a (group, key) pair (splitmix64 finaliser).
RSFAST_HD uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}
RSFAST_HD uint64_t pair_hash(int64_t group, int64_t key) {
  return mix64((uint64_t)key ^ mix64((uint64_t)group + 0x9e3779b97f4a7c15ull));
}
constexpr uint64_t kDedupeEmpty = ~0ull;

}  // namespace rsfast
