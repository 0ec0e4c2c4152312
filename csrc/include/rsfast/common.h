// Shared macros and small types for the torch-free kernel cores.
#pragma once
#include <cstdint>
#include <cstring>

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

// dtype codes shared with rsfast/_native.py (DTYPE_CODES).
enum DType : int { kFloat32 = 0, kFloat64 = 1 };

// Proposal kinds shared with rsfast/_native.py (PROPOSAL_KINDS).
enum ProposalKind : int { kNormal = 0, kUniform = 1, kMixtureNormal = 2 };

// Layout of the int64 statistics vector that accept_compact accumulates into.
enum CountSlot : int {
  kAccepted = 0,    // accepted rows over all calls (may exceed the output capacity)
  kNaN = 1,         // rows whose log p was NaN (rejected)
  kOverweight = 2,  // rows with log p - log q > log M (the envelope is wrong there)
  kPosInf = 3,      // rows whose log p was +inf (the engine raises)
  kNumCounts = 4
};

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

}  // namespace rsfast
