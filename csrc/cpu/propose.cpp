// CPU driver of propose: rows in SIMD lanes (Normal, Uniform) or one at a time
// (MixtureNormal), OpenMP across chunks of rows.
#include "rsfast/propose.h"

#include "parallel.h"
#include "rsfast/drivers.h"

namespace rsfast::cpu {
namespace {

// Normal and Uniform: kLanes rows at a time, the Philox blocks of all lanes in
// one vectorised loop, then a scatter into the row-major output.
template <typename T>
RSFAST_CLONES void lanes_piece(const ProposalParams<T> p, uint32_t k0, uint32_t k1, uint32_t offset, uint32_t hi,
                               int64_t begin, int64_t end, T* __restrict x, T* __restrict log_q) {
  constexpr int V = PerBlock<T>::kValues;
  constexpr int64_t W = kLanes;
  const int64_t D = p.dim;
  const bool normal = p.kind == kNormal;
  for (int64_t i0 = begin; i0 < end; i0 += W) {
    const int64_t rows = std::min<int64_t>(W, end - i0);
    T ssq[W] = {};
    for (int64_t d0 = 0; d0 < D; d0 += V) {
      const uint32_t block = (uint32_t)(d0 / V);
      T vals[V][W];
      if (normal) {
#pragma omp simd
        for (int64_t l = 0; l < W; ++l) {
          const BlockValues<T> z = normals<T>(philox_block(k0, k1, (uint32_t)i0 + (uint32_t)l, hi, offset, block));
#pragma GCC unroll 4
          for (int k = 0; k < V; ++k) vals[k][l] = z.v[k];
        }
      } else {
#pragma omp simd
        for (int64_t l = 0; l < W; ++l) {
          const BlockValues<T> u = uniforms<T>(philox_block(k0, k1, (uint32_t)i0 + (uint32_t)l, hi, offset, block));
#pragma GCC unroll 4
          for (int k = 0; k < V; ++k) vals[k][l] = u.v[k];
        }
      }
      const int kmax = (int)std::min<int64_t>(V, D - d0);
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
  const ProposalParams<T> p{a.kind,
                            a.dim,
                            a.ncomp,
                            static_cast<const T*>(a.a),
                            static_cast<const T*>(a.b),
                            static_cast<const T*>(a.c),
                            static_cast<const T*>(a.cdf)};
  T* x = static_cast<T*>(a.x);
  T* lq = static_cast<T*>(a.log_q);
  const int nt = threads_for(a.m);
#pragma omp parallel num_threads(nt) if (nt > 1)
  {
    int t = 0, n = 1;
#ifdef _OPENMP
    t = omp_get_thread_num();
    n = omp_get_num_threads();
#endif
    int64_t begin, end;
    chunk_range(a.m, t, n, begin, end);
    if (p.kind == kMixtureNormal)
      rows_range(p, a.seed, a.offset, begin, end, x, lq);
    else
      for_each_piece(begin, end, [&](int64_t b, uint32_t hi, uint32_t count) {
        lanes_piece(p, (uint32_t)a.seed, (uint32_t)(a.seed >> 32), a.offset, hi, b, b + count, x, lq);
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

int max_threads() {
#ifdef _OPENMP
  return omp_get_max_threads();
#else
  return 1;
#endif
}

void set_max_threads(int n) {
#ifdef _OPENMP
  if (n > 0) omp_set_num_threads(n);
#else
  (void)n;
#endif
}

bool openmp() {
#ifdef _OPENMP
  return true;
#else
  return false;
#endif
}

}  // namespace rsfast::cpu
