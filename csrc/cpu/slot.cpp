// CPU driver of slot mode (slot.h). Elements are taken in fixed chunks
// (OpenMP, dynamic schedule); inside a chunk the tries run in rounds: round t
// makes try t of every element still pending, kLanes elements at a time in
// SIMD lanes (Philox words, then the law's branch-free try_once), and a
// scalar pass writes the accepted values and compacts the pending list. Try t
// of element i reads the same Philox blocks whatever the chunking, so the
// output depends only on (params, seed, offset), never on the thread count.
#include "rsfast/slot.h"

#include <stdexcept>

#include "parallel.h"
#include "rsfast/drivers.h"
#include "rsfast/slot_laws.h"

namespace rsfast::cpu::RSFAST_CPU_ISA {
namespace {

// Elements per scheduling chunk: a power of two, so that a chunk never
// crosses a 2^32 boundary of the element index (the high word is constant).
constexpr int64_t kChunk = 2048;
constexpr int kW = (int)kLanes;

template <typename T, typename Law, bool kOneRow>
int64_t run_chunk(const SlotArgs& a, const T* const* params, int64_t begin, int64_t end, T* __restrict out) {
  using Prep = typename Law::Prep;
  constexpr int K = Law::kBlocks;
  const int count = (int)(end - begin);
  Prep preps[kOneRow ? 1 : kChunk];
  uint32_t idx[kChunk];
  {
    const int64_t B = a.batch;
    int64_t j = kOneRow ? 0 : begin % B;  // the row walks with the element index
    T row[kSlotMaxParams] = {};
    for (int k = 0; k < (kOneRow ? 1 : count); ++k) {
      for (int p = 0; p < Law::kParams; ++p) row[p] = params[p][j];
      preps[k] = Law::prepare(row);
      if (++j == B) j = 0;
    }
  }
  for (int k = 0; k < count; ++k) idx[k] = (uint32_t)k;
  const uint32_t k0 = (uint32_t)a.seed, k1 = (uint32_t)(a.seed >> 32);
  const uint32_t lo0 = (uint32_t)begin, hi = (uint32_t)((uint64_t)begin >> 32);
  int np = count;
  for (int t = 0; t < kSlotMaxTries && np > 0; ++t) {
    int kept = 0;
    for (int g = 0; g < np; g += kW) {
      const int lanes = np - g < kW ? np - g : kW;
      alignas(64) uint32_t li[kW];
      for (int l = 0; l < kW; ++l) li[l] = idx[g + (l < lanes ? l : 0)];
      alignas(64) uint32_t w[4 * K][kW];
      for (int b = 0; b < K; ++b) {
        const uint32_t block = (uint32_t)(K * t + b);
#pragma omp simd
        for (int l = 0; l < kW; ++l) {
          const U32x4 r = philox4x32_10(block, lo0 + li[l], hi, a.offset, k0, k1);
          w[4 * b][l] = r.v[0];
          w[4 * b + 1][l] = r.v[1];
          w[4 * b + 2][l] = r.v[2];
          w[4 * b + 3][l] = r.v[3];
        }
      }
      alignas(64) T val[kW];
      alignas(64) int acc[kW];
      if constexpr (kOneRow) {
        const Prep q = preps[0];
#pragma omp simd
        for (int l = 0; l < kW; ++l) {
          SlotWords<K> ww;
          for (int m = 0; m < 4 * K; ++m) ww.w[m] = w[m][l];
          acc[l] = Law::try_once(q, ww, val[l]) ? 1 : 0;
        }
      } else {
#pragma omp simd
        for (int l = 0; l < kW; ++l) {
          SlotWords<K> ww;
          for (int m = 0; m < 4 * K; ++m) ww.w[m] = w[m][l];
          acc[l] = Law::try_once(preps[li[l]], ww, val[l]) ? 1 : 0;
        }
      }
      for (int l = 0; l < lanes; ++l) {
        if (acc[l])
          out[begin + li[l]] = val[l];
        else
          idx[kept++] = li[l];
      }
    }
    np = kept;
  }
  for (int k = 0; k < np; ++k) out[begin + idx[k]] = T(NAN);
  return np;
}

template <typename T, typename Law>
void run(const SlotArgs& a) {
  const T* params[kSlotMaxParams] = {};
  for (int k = 0; k < Law::kParams; ++k) params[k] = static_cast<const T*>(a.params[k]);
  T* out = static_cast<T*>(a.out);
  const int64_t nchunks = (a.n + kChunk - 1) / kChunk;
  // Tens of ns per element (a rejection loop): fewer elements than the
  // propose kernels' cutoff already pay for waking the pool.
  const int nt = threads_for(a.n * 8);
  const bool one_row = a.batch == 1;
  int64_t bad = 0;
#pragma omp parallel for num_threads(nt) if (nt > 1) schedule(dynamic, 1) reduction(+ : bad)
  for (int64_t c = 0; c < nchunks; ++c) {
    const int64_t begin = c * kChunk, end = std::min(a.n, (c + 1) * kChunk);
    bad += one_row ? run_chunk<T, Law, true>(a, params, begin, end, out)
                   : run_chunk<T, Law, false>(a, params, begin, end, out);
  }
  *a.exhausted += bad;
}

template <typename T>
void run_typed(const SlotArgs& a) {
  if (!slot_dispatch<T>(a.law, [&](auto law) { run<T, decltype(law)>(a); }))
    throw std::invalid_argument("rsfast slot_sample: unknown law code");
}

}  // namespace

void slot_sample(const SlotArgs& args) {
  if (args.n <= 0) return;
  if (args.dtype == kFloat32)
    run_typed<float>(args);
  else
    run_typed<double>(args);
}

}  // namespace rsfast::cpu::RSFAST_CPU_ISA
