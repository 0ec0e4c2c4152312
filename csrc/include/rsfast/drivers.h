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

// ---- fused_sample (csrc/include/rsfast/fused.h) ----

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

}  // namespace rsfast
