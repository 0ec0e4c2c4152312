// accept_compact core: the accept decision of one row. Shared by
// csrc/ops/accept_compact/cpu.cpp and csrc/ops/accept_compact/cuda.cu, which add the stable
// compaction (prefix sums) around it.
//
// Row i at op offset o accepts when log u < log p - log q - log M, with u from
// Philox block (0, i, o): word 0 (31-bit resolution) for float32, words 0 and 1
// (52-bit) for float64, so that tiny acceptance probabilities are not rounded
// away. The comparison runs in the dtype of log p and log q.
#pragma once
#include "rsfast/fastmath.h"
#include "rsfast/philox.h"

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

RSFAST_HD float log_uniform(U32x4 r, float) { return fast_logf(u01_log_arg(r.v[0])); }
RSFAST_HD double log_uniform(U32x4 r, double) { return std::log(u01_f52(r.v[0], r.v[1])); }

// `r` is Philox block (0, row, offset); only words 0 (float) or 0 and 1
// (double) are read.
template <typename T>
RSFAST_HD Decision<T> decide(T lp, T lq, T log_M, U32x4 r) {
  Decision<T> d;
  const T log_u = log_uniform(r, T(0));
  const T ratio = lp - lq;
  const bool nan = ratio != ratio;  // NaN in, or inf - inf
  const bool posinf = lp == (T)INFINITY;
  d.nan = nan;
  d.posinf = posinf;
  d.log_ratio = nan ? (T)-INFINITY : ratio;
  d.overweight = !nan && ratio > log_M;
  d.accept = !nan && !posinf && log_u < ratio - log_M;
  return d;
}

}  // namespace rsfast
