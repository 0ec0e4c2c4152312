// The driver entry points of slot_sample: raw pointers and sizes only (csrc/ops/slot_sample/bind.cpp is the file
// that knows about Python). The CPU drivers (slot_sample/cpu.cpp) are compiled once per instruction set into
// rsfast::cpu::base and rsfast::cpu::avx2; the CUDA drivers (slot_sample/cuda.cu) are rsfast::cuda.
#pragma once
#include <cstdint>

#include "rsfast/drivers.h"

namespace rsfast {

struct SlotArgs {
  int law;                 // SlotLaw
  int dtype;               // DType of parameters and output
  int64_t n;               // output elements (sample_numel * batch)
  int64_t batch;           // B: rows of every parameter array; element i uses row i % B
  const void* params[4];   // kParams contiguous arrays of B values (kSlotMaxParams = 4)
  uint64_t seed;
  uint32_t offset;
  void* out;               // [n] out
  int64_t* exhausted;      // [1], += elements written NaN: tries ran out, or parameters invalid
  int64_t* invalid;        // [1], |= the bits of the failed parameter checks (Law::invalid)
};

RSFAST_CPU_DRIVER(void slot_sample(const SlotArgs& args))
RSFAST_CUDA_DRIVER(void slot_sample(const SlotArgs& args, int device, void* stream))

}  // namespace rsfast
