// CPU driver of propose: rows in SIMD lanes (Normal, Uniform) or one at a time
// (MixtureNormal), OpenMP across chunks of rows.
#include "ops/propose/core.h"

#include "parallel.h"
#include "philox_lanes.h"
#include "ops/propose/api.h"

namespace rsfast::cpu::RSFAST_CPU_ISA {
namespace {

constexpr int64_t kChunk = 8192;  // rows per scheduling chunk (multiple of kLanes)

// Normal and Uniform: kLanes rows at a time. The Philox blocks of all lanes
// come from philox_lanes, the transforms run in one vectorised loop, then a
// scatter into the row-major output. A float block holds 4 normals; when the
// row needs only 2 more, only one Box-Muller pair is computed.
template <typename T>
void lanes_piece(const ProposalParams<T> p, uint32_t k0, uint32_t k1, uint32_t offset, uint32_t hi,
                               int64_t begin, int64_t end, T* __restrict x, T* __restrict log_q) {
  constexpr int V = PerBlock<T>::kValues;
  constexpr int64_t W = kLanes;
  const int64_t D = p.dim;
  const bool normal = p.kind == kNormal;
  alignas(64) uint32_t w[4][W];
  alignas(64) T vals[V][W];
  for (int64_t i0 = begin; i0 < end; i0 += W) {
    const int64_t rows = std::min<int64_t>(W, end - i0);
    T ssq[W] = {};
    for (int64_t d0 = 0; d0 < D; d0 += V) {
      const int kmax = (int)std::min<int64_t>(V, D - d0);
      philox_lanes(k0, k1, (uint32_t)i0, hi, offset, (uint32_t)(d0 / V), w);
      bool done = false;
      if constexpr (V == 4) {
        if (normal && kmax <= 2) {
#pragma omp simd
          for (int64_t l = 0; l < W; ++l) box_muller(w[0][l], w[1][l], vals[0][l], vals[1][l]);
          done = true;
        }
      }
      if (done) {
      } else if (normal) {
#pragma omp simd
        for (int64_t l = 0; l < W; ++l) {
          const BlockValues<T> z = normals<T>(U32x4{{w[0][l], w[1][l], w[2][l], w[3][l]}});
#pragma GCC unroll 4
          for (int k = 0; k < V; ++k) vals[k][l] = z.v[k];
        }
      } else {
#pragma omp simd
        for (int64_t l = 0; l < W; ++l) {
          const BlockValues<T> u = uniforms<T>(U32x4{{w[0][l], w[1][l], w[2][l], w[3][l]}});
#pragma GCC unroll 4
          for (int k = 0; k < V; ++k) vals[k][l] = u.v[k];
        }
      }
      for (int k = 0; k < kmax; ++k) {
        const T lo = p.a[d0 + k], sc = p.b[d0 + k];
        T* col = x + i0 * D + d0 + k;
        for (int64_t l = 0; l < rows; ++l) col[l * D] = lo + sc * vals[k][l];
        if (normal)
          for (int64_t l = 0; l < W; ++l) ssq[l] += vals[k][l] * vals[k][l];
      }
    }
    const T c = p.c[0];
    for (int64_t l = 0; l < rows; ++l) log_q[i0 + l] = normal ? c - T(0.5) * ssq[l] : c;
  }
}

template <typename T>
void rows_range(const ProposalParams<T> p, uint64_t seed, uint32_t offset, int64_t begin, int64_t end, T* x,
                T* log_q) {
  for (int64_t i = begin; i < end; ++i) propose_row(p, seed, offset, (uint64_t)i, x + i * p.dim, log_q + i);
}

template <typename T>
void run(const ProposeArgs& a) {
  const ProposalParams<T> p = params_of<T>(a);
  T* x = static_cast<T*>(a.x);
  T* lq = static_cast<T*>(a.log_q);
  const uint32_t k0 = (uint32_t)a.seed, k1 = (uint32_t)(a.seed >> 32);
  const int64_t nchunks = (a.m + kChunk - 1) / kChunk;
  const int nt = threads_for(a.m);
  // Fixed chunks, dynamically scheduled: the output does not depend on which
  // thread draws which chunk, and a descheduled thread does not stall the rest.
#pragma omp parallel for num_threads(nt) if (nt > 1) schedule(dynamic, 1)
  for (int64_t c = 0; c < nchunks; ++c) {
    const int64_t begin = c * kChunk, end = std::min(a.m, (c + 1) * kChunk);
    if (p.kind == kMixtureNormal)
      rows_range(p, a.seed, a.offset, begin, end, x, lq);
    else
      for_each_piece(begin, end, [&](int64_t b, uint32_t hi, uint32_t count) {
        lanes_piece(p, k0, k1, a.offset, hi, b, b + count, x, lq);
      });
  }
}

}  // namespace

void propose(const ProposeArgs& args) {
  if (args.m <= 0) return;
  if (args.dtype == kFloat32)
    run<float>(args);
  else
    run<double>(args);
}

}  // namespace rsfast::cpu::RSFAST_CPU_ISA
