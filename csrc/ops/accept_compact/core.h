// accept_compact core: the accept decision of one row, with what the
// statistics need. Shared by csrc/ops/accept_compact/cpu.cpp,
// csrc/ops/accept_compact/cuda.cu and fused_sample, which add the stable
// compaction around it.
//
// Row i at op offset o accepts when log u < log p - log q - log M: the
// compaction core's accept test (compaction.h) on log_ratio = log p - log q,
// in the dtype of log p and log q, and never when log p is +inf.
#pragma once
#include "ops/accept_compact/compaction.h"

namespace rsfast {

// Outcome of one row, with what the statistics need. Flags are 0/1 words, not
// bools: with bools GCC vectorises the CPU loop 4x worse.
template <typename T>
struct Decision {
  uint32_t accept;
  uint32_t nan;         // log p or log q NaN (or inf - inf): rejected, counted
  uint32_t overweight;  // log p - log q > log M
  uint32_t posinf;      // log p == +inf: the engine raises
  T log_ratio;          // log p - log q (-inf when nan, for the running max)
};

// `r` is Philox block (0, row, offset); only words 0 (float) or 0 and 1
// (double) are read.
template <typename T>
RSFAST_HD Decision<T> decide(T lp, T lq, T log_M, U32x4 r) {
  Decision<T> d;
  const T ratio = lp - lq;
  const bool nan = ratio != ratio;  // NaN in, or inf - inf
  const bool posinf = lp == (T)INFINITY;
  d.nan = nan;
  d.posinf = posinf;
  d.log_ratio = nan ? (T)-INFINITY : ratio;
  d.overweight = !nan && ratio > log_M;
  d.accept = accept_row<T>(ratio, log_M, r) & (uint32_t)!posinf;  // branch-free; accept_row rejects NaN
  return d;
}

}  // namespace rsfast
