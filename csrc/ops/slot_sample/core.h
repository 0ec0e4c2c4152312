// Slot ("fused") mode: output element i draws from its own Philox stream until
// its law's rejection loop accepts (docs/architecture.md). No intermediate memory, exact,
// deterministic: the value of element i is a pure function of (its parameters,
// seed, offset, i). Shared by csrc/ops/slot_sample/cpu.cpp and csrc/cuda/slot.cu.
//
// Stream of element i at op offset o: Philox blocks (b, i_lo, i_hi, o). Try t
// of a law that takes K blocks per try (Law::kBlocks) reads blocks
// K*t .. K*t + K - 1, whatever earlier tries used: every try is a pure
// function of (params, seed, offset, i, t), so the CPU driver can run the
// t-th tries of many elements in SIMD lanes, the CUDA driver loops t per
// thread, and the torch twin (rsfast/_reference.py) runs rounds t = 0, 1, ...
// over the pending elements. Word -> value maps (SlotWords below):
//   uniform      float: 1 word  u01_f23 (open (0, 1))   double: 2 words u01_f52
//   exponential  float: 1 word  -fast_logf(u01_log_arg), in (0, 22.2]
//                double: 2 words -log(u01_f52), in (0, 36.8]
//   normal pair  float: 2 words Box-Muller (fastmath.h)  double: 4 words
// A law may use several candidates per try (the first acceptable one of an
// iid sequence is exact), e.g. both normals of a Box-Muller pair.
//
// Parameters: every law parameter is a contiguous array over the batch shape
// (B elements, broadcast like torch.distributions); output element i (of
// n = sample_numel * B, row-major over sample_shape + batch_shape) uses row
// i % B. Drivers walk the row index along with i instead of taking a 64-bit
// modulo per element.
//
// Parameter checks run in the kernel (no separate torch passes): an element
// whose row fails its law's `invalid` check is written NaN, counted in
// `exhausted`, and the failed check bits are OR-ed into `invalid` of the op
// (SlotArgs). The CPU Python layer turns the lowest bit into a ValueError
// naming the parameter; on CUDA it is not read (that would synchronise): the
// element is NaN and `exhausted` > 0 flags it.
//
// Bounded loops: an element makes at most kSlotMaxTries tries. When they are
// exhausted the element is written as NaN and counted (`exhausted` of the
// op); the Python layer raises rsfast.SamplingError where it can read the
// count without a device sync. Every law keeps its acceptance per try >= 0.4
// for every valid parameter, so exhaustion has probability <= 0.6^10000 ~
// 1e-2218 per element: it signals a bug, not bad luck.
//
// ---------------------------------------------------------------------------
// How to add a law (e.g. Poisson):
//  1. Write csrc/ops/slot_sample/laws/<name>.h, torch-free, including this file:
//       template <typename T> struct PoissonLaw {
//         static constexpr int kParams = 1;   // number of parameters
//         static constexpr int kBlocks = 1;   // Philox blocks per try
//         struct Prep { ... };                // per-row constants
//         RSFAST_HD static Prep prepare(const T* p);   // p[k]: parameter k of the row
//         RSFAST_HD static bool try_once(const Prep& q, const SlotWords<kBlocks>& w, T& x);
//       };
//         RSFAST_HD static uint32_t invalid(const T* p);  // parameter checks, see below
//     `try_once` is one proposal (or a few candidates) from the words w (use
//     w.uniform<T>(i), w.exponential<T>(i), w.normal_pair(i, ...)); it returns
//     true and sets x when it accepts. Keep it branch-free where cheap (bit-mask
//     selects slot_pick, no loops, no libm calls in float: fastmath.h,
//     fast_expf in fastmath.h, fast_atan2_pos below) so that the CPU driver vectorises it
//     across elements. `prepare` may assume `invalid(p)` returned 0.
//     `invalid` returns the bits of the failed parameter checks (bit k: check
//     k failed; several may be set); rsfast/ops.py holds one message per bit
//     (register_slot_law `errors`) and names the lowest set bit, so order the
//     checks as the messages should be preferred (NaN before inf before
//     range). Keep it branch-free (slot_check_*). Document the words.
//     Optional, when a law has regimes with different algorithms (small /
//     large mean, ...): `static constexpr int kVariants` (<= 4),
//     `static int variant(const Prep&)` and `template <int V> static bool
//     try_variant(...)` (same signature as try_once, which then just switches).
//     The CPU driver then runs the variant of a single-row chunk with only its
//     own arithmetic in the SIMD lanes, and groups the elements of a
//     per-element chunk by variant (one variant per group, no mode branch).
//     Optional: `static constexpr bool kLanePrepare = true` (with `prepare`
//     a template on the accessor, `template <class P> prepare(const P& p)`)
//     makes the per-element path rebuild each lane's Prep from its raw
//     parameters inside the SIMD loop; set it only where GCC vectorises that
//     loop (check with -fopt-info-vec), else stored Preps in a scalar loop
//     are faster (a law without variants gets neither: its per-element
//     tries rebuild the Prep in a scalar loop, cheaper than storing a large
//     one). `invalid` must then be a template on the accessor too.
//     Pass the Prep (and its parts) BY VALUE to the try: GCC 12 keeps a
//     by-reference Prep of a lane in memory and gives up on the loop. A law
//     whose `prepare` does not vectorise (branches, libm calls for the
//     variant choice) may add `template <int V, class P> static Prep
//     prepare_lane(const P&)`: the Prep of an element known to be of
//     variant V, branch-free, the same bits for every field try_variant<V>
//     reads (the lanes call it instead of `prepare`). Optional with
//     kLanePrepare: `template <class P> static int lane_variant(const P&)`,
//     the variant of a valid row from its raw parameters, branch-free, for
//     the vectorised per-element check loop; it may return kVariants
//     ("undecided"), and the driver then takes variant(prepare(p)).
//     Optional for a law without variants: `template <int kFrom, int kTo,
//     int kKind, class P> static bool try_lane(const P p, const
//     SlotWords<kBlocks>& w, LaneCells& s, T& x)` (inversion cells kFrom ..
//     kTo - 1, resumed from s, which it updates), `template <int kKind,
//     class P> static bool lane_row(const P& p)` (a hint: whether the pass
//     of that kind may decide the row), kLaneKinds (1 or 2), the cell counts
//     kLaneCellsFirst / kLaneCellsStep / kLaneCellsLast and sentinel
//     kLanePast. The per-element path then runs, for each kind some row of
//     the chunk needs, try_lane<0, kLaneCellsFirst, kind> in SIMD lanes, and
//     kLaneCellsStep cells more at a time while some lane's x came back as
//     kLanePast, up to kLaneCellsLast; a lane that returns true keeps x,
//     which must be try_once's value for those words, and the others take
//     the scalar try. A pass leaves rows of other kinds undecided (never
//     kLanePast). The discrete laws use it for their inversion rows.
//  2. Add its code to RSFAST_SLOT_LAW_CODES in rsfast/registry.h (Python
//     reads it from rsfast._C.CODES), include the header in
//     csrc/ops/slot_sample/laws.h and add one `case` to slot_dispatch
//     there (both drivers use that switch).
//  3. In Python: register the law in rsfast/ops/slot_sample.py
//     (`register_slot_law`: parameter names, a value check raising ValueError
//     naming the argument, and the message of each `invalid` bit), add its
//     torch twin in rsfast/reference/ (SLOT_TWINS), and a class in
//     rsfast/distributions.py deriving from SlotDistribution.
//  4. Tests in tests/test_distributions.py (KS/chi-square vs scipy per regime,
//     twin agreement, invalid parameters) and a bench case in
//     rsfast/bench/cases/.
// ---------------------------------------------------------------------------
#pragma once
#include <cmath>

