// The driver entry points of accept_compact: raw pointers and sizes only (csrc/ops/accept_compact/bind.cpp is the file
// that knows about Python). The CPU drivers (accept_compact/cpu.cpp) are compiled once per instruction set into
// rsfast::cpu::base and rsfast::cpu::avx2; the CUDA drivers (accept_compact/cuda.cu) are rsfast::cuda.
#pragma once
#include <cstdint>

#include "rsfast/drivers.h"

namespace rsfast {

struct AcceptArgs {
  int dtype;             // DType of log_p and log_q
  int64_t m;             // candidate rows
  int64_t row_bytes;     // bytes of one row of x / out (any element type)
  int64_t capacity;      // rows that fit in out
  const void* x;         // [m, row_bytes] candidates, contiguous
  const void* log_p;     // [m]
  const void* log_q;     // [m]
  double log_M;
  uint64_t seed;
  uint32_t offset;
  void* out;             // [capacity, row_bytes], appended at counts[kAccepted]
  int64_t* counts;       // [kNumCounts], accumulated
  double* max_log_ratio; // [1], running max of log p - log q
  void* scratch;         // accept_compact_scratch_bytes(m) bytes
};

RSFAST_CPU_DRIVER(void accept_compact(const AcceptArgs& args))
RSFAST_CUDA_DRIVER(void accept_compact(const AcceptArgs& args, int device, void* stream))
RSFAST_CUDA_DRIVER(int64_t accept_compact_scratch_bytes(int64_t m))

}  // namespace rsfast
