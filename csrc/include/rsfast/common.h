// Shared macros and small helpers for the torch-free kernel cores; the codes (DType, ...) are in
// rsfast/registry.h.
#pragma once
#include <cstdint>
#include <cstring>

#include "rsfast/registry.h"

// Always inlined: the CPU kernels are compiled once per instruction set, and an
// out-of-line copy of a shared inline function could otherwise be merged
// across those builds (an AVX2 copy called from the baseline build).
#if defined(__CUDACC__)
#define RSFAST_HD __host__ __device__ __forceinline__
#elif defined(__GNUC__)
#define RSFAST_HD inline __attribute__((always_inline))
#else
#define RSFAST_HD inline
#endif

namespace rsfast {

RSFAST_HD uint32_t float_bits(float x) {
  uint32_t u;
  memcpy(&u, &x, sizeof u);
  return u;
}
RSFAST_HD float bits_float(uint32_t u) {
  float x;
  memcpy(&x, &u, sizeof x);
  return x;
}
RSFAST_HD uint64_t double_bits(double x) {
  uint64_t u;
  memcpy(&u, &x, sizeof u);
  return u;
}
RSFAST_HD double bits_double(uint64_t u) {
  double x;
  memcpy(&x, &u, sizeof x);
  return x;
}

}  // namespace rsfast
