// The driver entry points of select: raw pointers and sizes only (csrc/ops/select/bind.cpp is the file
// that knows about Python). The CPU drivers (select/cpu.cpp) are compiled once per instruction set into
// rsfast::cpu::base and rsfast::cpu::avx2; the CUDA drivers (select/cuda.cu) are rsfast::cuda.
#pragma once
#include <cstdint>

#include "rsfast/drivers.h"

namespace rsfast {

struct SelectArgs {
  int dtype;               // DType of values: float32, float64, or int64 (filter_groups)
  int64_t groups;          // P
  int64_t n;               // dense: values per group (offsets == nullptr)
  const int64_t* offsets;  // ragged: [P + 1], nondecreasing, or nullptr
  const void* values;      // rewards / metric, [M] contiguous
  int64_t k;               // best_of_n, rso: columns of out
  double beta;             // rso
  uint64_t seed;           // rso
  uint32_t offset;         // rso
  double min_reward;       // threshold
  int64_t max_per_group;   // threshold, < 0: no cap
  int64_t count;           // top_fraction: how many to keep
  int64_t* out;            // best_of_n, rso: [P, k]; threshold: [S]; top_fraction: [count]
  int64_t* counts;         // threshold: per-group counts (count pass) / starts (write pass), [P]
  uint8_t* keep;           // filter_groups: [P]
  void* scratch;           // select_scratch_bytes(op, ...) bytes
};

struct DedupeArgs {
  int64_t m;
  const int64_t* keys;    // [m]
  const int64_t* groups;  // [m]
  uint8_t* keep;          // [m] out
  uint64_t* table;        // [table_size] scratch, table_size a power of two >= 2 m
  int64_t table_size;
};

#define RSFAST_SELECT_DRIVERS(Args, name)                                \
  RSFAST_CPU_DRIVER(void name(const Args& args))                          \
  RSFAST_CUDA_DRIVER(void name(const Args& args, int device, void* stream))
RSFAST_SELECT_DRIVERS(SelectArgs, select_best_of_n)
RSFAST_SELECT_DRIVERS(SelectArgs, select_rso)
RSFAST_SELECT_DRIVERS(SelectArgs, select_threshold_count)
RSFAST_SELECT_DRIVERS(SelectArgs, select_threshold_write)
RSFAST_SELECT_DRIVERS(SelectArgs, select_top_fraction)
RSFAST_SELECT_DRIVERS(SelectArgs, select_filter_groups)
RSFAST_SELECT_DRIVERS(DedupeArgs, select_dedupe)
#undef RSFAST_SELECT_DRIVERS
// Scratch bytes of op (SelectScratch) for m values of dtype.
RSFAST_CUDA_DRIVER(int64_t select_scratch_bytes(int op, int64_t m, int dtype))

}  // namespace rsfast
