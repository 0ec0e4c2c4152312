// The driver entry points of tokens: raw pointers and sizes only (csrc/ops/tokens/bind.cpp is the file
// that knows about Python). The CPU drivers (tokens/cpu.cpp) are compiled once per instruction set into
// rsfast::tokens::cpu::base and ::avx2; the CUDA drivers (tokens/cuda.cu) are rsfast::tokens::cuda.
#pragma once
#include <cstdint>

#include "rsfast/drivers.h"

namespace rsfast {
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
  int xdtype;  // DType
  int input;   // TokensInput
  int order;   // TokensOrder
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
// (renorm) or -inf (mask). Greedy rows keep the first argmax only (FilterMode).
struct FilterArgs {
  int xdtype, input, order, mode;
  int64_t B, V;
  const void* x;  // [B, V]
  RowParamArrays p;
  float* out;      // [B, V] out
  uint8_t* valid;  // [B] out
};

struct VerifyArgs {
  int xdtype;  // DType of target
  int qdtype;  // DType of draft_probs (ignored without them)
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

RSFAST_CPU_DRIVER(void sample(const SampleArgs& args))
RSFAST_CPU_DRIVER(void verify(const VerifyArgs& args))
RSFAST_CPU_DRIVER(void filter(const FilterArgs& args))
RSFAST_CUDA_DRIVER(void sample(const SampleArgs& args, int device, void* stream))
RSFAST_CUDA_DRIVER(void verify(const VerifyArgs& args, int device, void* stream))
RSFAST_CUDA_DRIVER(void filter(const FilterArgs& args, int device, void* stream))
}  // namespace tokens

}  // namespace rsfast
