// The one compaction core of accept_compact and accept_compact_rows, torch
// free and shared by their CPU and CUDA drivers (and by fused_sample through
// accept_compact/core.h):
//   - the accept test: row i at op offset o accepts when
//     log u < log_ratio - log_M, with u from Philox block (0, i, o): word 0
//     (31-bit resolution) for float32, words 0 and 1 (52-bit) for float64, so
//     that tiny acceptance probabilities are not rounded away; the comparison
//     runs in the dtype T of log_ratio (false for NaN);
//   - the chunking of the rows and the scratch layout of the chunked
//     compaction (uint16 in-chunk index lists, int64 chunk offsets);
//   - the copy word: the widest power-of-two word that divides a row and
//     aligns both the source and the output.
// The CPU helpers (lists, prefix, gathers) are in csrc/cpu/compact.h, the
// CUDA kernels in csrc/ops/accept_compact/compaction.cuh.
#pragma once
#include <cmath>
#include <cstdint>

#include "rsfast/fastmath.h"
#include "rsfast/philox.h"

namespace rsfast {

// log u of the accept test; `r` is Philox block (0, row, offset), only words
// 0 (float) or 0 and 1 (double) are read.
RSFAST_HD float log_uniform(U32x4 r, float) { return fast_logf(u01_log_arg(r.v[0])); }
RSFAST_HD double log_uniform(U32x4 r, double) { return std::log(u01_f52(r.v[0], r.v[1])); }

// The accept test as a 0/1 word (not a bool: the CPU loops vectorise better
// on words). False when log_ratio - log_M is NaN (NaN in, or inf - inf).
template <typename T>
RSFAST_HD uint32_t accept_row(T log_ratio, T log_M, U32x4 r) {
  const T log_u = log_uniform(r, T(0));
  return log_u < log_ratio - log_M ? 1u : 0u;
}

// Chunking of the rows: a driver splits the m rows into chunks of
// kCompactChunk rows (the last one shorter), keeps one uint16 in-chunk index
// per accepted row (in row order) and one int64 per chunk. Scratch layout,
// from a base rounded up to kCompactScratchAlign bytes:
//   [idx: nchunks * kCompactChunk uint16][chunk_offsets: nchunks + 1 int64]
// After the scan, chunk_offsets[c] = base + accepted rows in chunks < c and
// chunk_offsets[nchunks] = base + all accepted rows (base: rows already in
// the output, 0 for accept_compact_rows). Before it, the deciding pass keeps
// chunk c's count in chunk_offsets[c + 1].
constexpr int64_t kCompactChunk = 2048;
constexpr int64_t kCompactScratchAlign = 256;
static_assert(kCompactChunk <= 65536, "in-chunk indices are stored as uint16");

RSFAST_HD int64_t compact_chunks(int64_t m) { return m > 0 ? (m + kCompactChunk - 1) / kCompactChunk : 0; }

RSFAST_HD int64_t compact_scratch_bytes(int64_t m) {
  const int64_t n = compact_chunks(m);
  return kCompactScratchAlign + n * kCompactChunk * 2 + (n + 1) * 8;
}

struct CompactScratch {
  uint16_t* idx;
  int64_t* chunk_offsets;
};

inline CompactScratch compact_scratch(void* scratch, int64_t m) {
  uintptr_t p = reinterpret_cast<uintptr_t>(scratch);
  p = (p + kCompactScratchAlign - 1) / kCompactScratchAlign * kCompactScratchAlign;
  uint8_t* base = reinterpret_cast<uint8_t*>(p);
  CompactScratch s;
  s.idx = reinterpret_cast<uint16_t*>(base);
  s.chunk_offsets = reinterpret_cast<int64_t*>(base + compact_chunks(m) * kCompactChunk * 2);  // 8-aligned
  return s;
}

// Widest word (16, 8, 4, 2 or 1 bytes) such that row_bytes, x and out are
// all multiples of it: every row x + i * row_bytes and out + i * row_bytes is
// then aligned to it.
inline int copy_word_bytes(int64_t row_bytes, const void* x, const void* out) {
  const uintptr_t a = reinterpret_cast<uintptr_t>(x) | reinterpret_cast<uintptr_t>(out) | (uintptr_t)row_bytes;
  for (int w = 16; w > 1; w /= 2)
    if (a % (uintptr_t)w == 0) return w;
  return 1;
}

}  // namespace rsfast
