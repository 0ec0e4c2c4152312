// The driver entry points of perturb: raw pointers and sizes only (csrc/ops/perturb/bind.cpp is the file
// that knows about Python). The CPU drivers (perturb/cpu.cpp) are compiled once per instruction set into
// rsfast::cpu::base and rsfast::cpu::avx2; the CUDA drivers (perturb/cuda.cu) are rsfast::cuda.
#pragma once
#include <cstdint>

#include "rsfast/drivers.h"

namespace rsfast {

// One tensor of a perturb call.
struct PerturbTensor {
  void* data;      // numel contiguous elements of dtype
  int64_t numel;
  int dtype;       // DType: float32, float64, float16 or bfloat16
  uint32_t index;  // i: the tensor's position in the caller's list (its noise depends on it)
};

struct PerturbArgs {
  const PerturbTensor* tensors;  // host array
  int64_t count;
  uint64_t seed;
  double scale;
};

RSFAST_CPU_DRIVER(void perturb(const PerturbArgs& args))
RSFAST_CUDA_DRIVER(void perturb(const PerturbArgs& args, int device, void* stream))

}  // namespace rsfast
