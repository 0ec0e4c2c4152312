// Entry points of the token sampling drivers (rsfast.tokens): raw pointers
// and sizes only. Row layouts are contiguous; per-row parameter arrays hold B
// values (the Python layer broadcasts scalars).
#pragma once
#include <cstdint>

namespace rsfast::tokens {

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

}  // namespace rsfast::tokens
