// Philox4x32-10 (Salmon et al., SC'11), the one counter-based RNG of rsfast,
// shared by the CPU and CUDA drivers. Checked against the Random123
// known-answer vectors in tests/test_philox.py.
//
// Stream layout: every random number is a pure function of
//   key     = (seed_lo, seed_hi)
//   counter = (block, stream_lo, stream_hi, offset)
// where `stream` is the row (or output element) index, `block` counts the
// 4-word blocks drawn by that stream, and `offset` names the op call.
#pragma once
#include "rsfast/common.h"

namespace rsfast {

constexpr uint32_t kPhiloxM0 = 0xD2511F53u;
constexpr uint32_t kPhiloxM1 = 0xCD9E8D57u;
constexpr uint32_t kPhiloxW0 = 0x9E3779B9u;
constexpr uint32_t kPhiloxW1 = 0xBB67AE85u;

struct U32x4 {
  uint32_t v[4];
};

RSFAST_HD void philox_round(uint32_t& c0, uint32_t& c1, uint32_t& c2, uint32_t& c3, uint32_t k0, uint32_t k1) {
  const uint64_t p0 = (uint64_t)kPhiloxM0 * c0;
  const uint64_t p1 = (uint64_t)kPhiloxM1 * c2;
  const uint32_t hi0 = (uint32_t)(p0 >> 32), lo0 = (uint32_t)p0;
  const uint32_t hi1 = (uint32_t)(p1 >> 32), lo1 = (uint32_t)p1;
  c0 = hi1 ^ c1 ^ k0;
  c1 = lo1;
  c2 = hi0 ^ c3 ^ k1;
  c3 = lo0;
}

// Ten rounds, key bumped between rounds (Random123 order). Written out
// straight so that the CPU compiler vectorises it across rows.
RSFAST_HD U32x4 philox4x32_10(uint32_t c0, uint32_t c1, uint32_t c2, uint32_t c3, uint32_t k0, uint32_t k1) {
  philox_round(c0, c1, c2, c3, k0, k1);
  philox_round(c0, c1, c2, c3, k0 + 1 * kPhiloxW0, k1 + 1 * kPhiloxW1);
  philox_round(c0, c1, c2, c3, k0 + 2 * kPhiloxW0, k1 + 2 * kPhiloxW1);
  philox_round(c0, c1, c2, c3, k0 + 3 * kPhiloxW0, k1 + 3 * kPhiloxW1);
  philox_round(c0, c1, c2, c3, k0 + 4 * kPhiloxW0, k1 + 4 * kPhiloxW1);
  philox_round(c0, c1, c2, c3, k0 + 5 * kPhiloxW0, k1 + 5 * kPhiloxW1);
  philox_round(c0, c1, c2, c3, k0 + 6 * kPhiloxW0, k1 + 6 * kPhiloxW1);
  philox_round(c0, c1, c2, c3, k0 + 7 * kPhiloxW0, k1 + 7 * kPhiloxW1);
  philox_round(c0, c1, c2, c3, k0 + 8 * kPhiloxW0, k1 + 8 * kPhiloxW1);
  philox_round(c0, c1, c2, c3, k0 + 9 * kPhiloxW0, k1 + 9 * kPhiloxW1);
  return U32x4{{c0, c1, c2, c3}};
}

// Block `block` of stream `stream` at op offset `offset`.
RSFAST_HD U32x4 philox_block(uint64_t seed, uint64_t stream, uint32_t offset, uint32_t block) {
  return philox4x32_10(block, (uint32_t)stream, (uint32_t)(stream >> 32), offset,
                       (uint32_t)seed, (uint32_t)(seed >> 32));
}

// The same with the stream split in 32-bit words: CPU loops keep SIMD lanes
// 32 bits wide (the high word is constant inside a loop, see csrc/cpu).
RSFAST_HD U32x4 philox_block(uint32_t k0, uint32_t k1, uint32_t stream_lo, uint32_t stream_hi, uint32_t offset,
                             uint32_t block) {
  return philox4x32_10(block, stream_lo, stream_hi, offset, k0, k1);
}

// ---- word -> uniform conversions (all open intervals: safe under log) ----

// (0, 1) on a 2^-23 grid: (k + 0.5) * 2^-23 for the top 23 bits k. Every value
// is exact in float, the largest is 1 - 2^-24 (a 24-bit grid would round its
// top value to 1.0).
RSFAST_HD float u01_f23(uint32_t r) {
  return ((float)(int32_t)(r >> 9) + 0.5f) * 1.1920928955078125e-07f;
}
// (0, 1] with fine resolution near 0 (31 bits), for arguments of log:
// the smallest value is 2^-32, so -log u <= 22.2.
RSFAST_HD float u01_log_arg(uint32_t r) {
  return ((float)(int32_t)(r >> 1) + 0.5f) * 4.656612873077392578125e-10f;
}
// (0, 1) on a 2^-52 grid from two words (26 bits of each): exact in double,
// the largest value is 1 - 2^-53.
RSFAST_HD double u01_f52(uint32_t hi, uint32_t lo) {
  const uint64_t k = ((uint64_t)(hi >> 6) << 26) | (uint64_t)(lo >> 6);
  return ((double)k + 0.5) * 2.220446049250313080847e-16;
}

}  // namespace rsfast
