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
  const void* a;   // see ProposalParams in propose/core.h
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

// ---- perturb (csrc/ops/perturb/core.h) ----

// One tensor of a perturb call.
struct PerturbTensor {
  void* data;      // numel contiguous elements of dtype
  int64_t numel;
  int dtype;       // PerturbDType (perturb/core.h)
  uint32_t index;  // i: the tensor's position in the caller's list (its noise depends on it)
};

struct PerturbArgs {
  const PerturbTensor* tensors;  // host array
  int64_t count;
  uint64_t seed;
  double scale;
};

namespace cpu {
void perturb(const PerturbArgs& args);
}  // namespace cpu
namespace cuda {
void perturb(const PerturbArgs& args, int device, void* stream);
}  // namespace cuda

// ---- accept_compact_rows (csrc/ops/accept_compact_rows/cpu.cpp, csrc/ops/accept_compact_rows/cuda.cu)

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

namespace cpu {
void accept_compact_rows_decide(const CompactRowsArgs& args);
void accept_compact_rows_gather(const GatherRowsArgs& args);
int64_t accept_compact_rows_scratch_bytes(int64_t m);
}  // namespace cpu

namespace cuda {
void accept_compact_rows_decide(const CompactRowsArgs& args, int device, void* stream);
void accept_compact_rows_gather(const GatherRowsArgs& args, int device, void* stream);
int64_t accept_compact_rows_scratch_bytes(int64_t m);
}  // namespace cuda

// ---- fused_sample (csrc/ops/fused_sample/core.h) ----

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

namespace cpu {
void fused_sample(const FusedArgs& args);
}  // namespace cpu
namespace cuda {
void fused_sample(const FusedArgs& args, int device, void* stream);
}  // namespace cuda

// ---- slot mode: see slot_sample/core.h ----
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

namespace cpu {
void slot_sample(const SlotArgs& args);
}  // namespace cpu

namespace cuda {
void slot_sample(const SlotArgs& args, int device, void* stream);
}  // namespace cuda

// ---- group selection (rsfast.select; cores in select/core.h) ----

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

// ---- token sampling (rsfast.tokens; core in tokens/core.h) ----
namespace tokens {
struct RowParamArrays {
  const float* temperature;  // [B]
  const int64_t* top_k;      // [B]
  const double* top_p;       // [B]
  const double* min_p;       // [B]
  const int64_t* seeds;      // [B], each in [0, 2^63)
  const int64_t* offsets;    // [B], each in [0, 2^32)
  int per_row_stream;        // 1: Philox stream = row index, 0: the op's constant stream
};

struct SampleArgs {
  int xdtype;  // XDType
  int input;   // Input
  int order;   // Order
  int64_t B, V;
  const void* x;  // [B, V]
  RowParamArrays p;
  int64_t num_samples;  // n >= 1 draws per row (Philox blocks 0 .. n - 1)
  int64_t* ids;         // [B, n] out
  uint8_t* valid;       // [B] out
  float* logprobs;      // [B, n] out, or nullptr
};

// The filtered distribution itself: out[b, i] = its probability (renorm) or
// the value x[b, i] where kept and -inf elsewhere (mask). Invalid rows: zeros
// (renorm) or -inf (mask). Greedy rows keep the first argmax only.
enum FilterMode : int { kRenorm = 0, kMask = 1 };
struct FilterArgs {
  int xdtype, input, order, mode;
  int64_t B, V;
  const void* x;  // [B, V]
  RowParamArrays p;
  float* out;      // [B, V] out
  uint8_t* valid;  // [B] out
};

struct VerifyArgs {
  int xdtype;  // XDType of target
  int qdtype;  // XDType of draft_probs (ignored without them)
  int input;
  int order;
  int mode;  // VerifyMode
  int64_t B, V;
  int64_t S;                // ids have S + 1 columns; dense: drafts per request
  const int64_t* cu;        // [B + 1] cumulative draft counts (ragged), or nullptr (dense)
  int64_t N;                // draft tokens in all (ragged: rows of draft_probs; target has N + B rows)
  const int64_t* draft;     // dense [B, S] / ragged [N] draft token ids
  const void* target;       // dense [B, S + 1, V] / ragged [N + B, V]
  const void* draft_probs;  // dense [B, S, V] / ragged [N, V], or nullptr (one-hot drafts)
  RowParamArrays p;
  int64_t* ids;           // [B, S + 1] out, -1 padded
  int64_t* num_accepted;  // [B] out
  int64_t* num_emitted;   // [B] out
  uint8_t* valid;         // [B] out
};

namespace cpu {
void sample(const SampleArgs& args);
void verify(const VerifyArgs& args);
void filter(const FilterArgs& args);
}  // namespace cpu
namespace cuda {
void sample(const SampleArgs& args, int device, void* stream);
void verify(const VerifyArgs& args, int device, void* stream);
void filter(const FilterArgs& args, int device, void* stream);
}  // namespace cuda
}  // namespace tokens

}  // namespace rsfast
