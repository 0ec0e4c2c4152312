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

// ---- slot mode (issue 3): see slot.h ----
struct SlotArgs {
  int law;                 // SlotLaw
  int dtype;               // DType of parameters and output
  int64_t n;               // output elements (sample_numel * batch)
  int64_t batch;           // B: rows of every parameter array; element i uses row i % B
  const void* params[4];   // kParams contiguous arrays of B values (kSlotMaxParams = 4)
  uint64_t seed;
  uint32_t offset;
  void* out;               // [n] out
  int64_t* exhausted;      // [1], += elements whose tries ran out (written NaN)
};

namespace cpu {
void slot_sample(const SlotArgs& args);
}  // namespace cpu

namespace cuda {
void slot_sample(const SlotArgs& args, int device, void* stream);
}  // namespace cuda

}  // namespace rsfast
