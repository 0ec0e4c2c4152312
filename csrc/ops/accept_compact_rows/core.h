// accept_compact_rows core: the accept decision of one row of a batch, and
// the scratch layout shared by csrc/ops/accept_compact_rows/cpu.cpp and
// csrc/ops/accept_compact_rows/cuda.cu.
//
// Row b at op offset o accepts when log u < log_ratio[b] - log_M, with u from
// Philox block (0, b, o) read exactly as accept_compact reads it (accept_compact/core.h:
// word 0 at 31-bit resolution for float32, words 0 and 1 at 52-bit for
// float64), so acceptance probability min(1, exp(log_ratio - log_M)). The
// comparison runs in the dtype T of log_ratio (log_M rounded to T). NaN
// log_ratio (or log_ratio - log_M NaN: inf - inf) rejects; +inf accepts.
#pragma once
#include "ops/accept_compact/core.h"

namespace rsfast {

// 0/1 word, not bool (the CPU loop vectorises better on words).
template <typename T>
RSFAST_HD uint32_t accept_row(T log_ratio, T log_M, U32x4 r) {
  const T log_u = log_uniform(r, T(0));
  return log_u < log_ratio - log_M ? 1u : 0u;  // false for NaN
}

// Chunking of the rows: every driver splits the B rows into chunks of
// kRowsChunk rows (the last one shorter), keeps one uint16 in-chunk index per
// accepted row (in row order) and one int64 per chunk. Scratch layout, from a
// base rounded up to kRowsScratchAlign bytes:
//   [idx: nchunks * kRowsChunk uint16][chunk_offsets: nchunks + 1 int64]
// chunk_offsets[c] = accepted rows in chunks < c (exclusive prefix sum);
// chunk_offsets[nchunks] = all accepted rows. The CUDA driver keeps its
// per-chunk counts in chunk_offsets[c + 1] before the scan.
constexpr int64_t kRowsChunk = 2048;
constexpr int64_t kRowsScratchAlign = 256;
static_assert(kRowsChunk <= 65536, "in-chunk indices are stored as uint16");

RSFAST_HD int64_t rows_chunks(int64_t m) { return m > 0 ? (m + kRowsChunk - 1) / kRowsChunk : 0; }

RSFAST_HD int64_t rows_scratch_bytes(int64_t m) {
  const int64_t n = rows_chunks(m);
  return kRowsScratchAlign + n * kRowsChunk * 2 + (n + 1) * 8;
}

struct RowsScratch {
  uint16_t* idx;
  int64_t* chunk_offsets;
};

inline RowsScratch rows_scratch(void* scratch, int64_t m) {
  uintptr_t p = reinterpret_cast<uintptr_t>(scratch);
  p = (p + kRowsScratchAlign - 1) / kRowsScratchAlign * kRowsScratchAlign;
  uint8_t* base = reinterpret_cast<uint8_t*>(p);
  RowsScratch s;
  s.idx = reinterpret_cast<uint16_t*>(base);
  s.chunk_offsets = reinterpret_cast<int64_t*>(base + rows_chunks(m) * kRowsChunk * 2);  // 8-aligned
  return s;
}

}  // namespace rsfast
