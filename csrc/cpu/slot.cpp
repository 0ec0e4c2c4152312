// CPU driver of slot mode (slot.h). Elements are taken in fixed chunks
// (OpenMP, dynamic schedule): samples of one parameter row (strided by the
// batch size B) when rows have many samples, else contiguous elements. Inside
// a chunk the tries run in rounds: round t makes try t of every element still
// pending, kLanes elements at a time in SIMD lanes (Philox words, then the
// law's branch-free try_once), and a scalar pass writes the accepted values
// and compacts the pending list. Try t of element i reads the same Philox
// blocks whatever the chunking, so the output depends only on (params, seed,
// offset), never on the thread count.
#include "rsfast/slot.h"

#include <stdexcept>

#include "parallel.h"
#include "rsfast/drivers.h"
#include "rsfast/slot_laws.h"

namespace rsfast::cpu::RSFAST_CPU_ISA {
namespace {

// Elements per scheduling chunk.
constexpr int64_t kChunk = 2048;
constexpr int kW = (int)kLanes;
// Rows with at least this many samples run vectorised, row by row.
constexpr int64_t kMinSamplesPerRow = 64;

// Round-based tries of `count` elements, SIMD lanes across elements. kOneRow:
// every element uses `preps[0]` and element k is (s0 + k) * B + j (the
// elements of one parameter row, strided by B); otherwise element k is
// s0 + k with its own preps[k] (scalar loop: GCC does not vectorise the
// per-lane struct gathers). Returns the number of elements whose tries ran out.
template <typename T, typename Law, bool kOneRow, int kVariant>
int64_t run_chunk(const SlotArgs& a, const typename Law::Prep* preps, int64_t s0, int64_t B, int64_t j, int count,
                  T* __restrict out) {
  using Prep = typename Law::Prep;
  constexpr int K = Law::kBlocks;
  uint32_t idx[kChunk];
  for (int k = 0; k < count; ++k) idx[k] = (uint32_t)k;
  const uint32_t k0 = (uint32_t)a.seed, k1 = (uint32_t)(a.seed >> 32);
  auto elem = [&](uint32_t k) -> int64_t { return kOneRow ? (s0 + (int64_t)k) * B + j : s0 + (int64_t)k; };
  int np = count;
  for (int t = 0; t < kSlotMaxTries && np > 0; ++t) {
    int kept = 0;
    for (int g = 0; g < np; g += kW) {
      const int lanes = np - g < kW ? np - g : kW;
      alignas(64) uint32_t li[kW], lo[kW], hi[kW];
      for (int l = 0; l < kW; ++l) {
        li[l] = idx[g + (l < lanes ? l : 0)];
        const uint64_t e = (uint64_t)elem(li[l]);
        lo[l] = (uint32_t)e;
        hi[l] = (uint32_t)(e >> 32);
      }
      alignas(64) uint32_t w[4 * K][kW];
      for (int b = 0; b < K; ++b) {
        const uint32_t block = (uint32_t)(K * t + b);
#pragma omp simd
        for (int l = 0; l < kW; ++l) {
          const U32x4 r = philox4x32_10(block, lo[l], hi[l], a.offset, k0, k1);
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
          if constexpr (kVariant >= 0)
            acc[l] = Law::template try_variant<kVariant>(q, ww, val[l]) ? 1 : 0;
          else
            acc[l] = Law::try_once(q, ww, val[l]) ? 1 : 0;
        }
      } else {
        for (int l = 0; l < kW; ++l) {
          SlotWords<K> ww;
          for (int m = 0; m < 4 * K; ++m) ww.w[m] = w[m][l];
          acc[l] = Law::try_once(preps[li[l]], ww, val[l]) ? 1 : 0;
        }
      }
      for (int l = 0; l < lanes; ++l) {
        if (acc[l])
          out[elem(li[l])] = val[l];
        else
          idx[kept++] = li[l];
      }
    }
    np = kept;
  }
  for (int k = 0; k < np; ++k) out[elem(idx[k])] = T(NAN);
  return np;
}

template <typename T, typename Law>
typename Law::Prep prep_row(const T* const* params, int64_t r) {
  T row[kSlotMaxParams] = {};
  for (int p = 0; p < Law::kParams; ++p) row[p] = params[p][r];
  return Law::prepare(row);
}

template <typename T, typename Law>
void run(const SlotArgs& a) {
  using Prep = typename Law::Prep;
  const T* params[kSlotMaxParams] = {};
  for (int k = 0; k < Law::kParams; ++k) params[k] = static_cast<const T*>(a.params[k]);
  T* out = static_cast<T*>(a.out);
  const int64_t B = a.batch, S = a.n / B;  // n = S * B: S samples of every row
  // Tens of ns per element (a rejection loop): fewer elements than the
  // propose kernels' cutoff already pay for waking the pool.
  const int nt = threads_for(a.n * 8);
  int64_t bad = 0;
  if (S >= kMinSamplesPerRow) {
    // Row-major chunks: chunk c covers samples [sc * kChunk, ...) of row j, all
    // with one Prep, vectorised across samples.
    const int64_t per_row = (S + kChunk - 1) / kChunk;
#pragma omp parallel for num_threads(nt) if (nt > 1) schedule(dynamic, 1) reduction(+ : bad)
    for (int64_t c = 0; c < B * per_row; ++c) {
      const int64_t j = c / per_row, s0 = (c % per_row) * kChunk;
      const Prep prep = prep_row<T, Law>(params, j);
      const int count = (int)std::min(kChunk, S - s0);
      if constexpr (SlotHasVariants<Law>::value) {
        // The row's variant, as a compile-time constant in the SIMD loop.
        const int v = Law::variant(prep);
        if (v == 0)
          bad += run_chunk<T, Law, true, 0>(a, &prep, s0, B, j, count, out);
        else if constexpr (Law::kVariants > 1) {
          if (v == 1)
            bad += run_chunk<T, Law, true, (Law::kVariants > 1 ? 1 : 0)>(a, &prep, s0, B, j, count, out);
          else if constexpr (Law::kVariants > 2) {
            if (v == 2)
              bad += run_chunk<T, Law, true, (Law::kVariants > 2 ? 2 : 0)>(a, &prep, s0, B, j, count, out);
            else if constexpr (Law::kVariants > 3)
              bad += run_chunk<T, Law, true, (Law::kVariants > 3 ? 3 : 0)>(a, &prep, s0, B, j, count, out);
          }
        }
      } else {
        bad += run_chunk<T, Law, true, -1>(a, &prep, s0, B, j, count, out);
      }
    }
  } else {
    // Few samples per row: contiguous chunks of elements, one Prep each.
    const int64_t nchunks = (a.n + kChunk - 1) / kChunk;
#pragma omp parallel for num_threads(nt) if (nt > 1) schedule(dynamic, 1) reduction(+ : bad)
    for (int64_t c = 0; c < nchunks; ++c) {
      const int64_t begin = c * kChunk, count = std::min(kChunk, a.n - begin);
      Prep preps[kChunk];
      int64_t j = begin % B;  // the row walks with the element index
      for (int64_t k = 0; k < count; ++k) {
        preps[k] = prep_row<T, Law>(params, j);
        if (++j == B) j = 0;
      }
      bad += run_chunk<T, Law, false, -1>(a, preps, begin, B, 0, (int)count, out);
    }
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
