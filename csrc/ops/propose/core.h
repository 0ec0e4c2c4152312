// Propose cores: the random words of one row of candidates, for the built-in
// proposals. Shared by csrc/ops/propose/cpu.cpp (rows in SIMD lanes) and
// csrc/ops/propose/cuda.cu (one row per thread); both draw the same streams.
//
// Stream of row i at op offset o: Philox blocks (b, i, o), b = 0, 1, ...
//   Normal:         block b holds normals NPB*b .. NPB*b + NPB - 1
//   Uniform:        block b holds uniforms UPB*b .. UPB*b + UPB - 1
//   MixtureNormal:  block 0 word(s) pick the component, normals start at block 1
// with NPB = UPB = 4 for float32 and 2 for float64 (52-bit uniforms).
#pragma once
#include "ops/propose/api.h"
#include "rsfast/fastmath.h"
#include "rsfast/philox.h"

namespace rsfast {

template <typename T>
struct PerBlock;
template <>
struct PerBlock<float> {
  static constexpr int kValues = 4;
};
template <>
struct PerBlock<double> {
  static constexpr int kValues = 2;
};

// The values of one Philox block, returned by value so that the CPU compiler
// keeps them in registers across SIMD lanes.
template <typename T>
struct BlockValues {
  T v[PerBlock<T>::kValues];
};

// Standard normals from the words of one block.
template <typename T>
RSFAST_HD BlockValues<T> normals(const U32x4& r);
template <>
RSFAST_HD BlockValues<float> normals<float>(const U32x4& r) {
  BlockValues<float> z;
  box_muller(r.v[0], r.v[1], z.v[0], z.v[1]);
  box_muller(r.v[2], r.v[3], z.v[2], z.v[3]);
  return z;
}
template <>
RSFAST_HD BlockValues<double> normals<double>(const U32x4& r) {
  BlockValues<double> z;
  box_muller(r.v[0], r.v[1], r.v[2], r.v[3], z.v[0], z.v[1]);
  return z;
}

// Uniforms on (0, 1) from the words of one block.
template <typename T>
RSFAST_HD BlockValues<T> uniforms(const U32x4& r);
template <>
RSFAST_HD BlockValues<float> uniforms<float>(const U32x4& r) {
  return BlockValues<float>{{u01_f23(r.v[0]), u01_f23(r.v[1]), u01_f23(r.v[2]), u01_f23(r.v[3])}};
}
template <>
RSFAST_HD BlockValues<double> uniforms<double>(const U32x4& r) {
  return BlockValues<double>{{u01_f52(r.v[0], r.v[1]), u01_f52(r.v[2], r.v[3])}};
}

template <typename T>
RSFAST_HD BlockValues<T> normal_block(uint64_t seed, uint64_t row, uint32_t offset, uint32_t block) {
  return normals<T>(philox_block(seed, row, offset, block));
}
template <typename T>
RSFAST_HD BlockValues<T> uniform_block(uint64_t seed, uint64_t row, uint32_t offset, uint32_t block) {
  return uniforms<T>(philox_block(seed, row, offset, block));
}

// First uniform of block 0: the mixture component draw.
template <typename T>
RSFAST_HD T first_uniform(uint64_t seed, uint64_t row, uint32_t offset) {
  return uniform_block<T>(seed, row, offset, 0).v[0];
}

// Parameters of a proposal, all contiguous arrays of T on the kernel's device.
// Derived constants are computed by the caller (rsfast/ops.py, in torch) so
// that the kernels need no host synchronisation.
template <typename T>
struct ProposalParams {
  int kind;       // ProposalKind
  int64_t dim;    // D
  int64_t ncomp;  // K (MixtureNormal), else 1
  // Normal:  a = loc [D], b = scale [D], c = {log q constant} [1]
  // Uniform: a = low [D], b = high - low [D], c = {log q constant} [1]
  // Mixture: a = loc [K, D], b = scale [K, D], c = per-component constant [K]
  //          (log w_k - sum_d log scale_kd - D/2 log 2 pi), cdf = cumulative
  //          weights [K] (last entry forced to 1 by the caller)
  const T* a;
  const T* b;
  const T* c;
  const T* cdf;
};

template <typename T>
RSFAST_HD ProposalParams<T> params_of(const ProposeArgs& a) {
  return ProposalParams<T>{a.kind,
                           a.dim,
                           a.ncomp,
                           static_cast<const T*>(a.a),
                           static_cast<const T*>(a.b),
                           static_cast<const T*>(a.c),
                           static_cast<const T*>(a.cdf)};
}

// Component index for a uniform u: the number of cdf entries <= u, clamped.
template <typename T>
RSFAST_HD int64_t pick_component(const T* cdf, int64_t ncomp, T u) {
  int64_t k = 0;
  for (int64_t j = 0; j < ncomp - 1; ++j) k += (u >= cdf[j]) ? 1 : 0;
  return k;
}

// log q of a mixture at one row x [D].
template <typename T>
RSFAST_HD T mixture_log_q(const ProposalParams<T>& p, const T* x) {
  T best = -INFINITY;
  for (int64_t k = 0; k < p.ncomp; ++k) {
    T ssq = 0;
    for (int64_t d = 0; d < p.dim; ++d) {
      const T t = (x[d] - p.a[k * p.dim + d]) / p.b[k * p.dim + d];
      ssq += t * t;
    }
    const T v = p.c[k] - T(0.5) * ssq;
    best = v > best ? v : best;
  }
  T acc = 0;
  for (int64_t k = 0; k < p.ncomp; ++k) {
    T ssq = 0;
    for (int64_t d = 0; d < p.dim; ++d) {
      const T t = (x[d] - p.a[k * p.dim + d]) / p.b[k * p.dim + d];
      ssq += t * t;
    }
    acc += std::exp(p.c[k] - T(0.5) * ssq - best);
  }
  return best + std::log(acc);
}

// One whole row: x [D] and its log q. Used by the CUDA driver (one row per
// thread) and by the CPU driver for the mixture; the CPU driver runs Normal and
// Uniform in SIMD lanes with the same blocks.
template <typename T>
RSFAST_HD void propose_row(const ProposalParams<T>& p, uint64_t seed, uint32_t offset, uint64_t row, T* x,
                           T* log_q) {
  constexpr int V = PerBlock<T>::kValues;
  if (p.kind == kUniform) {
    for (int64_t d0 = 0; d0 < p.dim; d0 += V) {
      const BlockValues<T> u = uniform_block<T>(seed, row, offset, (uint32_t)(d0 / V));
      for (int k = 0; k < V && d0 + k < p.dim; ++k) x[d0 + k] = p.a[d0 + k] + p.b[d0 + k] * u.v[k];
    }
    *log_q = p.c[0];
    return;
  }
  int64_t comp = 0;
  uint32_t first = 0;
  if (p.kind == kMixtureNormal) {
    comp = pick_component(p.cdf, p.ncomp, first_uniform<T>(seed, row, offset));
    first = 1;
  }
  const T* loc = p.a + comp * p.dim;
  const T* scale = p.b + comp * p.dim;
  T ssq = 0;
  for (int64_t d0 = 0; d0 < p.dim; d0 += V) {
    const BlockValues<T> z = normal_block<T>(seed, row, offset, first + (uint32_t)(d0 / V));
    for (int k = 0; k < V && d0 + k < p.dim; ++k) {
      x[d0 + k] = loc[d0 + k] + scale[d0 + k] * z.v[k];
      ssq += z.v[k] * z.v[k];
    }
  }
  *log_q = p.kind == kMixtureNormal ? mixture_log_q(p, x) : p.c[0] - T(0.5) * ssq;
}

}  // namespace rsfast
