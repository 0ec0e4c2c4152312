// CPU driver of slot mode (slot_sample/core.h). Elements are taken in fixed chunks
// (OpenMP, dynamic schedule): samples of one parameter row (strided by the
// batch size B) when rows have many samples, else contiguous elements with
// their own rows (per-element parameters). Every row is checked as it is read
// (Law::invalid: NaN, counted, check bits OR-ed into SlotArgs::invalid).
// Inside a chunk the tries run in rounds: round t makes try t of every element
// still pending, kLanes elements at a time in SIMD lanes (Philox words, then
// the law's branch-free try), and a scalar pass writes the accepted values and
// compacts the pending list. A per-element chunk is first grouped by variant
// (counting sort; skipped when every element has one variant), each group
// running its variant's try. Try t of element i
// reads the same Philox blocks whatever the chunking or grouping, so the
// output depends only on (params, seed, offset), never on the thread count.
#include "ops/slot_sample/core.h"

#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <utility>

#include "parallel.h"
#include "ops/slot_sample/api.h"
#include "ops/slot_sample/laws.h"

namespace rsfast::cpu::RSFAST_CPU_ISA {
namespace {

// Elements per scheduling chunk.
constexpr int64_t kChunk = 2048;
constexpr int kW = (int)kLanes;
// Rows with at least this many samples run vectorised, row by row.
constexpr int64_t kMinSamplesPerRow = 64;

// Whether the per-element path rebuilds Preps in the SIMD lanes (a law's
// `static constexpr bool kLanePrepare = true`): only where GCC vectorises that
// loop (measured), else stored Preps in a scalar loop are faster.
template <typename Law, typename = void>
struct SlotLanePrepare {
  static constexpr bool value = false;
};
template <typename Law>
struct SlotLanePrepare<Law, decltype((void)Law::kLanePrepare)> {
  static constexpr bool value = Law::kLanePrepare;
};

// Whether the law has try_fresh(raw params, words, x): one try from the raw
// parameters, cheaper than prepare + try_once for a Prep used once.
template <typename Law, typename = void>
struct SlotFreshTry {
  static constexpr bool value = false;
};
template <typename Law>
struct SlotFreshTry<Law, decltype((void)&Law::try_fresh)> {
  static constexpr bool value = true;
};

// Whether the law has try_lane<cells, kind>(params, words, x) and lane_row<kind>(params):
// the per-element path's SIMD pass for laws without variants (the discrete
// laws' inversion rows), which decides a try in the lanes where it can and
// leaves the rest to the scalar try.
template <typename Law, typename T, typename = void>
struct SlotLaneTry {
  static constexpr bool value = false;
};

// The Prep of a lane of variant V: Law::prepare_lane<V> where the law has it
// (a cheaper, branch-free prepare for a known variant), else Law::prepare.
template <typename Law, int V, typename P, typename = void>
struct SlotLanePrep {
  static typename Law::Prep get(const P& p) { return Law::prepare(p); }
};
template <typename Law, int V, typename P>
struct SlotLanePrep<Law, V, P, decltype((void)Law::template prepare_lane<V>(std::declval<const P&>()))> {
  static typename Law::Prep get(const P& p) { return Law::template prepare_lane<V>(p); }
};

// The variant of a valid row from its raw parameters in the per-element check
// loop: Law::lane_variant where the law has it (branch-free, vectorised; it
// may answer kVariants, "undecided", resolved by variant(prepare) afterwards),
// else Law::variant(Law::prepare(p)).
template <typename Law, typename P, typename = void>
struct SlotLaneVariant {
  static int get(const P& p) { return Law::variant(Law::prepare(p)); }
};
template <typename Law, typename P>
struct SlotLaneVariant<Law, P, decltype((void)Law::lane_variant(std::declval<const P&>()))> {
  static int get(const P& p) { return Law::lane_variant(p); }
};

// Parameter k of one SIMD lane: p[k] = pr[k][l] of a [kParams][kW] array.
template <typename T>
struct LaneParams {
  const T* base;
  inline __attribute__((always_inline)) T operator[](int k) const { return base[k * kW]; }
};
template <typename Law, typename T>
struct SlotLaneTry<Law, T,
                   decltype((void)Law::template try_lane<0, 1, 1>(std::declval<const LaneParams<double>&>(),
                                                                std::declval<const SlotWords<Law::kBlocks>&>(),
                                                                std::declval<LaneCells&>(), std::declval<T&>()))> {
  static constexpr bool value = true;
};

// The lanes' raw parameters pr[p][l] = raw[p][li[l]] of a [kParams][kW] array
// (of U: the lane-try pass reads double, so that float32 rows put no float
// lanes beside the double arithmetic; GCC 12 found no vector type for them).
template <typename T, typename U, int NP>
inline __attribute__((always_inline)) void gather_lane_params(const T* const* raw, const uint32_t* li, int lanes, U (&pr)[NP][kW]) {
  if (lanes == kW && li[kW - 1] - li[0] == (uint32_t)(kW - 1)) {
    // kW consecutive elements (idx ascends: most groups of the first round):
    // unit-stride copies instead of per-lane gathers.
    for (int p = 0; p < NP; ++p) {
      const T* src = raw[p] + li[0];
      for (int l = 0; l < kW; ++l) pr[p][l] = (U)src[l];
    }
  } else {
    for (int l = 0; l < kW; ++l)
      for (int p = 0; p < NP; ++p) pr[p][l] = (U)raw[p][li[l]];
  }
#if defined(__GNUC__)
  // The lanes read pr from memory: without this GCC forwards the values just
  // stored into a loop-carried PHI (VonMises' k) and gives up the loop.
  asm volatile("" : : "r"(&pr[0][0]) : "memory");
#endif
}

// Parameter p of chunk-local element k: raw[p][k] (raw[p]: the chunk's slice of
// parameter p, in the caller's array or a local copy).
// The slices by value (not through a pointer to an array of pointers): the
// vectoriser then keeps them in registers; through memory it reloads them
// after every uint8_t store (char stores may alias anything) and gives up.
template <typename T>
struct ChunkSlices {
  const T* r[kSlotMaxParams];
};
template <typename T>
struct ChunkParams {
  ChunkSlices<T> raw;
  int k;
  inline __attribute__((always_inline)) T operator[](int p) const { return raw.r[p][k]; }
};

// The lanes' inversion cells so far (LaneCells of each lane), kept between
// the passes of one kind.
struct LaneState {
  alignas(64) double p[kW];
  alignas(64) double F[kW];
  alignas(64) double c[kW];
};

// Law::try_lane<kFrom, kTo, kKind> of kW lanes (raw parameters pr as double,
// words w, cells so far st): done[l] = 1 and val[l] where it decided. A
// function of its own: inside run_chunk GCC 12 left the float32 Binomial's
// loop scalar.
template <typename T, typename Law, int kFrom, int kTo, int kKind, int NP = Law::kParams, int K = Law::kBlocks>
__attribute__((noinline)) void lane_tries(const double (&pr)[NP][kW], const uint32_t (&w)[4 * K][kW], LaneState& st,
                                          int* __restrict done, T* __restrict val) {
  // Lanes l and l + kW/2 in one iteration: two independent chains side by
  // side (a try is a chain of dependent operations).
  constexpr int H = kW / 2;
#pragma omp simd
  for (int l = 0; l < H; ++l) {
    SlotWords<K> w0, w1;
    for (int m = 0; m < 4 * K; ++m) {
      w0.w[m] = w[m][l];
      w1.w[m] = w[m][l + H];
    }
    LaneCells s0{}, s1{};
    if constexpr (kFrom > 0) {  // resumed: the cells so far
      s0 = LaneCells{st.p[l], st.F[l], st.c[l]};
      s1 = LaneCells{st.p[l + H], st.F[l + H], st.c[l + H]};
    }
    done[l] = Law::template try_lane<kFrom, kTo, kKind>(LaneParams<double>{&pr[0][l]}, w0, s0, val[l]) ? 1 : 0;
    done[l + H] = Law::template try_lane<kFrom, kTo, kKind>(LaneParams<double>{&pr[0][l + H]}, w1, s1, val[l + H]) ? 1 : 0;
    st.p[l] = s0.p, st.F[l] = s0.F, st.c[l] = s0.c;
    st.p[l + H] = s1.p, st.F[l + H] = s1.F, st.c[l + H] = s1.c;
  }
}

// The lane passes over cells kFrom .. kTo - 1 of the kinds in `kinds` (bit
// k - 1: kind k, some valid row of the chunk has Law::lane_row<k>),
// st[k - 1] holding kind k's cells: a lane a pass decides takes done = 1 and
// its value; a lane it leaves past its cells takes x = kLanePast (a pass
// leaves rows of other kinds undecided, never past). A resumed pass gives a
// lane its own pass decided before the same value again (its count no
// longer moves).
template <typename T, typename Law, int kFrom, int kTo, int NP = Law::kParams, int K = Law::kBlocks>
inline void lane_passes(uint8_t kinds, const double (&pr)[NP][kW], const uint32_t (&w)[4 * K][kW],
                        LaneState (&st)[Law::kLaneKinds], int* done, T* val) {
  static_assert(Law::kLaneKinds <= 2, "lane_passes runs kinds 1 and 2");
  if (kinds != 3) {  // one kind: straight into done and val
    if (kinds == 1)
      lane_tries<T, Law, kFrom, kTo, 1>(pr, w, st[0], done, val);
    else if constexpr (Law::kLaneKinds > 1)
      lane_tries<T, Law, kFrom, kTo, 2>(pr, w, st[1], done, val);
    return;
  }
  alignas(64) int d[kW];
  alignas(64) T v[kW];
  auto merge = [&] {
    for (int l = 0; l < kW; ++l) {
      const bool take = !done[l] && (d[l] || v[l] == T(Law::kLanePast));
      done[l] = take ? d[l] : done[l];
      val[l] = take ? v[l] : val[l];
    }
  };
  if (kinds & 1) {
    lane_tries<T, Law, kFrom, kTo, 1>(pr, w, st[0], d, v);
    merge();
  }
  if constexpr (Law::kLaneKinds > 1) {
    if (kinds & 2) {
      lane_tries<T, Law, kFrom, kTo, 2>(pr, w, st[1], d, v);
      merge();
    }
  }
}

// The lane passes from cell kFrom on, kLaneCellsStep cells at a time while
// some lane's draw lies past the cells so far (x = kLanePast), up to
// kLaneCellsLast.
template <typename T, typename Law, int kFrom, int NP = Law::kParams, int K = Law::kBlocks>
inline void lane_passes_from(uint8_t kinds, int lanes, const double (&pr)[NP][kW], const uint32_t (&w)[4 * K][kW],
                             LaneState (&st)[Law::kLaneKinds], int* done, T* val) {
  if constexpr (kFrom < Law::kLaneCellsLast) {
    bool more = false;
    for (int l = 0; l < lanes; ++l) more |= !done[l] && val[l] == T(Law::kLanePast);
    if (!more) return;
    constexpr int kTo = kFrom + Law::kLaneCellsStep < Law::kLaneCellsLast ? kFrom + Law::kLaneCellsStep : Law::kLaneCellsLast;
    lane_passes<T, Law, kFrom, kTo>(kinds, pr, w, st, done, val);
    lane_passes_from<T, Law, kTo>(kinds, lanes, pr, w, st, done, val);
  }
}

// Round-based tries of the `count` chunk-local elements listed in idx, SIMD
// lanes across elements. kOneRow: every element uses `preps[0]` and local
// element k is (s0 + k) * B + j (the elements of one parameter row, strided by
// B); otherwise local element k is s0 + k with its raw parameters raw[p][k]
// and, for laws with variants but no lane prepare, its stored preps[k].
// kVariant >= 0: every listed element is of that variant (try_variant<kVariant>
// in the lanes); -1: try_once, in SIMD lanes for one row, else a scalar loop
// that rebuilds each element's Prep (laws without variants have branchy tries
// that do not vectorise anyway; with lane_kinds, try_lane first decides what
// it can in SIMD lanes). idx is overwritten. Returns the number of elements
// whose tries ran out.
template <typename T, typename Law, bool kOneRow, int kVariant>
int64_t run_chunk(const SlotArgs& a, const typename Law::Prep* preps, const T* const* raw, int64_t s0, int64_t B, int64_t j,
                  uint32_t* __restrict idx, int count, T* __restrict out, uint8_t lane_kinds) {
  using Prep = typename Law::Prep;
  constexpr int K = Law::kBlocks;
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
      } else if constexpr (kVariant >= 0 && SlotLanePrepare<Law>::value) {
        // Each lane's Prep is rebuilt from its raw parameters inside the SIMD
        // loop (prepare is a few exact IEEE operations: the same bits as the
        // stored Prep), read through LaneParams: GCC vectorises those
        // unit-stride loads, not the lanes' indirect, strided or union loads
        // of stored Prep fields.
        alignas(64) T pr[Law::kParams][kW];
        gather_lane_params(raw, li, lanes, pr);
#pragma omp simd
        for (int l = 0; l < kW; ++l) {
          SlotWords<K> ww;
          for (int m = 0; m < 4 * K; ++m) ww.w[m] = w[m][l];
          const LaneParams<T> row{&pr[0][l]};
          acc[l] = Law::template try_variant<kVariant>(SlotLanePrep<Law, kVariant, LaneParams<T>>::get(row), ww, val[l]) ? 1 : 0;
        }
      } else if constexpr (kVariant >= 0) {
        // Stored per-element Preps, one variant per group (no mode branches);
        // a scalar loop: GCC vectorises neither this nor, for these laws, the
        // lane-prepare loop above.
        for (int l = 0; l < lanes; ++l) {
          SlotWords<K> ww;
          for (int m = 0; m < 4 * K; ++m) ww.w[m] = w[m][l];
          acc[l] = Law::template try_variant<kVariant>(preps[li[l]], ww, val[l]) ? 1 : 0;
        }
      } else {
        // Laws without variants (the discrete ones): the Prep is rebuilt from
        // the raw parameters at every try, in registers. Most elements take
        // one try, and a stored Prep array (100+ bytes an element) cost more
        // to write and read back than prepare itself. A law's try_lane first
        // decides what it can in SIMD lanes (the same values): over the first
        // cells, then over more, resumed, for a group with a draw past them.
        alignas(64) int done[kW] = {};  // 1: decided in the lanes
        if constexpr (SlotLaneTry<Law, T>::value) {
          if (lane_kinds != 0 && t == 0) {  // inversion never rejects: later rounds hold none of its rows
            alignas(64) double pr[Law::kParams][kW];
            gather_lane_params(raw, li, lanes, pr);
            LaneState st[Law::kLaneKinds];
            lane_passes<T, Law, 0, Law::kLaneCellsFirst>(lane_kinds, pr, w, st, done, val);
            lane_passes_from<T, Law, Law::kLaneCellsFirst>(lane_kinds, lanes, pr, w, st, done, val);
          }
        }
        for (int l = 0; l < lanes; ++l) {
          acc[l] = 1;
          if (done[l]) continue;
          SlotWords<K> ww;
          for (int m = 0; m < 4 * K; ++m) ww.w[m] = w[m][l];
          T row[kSlotMaxParams] = {};
          for (int p = 0; p < Law::kParams; ++p) row[p] = raw[p][li[l]];
          if constexpr (SlotFreshTry<Law>::value)
            acc[l] = Law::try_fresh(row, ww, val[l]) ? 1 : 0;
          else
            acc[l] = Law::try_once(Law::prepare(row), ww, val[l]) ? 1 : 0;
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
void load_row(const T* const* params, int64_t r, T* row) {
  for (int p = 0; p < Law::kParams; ++p) row[p] = params[p][r];
}

template <typename Law>
constexpr int variants() {
  if constexpr (SlotHasVariants<Law>::value)
    return Law::kVariants;
  else
    return 0;
}

// run_chunk with the variant v as a compile-time constant (-1: none).
template <typename T, typename Law, bool kOneRow>
int64_t run_variant(int v, const SlotArgs& a, const typename Law::Prep* preps, const T* const* raw, int64_t s0, int64_t B, int64_t j,
                    uint32_t* idx, int count, T* out, uint8_t lane_kinds = 0) {
  constexpr int NV = variants<Law>();
  if constexpr (NV > 0) {
    if (v == 0) return run_chunk<T, Law, kOneRow, 0>(a, preps, raw, s0, B, j, idx, count, out, lane_kinds);
    if constexpr (NV > 1)
      if (v == 1) return run_chunk<T, Law, kOneRow, (NV > 1 ? 1 : 0)>(a, preps, raw, s0, B, j, idx, count, out, lane_kinds);
    if constexpr (NV > 2)
      if (v == 2) return run_chunk<T, Law, kOneRow, (NV > 2 ? 2 : 0)>(a, preps, raw, s0, B, j, idx, count, out, lane_kinds);
    if constexpr (NV > 3)
      if (v == 3) return run_chunk<T, Law, kOneRow, (NV > 3 ? 3 : 0)>(a, preps, raw, s0, B, j, idx, count, out, lane_kinds);
    return 0;
  } else {
    return run_chunk<T, Law, kOneRow, -1>(a, preps, raw, s0, B, j, idx, count, out, lane_kinds);
  }
}

template <typename T, typename Law>
void run(const SlotArgs& a) {
  using Prep = typename Law::Prep;
  constexpr int NV = variants<Law>();
  const T* params[kSlotMaxParams] = {};
  for (int k = 0; k < Law::kParams; ++k) params[k] = static_cast<const T*>(a.params[k]);
  T* out = static_cast<T*>(a.out);
  const int64_t B = a.batch, S = a.n / B;  // n = S * B: S samples of every row
  // Tens of ns per element (a rejection loop): fewer elements than the
  // propose kernels' cutoff already pay for waking the pool.
  const int nt = threads_for(a.n * 8);
  int64_t bad = 0, flags = 0;
  if (S >= kMinSamplesPerRow) {
    // Row-major chunks: chunk c covers samples [sc * kChunk, ...) of row j, all
    // with one Prep, vectorised across samples.
    const int64_t per_row = (S + kChunk - 1) / kChunk;
#pragma omp parallel for num_threads(nt) if (nt > 1) schedule(dynamic, 1) reduction(+ : bad) reduction(| : flags)
    for (int64_t c = 0; c < B * per_row; ++c) {
      const int64_t j = c / per_row, s0 = (c % per_row) * kChunk;
      const int count = (int)std::min(kChunk, S - s0);
      T row[kSlotMaxParams] = {};
      load_row<T, Law>(params, j, row);
      const uint32_t fail = Law::invalid(row);
      if (fail) {
        flags |= fail;
        bad += count;
        for (int k = 0; k < count; ++k) out[(s0 + k) * B + j] = T(NAN);
        continue;
      }
      const Prep prep = Law::prepare(row);
      uint32_t idx[kChunk];
      for (int k = 0; k < count; ++k) idx[k] = (uint32_t)k;
      int v = -1;
      if constexpr (NV > 0) v = Law::variant(prep);
      bad += run_variant<T, Law, true>(v, a, &prep, nullptr, s0, B, j, idx, count, out);
    }
  } else {
    // Few samples per row: contiguous chunks of elements, each with its own
    // Prep, grouped by variant so that each group runs one variant's SIMD
    // tries. Element i's tries read the same words whatever its group.
    const int64_t nchunks = (a.n + kChunk - 1) / kChunk;
#pragma omp parallel for num_threads(nt) if (nt > 1) schedule(dynamic, 1) reduction(+ : bad) reduction(| : flags)
    for (int64_t c = 0; c < nchunks; ++c) {
      const int64_t begin = c * kChunk;
      const int count = (int)std::min(kChunk, a.n - begin);
      Prep preps[kChunk];
      T copy[kSlotMaxParams * kChunk];  // copy[p * kChunk + k]: parameter p of local element k, when rows wrap
      const T* raw[kSlotMaxParams] = {};  // raw[p][k]: parameter p of local element k
      uint8_t var[kChunk];
      uint8_t vmin = 255, vmax = 0;  // over var[]: 255 marks an invalid row
      uint8_t lane1 = 0, lane2 = 0;  // a valid row the lane pass of kind 1 (2) may decide
      int64_t j = begin % B;  // the row walks with the element index
      if (j + count <= B) {
        // No wrap inside the chunk (always so with one row per element): the caller's arrays.
        for (int p = 0; p < Law::kParams; ++p) raw[p] = params[p] + j;
      } else {
        for (int k = 0; k < count; ++k) {
          for (int p = 0; p < Law::kParams; ++p) copy[p * kChunk + k] = params[p][j];
          if (++j == B) j = 0;
        }
        for (int p = 0; p < Law::kParams; ++p) raw[p] = copy + p * kChunk;
      }
      if constexpr (SlotLanePrepare<Law>::value || (NV == 0 && SlotLaneTry<Law, T>::value)) {
        // Checks and variants in SIMD lanes (no stored Preps: the tries rebuild them).
        uint32_t fails[kChunk];
        ChunkSlices<T> slices;
        for (int p = 0; p < kSlotMaxParams; ++p) slices.r[p] = raw[p];
#pragma omp simd reduction(min : vmin) reduction(max : vmax, lane1, lane2)
        for (int k = 0; k < count; ++k) {
          const ChunkParams<T> row{slices, k};
          const uint32_t fail = Law::invalid(row);
          fails[k] = fail;
          uint8_t v = 0;  // laws without variants: 0 for every valid row
          if constexpr (NV > 0) v = (uint8_t)SlotLaneVariant<Law, ChunkParams<T>>::get(row);
          if constexpr (SlotLaneTry<Law, T>::value) {
            const uint8_t k1 = !fail && Law::template lane_row<1>(row) ? 1 : 0;
            lane1 = k1 > lane1 ? k1 : lane1;
            if constexpr (Law::kLaneKinds > 1) {
              const uint8_t k2 = !fail && Law::template lane_row<2>(row) ? 1 : 0;
              lane2 = k2 > lane2 ? k2 : lane2;
            }
          }
          v = fail ? (uint8_t)255 : v;
          var[k] = v;
          vmin = v < vmin ? v : vmin;
          vmax = v > vmax ? v : vmax;
        }
        if (vmax >= (uint8_t)(NV > 0 ? NV : 255)) {  // an invalid row (255) or one undecided by lane_variant (NV)
          vmin = 255;
          vmax = 0;
          for (int k = 0; k < count; ++k) {
            if (fails[k]) {
              flags |= fails[k];
              ++bad;
              out[begin + k] = T(NAN);
            } else if constexpr (NV > 0) {
              if (var[k] == (uint8_t)NV) var[k] = (uint8_t)Law::variant(Law::prepare(ChunkParams<T>{slices, k}));
            }
            vmin = std::min(vmin, var[k]);
            vmax = std::max(vmax, var[k]);
          }
        }
      } else {
        for (int k = 0; k < count; ++k) {
          T row[kSlotMaxParams] = {};
          for (int p = 0; p < Law::kParams; ++p) row[p] = raw[p][k];
          const uint32_t fail = Law::invalid(row);
          if (fail) {
            flags |= fail;
            ++bad;
            out[begin + k] = T(NAN);
            var[k] = 255;
            continue;
          }
          if constexpr (NV > 0) {
            preps[k] = Law::prepare(row);
            var[k] = (uint8_t)Law::variant(preps[k]);
          } else {
            var[k] = 0;  // the tries rebuild the Prep (run_chunk)
          }
          vmin = std::min(vmin, var[k]);
          vmax = std::max(vmax, var[k]);
        }
      }
      if (vmin == vmax) {  // one variant, no invalid row (the common case): no grouping
        uint32_t idx[kChunk];
        for (int k = 0; k < count; ++k) idx[k] = (uint32_t)k;
        bad += run_variant<T, Law, false>(NV > 0 ? vmin : -1, a, preps, raw, begin, B, 0, idx, count, out, (uint8_t)(lane1 | lane2 << 1));
        continue;
      }
      // Group the elements by variant (each group keeps index order): one
      // counting pass and one branch-free compaction pass per variant. A
      // histogram (++count[var[k]]) chains every element through one counter
      // in memory when the variants agree: that was a fifth of the time.
      constexpr int G = NV > 0 ? NV : 1;
      int start[G + 1];
      start[0] = 0;
      for (int v = 0; v < G; ++v) {
        int c = 0;
        for (int k = 0; k < count; ++k) c += var[k] == v;
        start[v + 1] = start[v] + c;
      }
      uint32_t idx[kChunk + 1];  // + 1: the compaction below stores one past a group's end
      for (int v = 0; v < G; ++v) {
        uint32_t* dst = idx + start[v];
        const int m = start[v + 1] - start[v];
        if (m == count) {
          for (int k = 0; k < count; ++k) dst[k] = (uint32_t)k;
        } else if (m > 0) {
          int pos = 0;
          for (int k = 0; k < count; ++k) {
            dst[pos] = (uint32_t)k;  // kept when var[k] == v; else overwritten (or the next group's slot)
            pos += var[k] == v;
          }
        }
      }
      for (int v = 0; v < G; ++v) {
        const int m = start[v + 1] - start[v];
        if (m > 0)
          bad += run_variant<T, Law, false>(NV > 0 ? v : -1, a, preps, raw, begin, B, 0, idx + start[v], m, out, (uint8_t)(lane1 | lane2 << 1));
      }
    }
  }
  *a.exhausted += bad;
  *a.invalid |= flags;
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
