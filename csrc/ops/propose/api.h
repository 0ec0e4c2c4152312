// The driver entry points of propose: raw pointers and sizes only (csrc/ops/propose/bind.cpp is the file
// that knows about Python). The CPU drivers (propose/cpu.cpp) are compiled once per instruction set into
// rsfast::cpu::base and rsfast::cpu::avx2; the CUDA drivers (propose/cuda.cu) are rsfast::cuda.
#pragma once
#include <cstdint>

#include "rsfast/drivers.h"

namespace rsfast {

struct ProposeArgs {
  int kind;        // ProposalKind
  int dtype;       // DType of parameters and outputs
  int64_t dim;     // D
  int64_t ncomp;   // K for MixtureNormal, else 1
  int64_t m;       // rows to draw
  uint64_t seed;
  uint32_t offset;
  const void* a;   // see ProposalParams in propose/core.h
  const void* b;
  const void* c;
  const void* cdf;
  void* x;         // [m, D] out
  void* log_q;     // [m] out
};

RSFAST_CPU_DRIVER(void propose(const ProposeArgs& args))
RSFAST_CUDA_DRIVER(void propose(const ProposeArgs& args, int device, void* stream))

}  // namespace rsfast