#include "rsfast/common.h"
#include "rsfast/fastmath.h"
#include "rsfast/philox.h"

namespace rsfast {

// Law codes: SlotLaw in rsfast/registry.h.

constexpr int kSlotMaxParams = 4;
constexpr int kSlotMaxTries = 10000;

// A lane's inversion cells so far (try_lane, kept by the CPU driver between
// a law's lane passes): the last cell p_j, its cumulative sum F_j and the
// count of F_0 .. F_j below the try's uniform.
struct LaneCells {
  double p, F, c;
};

// The words of one try: K Philox blocks of the element's stream.
template <int K>
struct SlotWords {
  uint32_t w[4 * K];

  template <typename T>
  RSFAST_HD T uniform(int i) const {
    if constexpr (sizeof(T) == 4)
      return u01_f23(w[i]);
    else
      return u01_f52(w[i], w[i + 1]);
  }
  template <typename T>
  RSFAST_HD T exponential(int i) const {
    if constexpr (sizeof(T) == 4)
      return -fast_logf(u01_log_arg(w[i]));
    else
      return -std::log(u01_f52(w[i], w[i + 1]));
  }
  RSFAST_HD void normal_pair(int i, float& z0, float& z1) const { box_muller(w[i], w[i + 1], z0, z1); }
  RSFAST_HD void normal_pair(int i, double& z0, double& z1) const {
    box_muller(w[i], w[i + 1], w[i + 2], w[i + 3], z0, z1);
  }
};

// Words of try t of element `elem` (blocks K*t .. K*t + K - 1).
template <int K>
RSFAST_HD SlotWords<K> slot_words(uint32_t k0, uint32_t k1, uint64_t elem, uint32_t offset, uint32_t t) {
  SlotWords<K> r;
  for (int b = 0; b < K; ++b) {
    const U32x4 v = philox4x32_10((uint32_t)(K * t + b), (uint32_t)elem, (uint32_t)(elem >> 32), offset, k0, k1);
    r.w[4 * b] = v.v[0];
    r.w[4 * b + 1] = v.v[1];
    r.w[4 * b + 2] = v.v[2];
    r.w[4 * b + 3] = v.v[3];
  }
  return r;
}

// Scalar reference loop of one element (CUDA driver, CPU tail handling):
// tries t = 0, 1, ... until one accepts; NaN after kSlotMaxTries.
template <typename T, typename Law>
RSFAST_HD T slot_draw(const typename Law::Prep& q, uint32_t k0, uint32_t k1, uint64_t elem, uint32_t offset) {
  for (int t = 0; t < kSlotMaxTries; ++t) {
    T x;
    if (Law::try_once(q, slot_words<Law::kBlocks>(k0, k1, elem, offset, (uint32_t)t), x)) return x;
  }
  return T(NAN);
}

// Whether a law declares variants (kVariants, variant, try_variant<V>).
template <typename Law, typename = void>
struct SlotHasVariants {
  static constexpr bool value = false;
};
template <typename Law>
struct SlotHasVariants<Law, decltype((void)Law::kVariants)> {
  static constexpr bool value = true;
};

// ---- branch-free float32 helpers (vectorisable; a few ulp) ----

// atan(y / x) for y >= 0, x >= 0, not both 0, in [0, pi/2] (Cephes atanf
// reduction to |t| <= tan(pi/8), degree-4 polynomial in t^2).
RSFAST_HD float fast_atan2_pos(float y, float x) {
  const bool swap = y > x;  // atan(y/x) = pi/2 - atan(x/y)
  const float num = swap ? x : y, den = swap ? y : x;
  float t = num / den;  // [0, 1]
  const bool mid = t > 0.41421356237309504880f;
  const float base = mid ? 0.78539816339744830962f : 0.0f;
  t = mid ? (t - 1.0f) / (t + 1.0f) : t;
  const float z = t * t;
  const float p =
      (((8.05374449538e-2f * z - 1.38776856032e-1f) * z + 1.99777106478e-1f) * z - 3.33329491539e-1f) * z * t + t;
  const float a = base + p;
  return swap ? 1.57079632679489661923f - a : a;
}

// m ? a : b for an all-ones / all-zeros mask m, by bit operations: GCC
// vectorises this where it refuses selects on loop-invariant conditions.
RSFAST_HD float slot_pick(uint32_t m, float a, float b) {
  return bits_float((float_bits(a) & m) | (float_bits(b) & ~m));
}
RSFAST_HD double slot_pick(uint32_t m, double a, double b) { return m ? a : b; }
RSFAST_HD uint32_t slot_mask(bool c) { return 0u - (uint32_t)c; }

// Smallest positive normal number and 1 - eps/2 (the largest value below 1).
template <typename T>
struct SlotLimits;
template <>
struct SlotLimits<float> {
  static constexpr float kTiny = 1.17549435082228750797e-38f;
  static constexpr float kBelowOne = 0.999999940395355224609375f;
  static constexpr float kPi = 3.14159265358979323846f;
  static constexpr float kMax = 3.40282346638528859812e+38f;
};
template <>
struct SlotLimits<double> {
  static constexpr double kTiny = 2.22507385850720138309e-308;
  static constexpr double kBelowOne = 0.99999999999999988897769753748;
  static constexpr double kPi = 3.14159265358979323846;
  static constexpr double kMax = 1.79769313486231570815e+308;
};

// Branch-free parameter checks (Law::invalid): the bit `1 << k` when check k fails.
template <typename T>
RSFAST_HD uint32_t slot_bit(bool fail, int k) {
  return (uint32_t)fail << k;
}
// x is NaN (bit k), +-inf (bit k + 1), not > 0 (bit k + 2, also set for NaN:
// the lower NaN bit wins the message).
template <typename T>
RSFAST_HD uint32_t slot_check_positive(T x, int k) {
  const T ax = x < T(0) ? -x : x;
  return slot_bit<T>(x != x, k) | slot_bit<T>(ax > SlotLimits<T>::kMax, k + 1) | slot_bit<T>(!(x > T(0)), k + 2);
}
// x is NaN or +-inf (bit k).
template <typename T>
RSFAST_HD uint32_t slot_check_finite(T x, int k) {
  const T ax = x < T(0) ? -x : x;
  return slot_bit<T>(!(ax <= SlotLimits<T>::kMax), k);
}

}  // namespace rsfast
