// Philox blocks of consecutive streams (or consecutive blocks of one stream)
// at once, for the CPU drivers: AVX2 intrinsics in the AVX2 build of the CPU kernels (about 1.7x the
// auto-vectorised loop), the portable core under `omp simd` otherwise. The
// same bits either way.
#pragma once
#include <cstdint>

#include "parallel.h"
#include "rsfast/philox.h"

#if defined(__AVX2__)
#include <immintrin.h>
#endif

// In each ISA build's own namespace: the AVX2 and baseline builds compile
// different bodies under the same names, which must not be merged.
namespace rsfast::cpu::RSFAST_CPU_ISA {

#if defined(__AVX2__)
// The ten Philox4x32-10 rounds on 8 streams at once, in place: counter words
// (c0, c1, c2, c3) in, output words out, under key (k0, k1).
// _mm256_mul_epu32 multiplies the even 32-bit lanes into 64-bit products; the
// odd lanes are shifted down and multiplied apart, then hi and lo words are
// blended back into lane order.
inline void philox8_rounds(__m256i& c0, __m256i& c1, __m256i& c2, __m256i& c3, uint32_t k0, uint32_t k1) {
  const __m256i m0 = _mm256_set1_epi32((int)kPhiloxM0), m1 = _mm256_set1_epi32((int)kPhiloxM1);
  for (uint32_t r = 0; r < 10; ++r) {
    const __m256i key0 = _mm256_set1_epi32((int)(k0 + r * kPhiloxW0));
    const __m256i key1 = _mm256_set1_epi32((int)(k1 + r * kPhiloxW1));
    const __m256i e0 = _mm256_mul_epu32(c0, m0), o0 = _mm256_mul_epu32(_mm256_srli_epi64(c0, 32), m0);
    const __m256i e1 = _mm256_mul_epu32(c2, m1), o1 = _mm256_mul_epu32(_mm256_srli_epi64(c2, 32), m1);
    const __m256i lo_0 = _mm256_blend_epi32(e0, _mm256_slli_epi64(o0, 32), 0xAA);
    const __m256i hi_0 = _mm256_blend_epi32(_mm256_srli_epi64(e0, 32), o0, 0xAA);
    const __m256i lo_1 = _mm256_blend_epi32(e1, _mm256_slli_epi64(o1, 32), 0xAA);
    const __m256i hi_1 = _mm256_blend_epi32(_mm256_srli_epi64(e1, 32), o1, 0xAA);
    c0 = _mm256_xor_si256(_mm256_xor_si256(hi_1, c1), key0);
    c1 = lo_1;
    c2 = _mm256_xor_si256(_mm256_xor_si256(hi_0, c3), key1);
    c3 = lo_0;
  }
}
#endif

// words[k][l] = word k of the Philox block with counter
// (block + l * BlockStep, lo + l * StreamStep, hi, offset) under key (k0, k1),
// for the N lanes l: consecutive streams (StreamStep 1, BlockStep 0) or
// consecutive blocks of one stream (BlockStep 1, StreamStep 0). The varying
// word must not wrap.
template <int N, uint32_t BlockStep, uint32_t StreamStep>
inline void philox_counter_lanes(uint32_t k0, uint32_t k1, uint32_t block, uint32_t lo, uint32_t hi, uint32_t offset,
                                 uint32_t (&words)[4][N]) {
  static_assert(BlockStep + StreamStep == 1, "one counter word varies across lanes, by 1");
#if defined(__AVX2__)
  // 8 lanes per register.
  static_assert(N % 8 == 0, "N must be a multiple of 8");
  const __m256i iota = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  for (int g = 0; g < N; g += 8) {
    __m256i c0 = _mm256_set1_epi32((int)(block + (uint32_t)g * BlockStep));
    if constexpr (BlockStep != 0) c0 = _mm256_add_epi32(c0, iota);
    __m256i c1 = _mm256_set1_epi32((int)(lo + (uint32_t)g * StreamStep));
    if constexpr (StreamStep != 0) c1 = _mm256_add_epi32(c1, iota);
    __m256i c2 = _mm256_set1_epi32((int)hi);
    __m256i c3 = _mm256_set1_epi32((int)offset);
    philox8_rounds(c0, c1, c2, c3, k0, k1);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(&words[0][g]), c0);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(&words[1][g]), c1);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(&words[2][g]), c2);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(&words[3][g]), c3);
  }
#else
#pragma omp simd
  for (int l = 0; l < N; ++l) {
    const U32x4 r = philox_block(k0, k1, lo + (uint32_t)l * StreamStep, hi, offset, block + (uint32_t)l * BlockStep);
    words[0][l] = r.v[0];
    words[1][l] = r.v[1];
    words[2][l] = r.v[2];
    words[3][l] = r.v[3];
  }
#endif
}

// words[k][l] = word k of Philox block `block` of stream (hi << 32) + lo0 + l,
// at op offset `offset`, under key (k0, k1): kLanes consecutive streams.
inline void philox_lanes(uint32_t k0, uint32_t k1, uint32_t lo0, uint32_t hi, uint32_t offset, uint32_t block,
                         uint32_t (&words)[4][kLanes]) {
  philox_counter_lanes<(int)kLanes, 0, 1>(k0, k1, block, lo0, hi, offset, words);
}

// words[k][j] = word k of Philox block block0 + j of stream (hi << 32) + lo:
// N consecutive blocks of one stream.
template <int N>
inline void philox_consecutive_blocks(uint32_t k0, uint32_t k1, uint32_t lo, uint32_t hi, uint32_t offset,
                                      uint32_t block0, uint32_t (&words)[4][N]) {
  philox_counter_lanes<N, 1, 0>(k0, k1, block0, lo, hi, offset, words);
}

// out[k * N + l] = word k of the Philox block with counter
// (c0[l], c1[l], c2[l], c3) under key (k0, k1), for the N lanes l: any
// per-lane counters (fused_sample's tries).
template <int N>
inline void philox_lanes_counters(uint32_t k0, uint32_t k1, const uint32_t* c0in, const uint32_t* c1in,
                                  const uint32_t* c2in, uint32_t c3in, uint32_t* __restrict out) {
#if defined(__AVX2__)
  static_assert(N % 8 == 0, "N must be a multiple of 8");
  for (int g = 0; g < N; g += 8) {
    __m256i c0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(c0in + g));
    __m256i c1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(c1in + g));
    __m256i c2 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(c2in + g));
    __m256i c3 = _mm256_set1_epi32((int)c3in);
    philox8_rounds(c0, c1, c2, c3, k0, k1);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + 0 * N + g), c0);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + 1 * N + g), c1);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + 2 * N + g), c2);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + 3 * N + g), c3);
  }
#else
#pragma omp simd
  for (int l = 0; l < N; ++l) {
    const U32x4 r = philox4x32_10(c0in[l], c1in[l], c2in[l], c3in, k0, k1);
    out[0 * N + l] = r.v[0];
    out[1 * N + l] = r.v[1];
    out[2 * N + l] = r.v[2];
    out[3 * N + l] = r.v[3];
  }
#endif
}

}  // namespace rsfast::cpu::RSFAST_CPU_ISA
