// The driver entry points of accept_compact_rows: raw pointers and sizes only (csrc/ops/accept_compact_rows/bind.cpp is the file
// that knows about Python). The CPU drivers (accept_compact_rows/cpu.cpp) are compiled once per instruction set into
// rsfast::cpu::base and rsfast::cpu::avx2; the CUDA drivers (accept_compact_rows/cuda.cu) are rsfast::cuda.
#pragma once
#include <cstdint>

#include "rsfast/drivers.h"

namespace rsfast {

// Decide every row of a batch: row b accepts when log u_b < log_ratio[b] -
// log_M (accept_compact_rows/core.h). Fills the scratch (in-chunk indices of the accepted
// rows, chunk offsets) and count[0] = accepted rows.
struct CompactRowsArgs {
  int dtype;              // DType of log_ratio (and of *log_M_ptr)
  int64_t m;              // rows B
  const void* log_ratio;  // [m], contiguous
  double log_M;           // used when log_M_ptr is null
  const void* log_M_ptr;  // null, or one value of `dtype` on the kernel's device (no host read on CUDA)
  uint64_t seed;
  uint32_t offset;
  int64_t* count;         // [1] out, on the kernel's device
  void* scratch;          // accept_compact_rows_scratch_bytes(m) bytes
};

// Copy the accepted rows of every tensor, in row order, to the first rows of
// its output, from the scratch that accept_compact_rows_decide filled (same m).
struct GatherRowsArgs {
  int64_t m;                 // rows B of every source tensor
  int ntensors;
  const void* const* src;    // host array [ntensors] of pointers to [m, row_bytes[i]] (contiguous)
  void* const* dst;          // host array [ntensors] of pointers to [capacity, row_bytes[i]]
  const int64_t* row_bytes;  // host array [ntensors]
  int64_t capacity;          // rows of every dst; rows past it are never written
  int zero_tail;             // nonzero: also write zeros to dst rows [count, capacity)
  void* scratch;             // as filled by accept_compact_rows_decide
};

RSFAST_CPU_DRIVER(void accept_compact_rows_decide(const CompactRowsArgs& args))
RSFAST_CPU_DRIVER(void accept_compact_rows_gather(const GatherRowsArgs& args))
RSFAST_CPU_DRIVER(int64_t accept_compact_rows_scratch_bytes(int64_t m))
RSFAST_CUDA_DRIVER(void accept_compact_rows_decide(const CompactRowsArgs& args, int device, void* stream))
RSFAST_CUDA_DRIVER(void accept_compact_rows_gather(const GatherRowsArgs& args, int device, void* stream))
RSFAST_CUDA_DRIVER(int64_t accept_compact_rows_scratch_bytes(int64_t m))

}  // namespace rsfast
