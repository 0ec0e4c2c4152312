// Entry points of the CPU and CUDA drivers: raw pointers and sizes only, so
// that csrc/bindings.cpp is the one file that knows about Python.
#pragma once
#include <cstdint>
#include <string>

namespace rsfast {

struct ProposeArgs {
  int kind;        // ProposalKind
  int dtype;       // DType of parameters and outputs
  int64_t dim;     // D
  int64_t ncomp;   // K for MixtureNormal, else 1
  int64_t m;       // rows to draw
  uint64_t seed;
  uint32_t offset;
  const void* a;   // see ProposalParams in propose.h
  const void* b;
  const void* c;
  const void* cdf;
  void* x;         // [m, D] out
  void* log_q;     // [m] out
};

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

namespace cpu {
void propose(const ProposeArgs& args);
void accept_compact(const AcceptArgs& args);
int64_t accept_compact_scratch_bytes(int64_t m);
int max_threads();
void set_max_threads(int n);
bool openmp();
// Instruction set of the CPU kernels chosen at run time: "avx2" or "baseline".
std::string isa();
}  // namespace cpu

namespace cuda {
bool compiled();
std::string archs();
// Number of usable devices; on 0, `why` says what failed.
int device_count(std::string& why);
void propose(const ProposeArgs& args, int device, void* stream);
void accept_compact(const AcceptArgs& args, int device, void* stream);
int64_t accept_compact_scratch_bytes(int64_t m);
}  // namespace cuda

// ---- group selection (rsfast.select; cores in select.h) ----

struct SelectArgs {
  int dtype;               // DType of values, or kSelectInt64 (filter_groups)
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

// Scratch ops (select_scratch_bytes).
enum SelectScratchOp : int { kScratchRso = 0, kScratchTopFraction = 1, kScratchBestOfN = 2 };

namespace cpu {
void select_best_of_n(const SelectArgs& args);
void select_rso(const SelectArgs& args);
void select_threshold_count(const SelectArgs& args);
void select_threshold_write(const SelectArgs& args);
void select_top_fraction(const SelectArgs& args);
void select_filter_groups(const SelectArgs& args);
void select_dedupe(const DedupeArgs& args);
int64_t select_scratch_bytes(int op, int64_t m, int dtype);
}  // namespace cpu

namespace cuda {
void select_best_of_n(const SelectArgs& args, int device, void* stream);
void select_rso(const SelectArgs& args, int device, void* stream);
void select_threshold_count(const SelectArgs& args, int device, void* stream);
void select_threshold_write(const SelectArgs& args, int device, void* stream);
void select_top_fraction(const SelectArgs& args, int device, void* stream);
void select_filter_groups(const SelectArgs& args, int device, void* stream);
void select_dedupe(const DedupeArgs& args, int device, void* stream);
int64_t select_scratch_bytes(int op, int64_t m, int dtype);
}  // namespace cuda

}  // namespace rsfast
