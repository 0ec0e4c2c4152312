// The driver entry points of fused_sample: raw pointers and sizes only (csrc/ops/fused_sample/bind.cpp is the file
// that knows about Python). The CPU drivers (fused_sample/cpu.cpp) are compiled once per instruction set into
// rsfast::cpu::base and rsfast::cpu::avx2; the CUDA drivers (fused_sample/cuda.cu) are rsfast::cuda.
#pragma once
#include <cstdint>

#include "rsfast/drivers.h"

namespace rsfast {

struct FusedArgs {
  int kind;               // ProposalKind of the proposal
  int dtype;              // DType of every parameter and of out
  int64_t dim;            // D
  int64_t ncomp_q;        // K of a MixtureNormal proposal, else 1
  int64_t ncomp_p;        // K of the target mixture
  int64_t n;              // output rows
  uint64_t seed;
  uint32_t offset;
  double log_M;
  int64_t max_proposals;  // coarse bound on tries over all rows
  const void* q_a;        // proposal, as ProposeArgs a, b, c, cdf
  const void* q_b;
  const void* q_c;
  const void* q_cdf;
  const void* q_inv_scale;  // [K_q, D] (MixtureNormal proposal only)
  const void* p_loc;        // target loc [K, D]
  const void* p_inv_scale;  // target 1 / scale [K, D]
  const void* p_c;          // target constants [K]
  void* out;                // [n, D]
  int64_t* counts;          // [kFusedNumCounts], zeroed by the caller
  double* max_log_ratio;    // [1], -inf from the caller
};

RSFAST_CPU_DRIVER(void fused_sample(const FusedArgs& args))
RSFAST_CUDA_DRIVER(void fused_sample(const FusedArgs& args, int device, void* stream))

}  // namespace rsfast
