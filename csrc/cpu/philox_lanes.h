// Philox blocks of kLanes consecutive streams at once, for the CPU drivers:
// AVX2 intrinsics when the CPU has them (about 1.7x the auto-vectorised
// loop), else the portable core under `omp simd`. Same bits either way.
#pragma once
#include <cstdint>

#include "parallel.h"

namespace rsfast::cpu {

// words[k][l] = word k of Philox block `block` of stream (hi << 32) + lo0 + l,
// at op offset `offset`, under key (k0, k1). lo0 + l must not wrap.
void philox_lanes(uint32_t k0, uint32_t k1, uint32_t lo0, uint32_t hi, uint32_t offset, uint32_t block,
                  uint32_t (&words)[4][kLanes]);

}  // namespace rsfast::cpu
