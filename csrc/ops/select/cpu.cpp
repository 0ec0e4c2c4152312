// CPU drivers of the group selection ops (rsfast.select). Groups are split
// into fixed chunks scheduled dynamically over OpenMP threads; every group's
// result depends on that group only (RSO: on its own Philox stream), so the
// output never depends on the number of threads. top_fraction and dedupe
// work on the whole batch: the pivot key by selection and per-chunk counts
// combined in chunk order, and a hash table whose final content (the
// smallest index of each pair) does not depend on the insertion order.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <vector>

#include "parallel.h"
#include "philox_lanes.h"
#include "ops/select/api.h"
#include "ops/select/core.h"


namespace rsfast::cpu::RSFAST_CPU_ISA {
namespace {

// Groups per scheduling chunk: about kChunkValues values each.
constexpr int64_t kChunkValues = 8192;

int64_t total_values(const SelectArgs& a) { return a.offsets ? a.offsets[a.groups] : a.groups * a.n; }

// Calls f(g) for every group, in parallel over fixed chunks of groups.
template <typename F>
void for_each_group(const SelectArgs& a, F&& f) {
  const int64_t m = total_values(a);
  const int64_t avg = a.groups > 0 ? std::max<int64_t>(1, m / a.groups) : 1;
  const int64_t chunk = std::max<int64_t>(1, kChunkValues / avg);
  const int64_t nchunks = (a.groups + chunk - 1) / chunk;
  const int nt = threads_for(std::max(m, a.groups));
#pragma omp parallel for num_threads(nt) if (nt > 1) schedule(dynamic, 1)
  for (int64_t c = 0; c < nchunks; ++c) {
    const int64_t end = std::min(a.groups, (c + 1) * chunk);
    for (int64_t g = c * chunk; g < end; ++g) f(g);
  }
}

// ------------------------------------------------------------------ best_of_n

template <typename T>
bool has_nan(const T* v, int64_t n) {
  uint32_t nan = 0;
#pragma omp simd reduction(| : nan)
  for (int64_t c = 0; c < n; ++c) nan |= (uint32_t)(v[c] != v[c]);
  return nan != 0;
}

template <typename T>
void best_of_n_run(const SelectArgs& a) {
  const GroupLayout L{a.groups, a.n, a.offsets};
  const T* values = static_cast<const T*>(a.values);
  const int64_t k = a.k;
  for_each_group(a, [&](int64_t g) {
    const T* v = values + L.begin(g);
    const int64_t n = L.size(g);
    int64_t* out = a.out + g * k;
    const int64_t kk = std::min(k, n);
    if (kk == 1) {
      // The first index holding the largest non-NaN value (a vectorised max, then a search); a group
      // of NaN only gives index 0 (NaN ties by index).
      T mx = (T)-INFINITY;
#pragma omp simd reduction(max : mx)
      for (int64_t c = 0; c < n; ++c) mx = v[c] > mx ? v[c] : mx;
      int64_t best = 0;
      for (int64_t c = 0; c < n; ++c)
        if (v[c] == mx) {
          best = c;
          break;
        }
      out[0] = best;
    } else if (kk > 0 && kk <= 32 && !has_nan(v, n)) {
      // kk passes: pick j is the largest value ranking after pick j - 1 (smaller, or equal at a higher
      // index), found by a vectorised max and a search for its first eligible index.
      T pv = (T)INFINITY;
      int64_t pi = -1;
      for (int64_t j = 0; j < kk; ++j) {
        T mx = (T)-INFINITY;
#pragma omp simd reduction(max : mx)
        for (int64_t c = 0; c < n; ++c) {
          const bool eligible = (v[c] < pv) | ((v[c] == pv) & (c > pi));
          mx = eligible && v[c] > mx ? v[c] : mx;
        }
        int64_t idx = 0;
        for (int64_t c = 0; c < n; ++c)
          if (v[c] == mx && (mx < pv || c > pi)) {
            idx = c;
            break;
          }
        out[j] = idx;
        pv = mx;
        pi = idx;
      }
    } else if (kk > 0 && kk <= 32) {
      // Sorted list of the best kk so far: insertion, O(n kk) worst case. Once the list is full, a
      // later candidate enters only when strictly larger than the last entry (ties rank after it, NaN
      // below it), which is one comparison for most candidates.
      int64_t top[32];
      int64_t have = 0;
      for (int64_t c = 0; c < n; ++c) {
        if (have == kk) {
          const T last = v[top[kk - 1]];
          if (last == last && !(v[c] > last)) continue;
          if (!ranks_before(v[c], c, last, top[kk - 1])) continue;
        }
        int64_t j = have < kk ? have++ : kk - 1;
        while (j > 0 && ranks_before(v[c], c, v[top[j - 1]], top[j - 1])) {
          top[j] = top[j - 1];
          --j;
        }
        top[j] = c;
      }
      std::copy(top, top + kk, out);
    } else if (kk > 0) {
      // The group's slice of the torch-allocated index scratch (select_scratch_bytes).
      int64_t* idx = static_cast<int64_t*>(a.scratch) + L.begin(g);
      for (int64_t c = 0; c < n; ++c) idx[c] = c;
      std::partial_sort(idx, idx + kk, idx + n,
                        [v](int64_t x, int64_t y) { return ranks_before(v[x], x, v[y], y); });
      std::copy(idx, idx + kk, out);
    }
    for (int64_t j = std::max<int64_t>(kk, 0); j < k; ++j) out[j] = -1;
  });
}

// ------------------------------------------------------------------------ rso

// Candidates decided together in a round (a multiple of 8 Philox blocks).
constexpr int kRsoWidth = 32;

// The uniforms of candidates c0 .. c0 + kRsoWidth - 1 (c0 a multiple of
// kRsoWidth) of round t: Philox blocks t * nb + c0 / V + j.
inline void rso_uniforms(uint32_t k0, uint32_t k1, uint64_t g, uint32_t offset, uint32_t block0,
                         float (&u)[kRsoWidth]) {
  constexpr int NB = kRsoWidth / 4;
  alignas(32) uint32_t w[4][NB];
  philox_consecutive_blocks<NB>(k0, k1, (uint32_t)g, (uint32_t)(g >> 32), offset, block0, w);
#pragma omp simd
  for (int j = 0; j < NB; ++j)
    for (int l = 0; l < 4; ++l) u[4 * j + l] = u01_f23(w[l][j]);
}
inline void rso_uniforms(uint32_t k0, uint32_t k1, uint64_t g, uint32_t offset, uint32_t block0,
                         double (&u)[kRsoWidth]) {
  constexpr int NB = kRsoWidth / 2;
  alignas(32) uint32_t w[4][NB];
  philox_consecutive_blocks<NB>(k0, k1, (uint32_t)g, (uint32_t)(g >> 32), offset, block0, w);
#pragma omp simd
  for (int j = 0; j < NB; ++j) {
    u[2 * j] = u01_f52(w[0][j], w[1][j]);
    u[2 * j + 1] = u01_f52(w[2][j], w[3][j]);
  }
}

// Decisions of W candidates (their rewards rc, NaN once accepted) in a round
// with maximum rmax, as bits (bit j: candidate j accepted if the round were
// still open). Branch-free so that the float loop vectorises.
inline uint32_t rso_decide(const float* __restrict rc, const float* __restrict u, float rmax, float beta) {
  uint32_t acc[kRsoWidth];
#pragma omp simd
  for (int j = 0; j < kRsoWidth; ++j)
    acc[j] = (uint32_t)(rc[j] == rmax) | (uint32_t)(u[j] < rso_prob(rc[j], rmax, beta));
  uint32_t bits = 0;
  for (int j = 0; j < kRsoWidth; ++j) bits |= acc[j] << j;
  return bits;
}
inline uint32_t rso_decide(const double* __restrict rc, const double* __restrict u, double rmax, double beta) {
  uint64_t acc[kRsoWidth];
#pragma omp simd
  for (int j = 0; j < kRsoWidth; ++j)
    acc[j] = (uint64_t)(rc[j] == rmax) | (uint64_t)(u[j] < rso_prob(rc[j], rmax, beta));
  uint32_t bits = 0;
  for (int j = 0; j < kRsoWidth; ++j) bits |= (uint32_t)acc[j] << j;
  return bits;
}

template <typename T>
void rso_run(const SelectArgs& a) {
  constexpr int V = RsoLayout<T>::kPerBlock;
  constexpr int W = kRsoWidth;
  static_assert(W % V == 0 && W <= 32, "a width of candidates covers whole blocks and fits a uint32 mask");
  const GroupLayout L{a.groups, a.n, a.offsets};
  const T* values = static_cast<const T*>(a.values);
  const T beta = (T)a.beta;
  const int64_t k = a.k;
  const uint32_t k0 = (uint32_t)a.seed, k1 = (uint32_t)(a.seed >> 32);
  for_each_group(a, [&](int64_t g) {
    // The group's rewards, padded to a multiple of W; accepted candidates are
    // overwritten with NaN, which is never the max and never accepted (as
    // NaN rewards in the kernel). A per-thread buffer, reached once per group
    // (every thread_local access in a shared library is a call).
    thread_local std::vector<T> r_buf;
    std::vector<T>& rv = r_buf;
    const int64_t n = L.size(g);
    const int64_t padded = (n + W - 1) / W * W;
    rv.assign(values + L.begin(g), values + L.begin(g) + n);
    rv.resize((size_t)padded, (T)NAN);
    T* __restrict r = rv.data();
    int64_t* out = a.out + g * k;
    const int64_t nb = (n + V - 1) / V;
    int64_t count = 0;
    // Every round accepts its r_max: at most min(k, n) rounds.
    for (int64_t t = 0; t < std::min(k, n) && count < k; ++t) {
      T rmax = (T)-INFINITY;
      int64_t live = 0;
#pragma omp simd reduction(max : rmax) reduction(+ : live)
      for (int64_t c = 0; c < padded; ++c) {
        rmax = r[c] > rmax ? r[c] : rmax;
        live += r[c] == r[c];
      }
      if (live == 0) break;  // nothing but NaN left
      for (int64_t c0 = 0; c0 < n && count < k; c0 += W) {
        alignas(32) T u[W];
        rso_uniforms(k0, k1, (uint64_t)g, a.offset, (uint32_t)(t * nb + c0 / V), u);
        uint32_t bits = rso_decide(r + c0, u, rmax, beta);
        // Accept in index order until the round reaches k.
        while (bits != 0 && count < k) {
          const int j = __builtin_ctz(bits);
          bits &= bits - 1;
          out[count++] = c0 + j;
          r[c0 + j] = (T)NAN;
        }
      }
    }
    for (int64_t j = count; j < k; ++j) out[j] = -1;
  });
}

// ------------------------------------------------------------------ threshold

template <typename T>
void threshold_run(const SelectArgs& a, bool write) {
  const GroupLayout L{a.groups, a.n, a.offsets};
  const T* values = static_cast<const T*>(a.values);
  const T bar = (T)a.min_reward;
  const int64_t cap = a.max_per_group < 0 ? INT64_MAX : a.max_per_group;
  for_each_group(a, [&](int64_t g) {
    const int64_t b = L.begin(g), n = L.size(g);
    const T* v = values + b;
    if (!write) {
      int64_t hits = 0;
      for (int64_t c = 0; c < n; ++c) hits += v[c] >= bar;
      a.counts[g] = std::min(hits, cap);
      return;
    }
    int64_t pos = a.counts[g];  // start of this group in out
    int64_t hits = 0;
    for (int64_t c = 0; c < n && hits < cap; ++c)
      if (v[c] >= bar) {
        a.out[pos + hits] = b + c;
        ++hits;
      }
  });
}

// --------------------------------------------------------------- top_fraction

template <typename T>
using KeyOf = typename std::conditional<sizeof(T) == 4, uint32_t, uint64_t>::type;

constexpr int64_t kTopChunk = 16384;

template <typename T>
void top_fraction_run(const SelectArgs& a) {
  using K = KeyOf<T>;
  const T* v = static_cast<const T*>(a.values);
  const int64_t m = a.groups * a.n;  // the batch, flattened (offsets ignored)
  const int64_t nchunks = (m + kTopChunk - 1) / kTopChunk;
  const int nt = threads_for(m);
  // Two arrays of keys in the torch-allocated scratch (select_scratch_bytes).
  K* keys = reinterpret_cast<K*>((reinterpret_cast<uintptr_t>(a.scratch) + 63) & ~uintptr_t(63));
  K* sel = keys + m;
#pragma omp parallel for num_threads(nt) if (nt > 1) schedule(static)
  for (int64_t c = 0; c < nchunks; ++c) {
    const int64_t end = std::min(m, (c + 1) * kTopChunk);
    for (int64_t i = c * kTopChunk; i < end; ++i) keys[i] = sel[i] = order_key(v[i]);
  }
  // The key of the count-th largest value (a selection, O(m)); its value does not depend on how
  // nth_element orders the rest.
  std::nth_element(sel, sel + (a.count - 1), sel + m, std::greater<K>());
  const K pivot = sel[a.count - 1];
  // Take every larger key and the first `want` equal ones in index order: per-chunk counts, combined
  // in chunk order, then each chunk writes its part.
  std::vector<int64_t> gt((size_t)nchunks), eq((size_t)nchunks);
#pragma omp parallel for num_threads(nt) if (nt > 1) schedule(static)
  for (int64_t c = 0; c < nchunks; ++c) {
    int64_t g = 0, e = 0;
    const int64_t end = std::min(m, (c + 1) * kTopChunk);
    for (int64_t i = c * kTopChunk; i < end; ++i) {
      g += keys[i] > pivot;
      e += keys[i] == pivot;
    }
    gt[(size_t)c] = g;
    eq[(size_t)c] = e;
  }
  int64_t greater = 0;
  for (int64_t c = 0; c < nchunks; ++c) greater += gt[(size_t)c];
  const int64_t want = a.count - greater;  // >= 1 equal keys to take
  std::vector<int64_t> pos((size_t)nchunks), take_eq((size_t)nchunks);
  int64_t p = 0, eq_before = 0;
  for (int64_t c = 0; c < nchunks; ++c) {
    const int64_t te = std::max<int64_t>(0, std::min(eq[(size_t)c], want - eq_before));
    pos[(size_t)c] = p;
    take_eq[(size_t)c] = te;
    p += gt[(size_t)c] + te;
    eq_before += eq[(size_t)c];
  }
#pragma omp parallel for num_threads(nt) if (nt > 1) schedule(static)
  for (int64_t c = 0; c < nchunks; ++c) {
    int64_t q = pos[(size_t)c], te = take_eq[(size_t)c];
    const int64_t end = std::min(m, (c + 1) * kTopChunk);
    for (int64_t i = c * kTopChunk; i < end; ++i) {
      const K key = keys[i];
      if (key > pivot || (key == pivot && te > 0)) {
        te -= key == pivot;
        a.out[q++] = i;
      }
    }
  }
}

// -------------------------------------------------------------- filter_groups

template <typename T>
void filter_groups_run(const SelectArgs& a) {
  const GroupLayout L{a.groups, a.n, a.offsets};
  const T* values = static_cast<const T*>(a.values);
  for_each_group(a, [&](int64_t g) {
    const T* v = values + L.begin(g);
    const int64_t n = L.size(g);
    uint8_t differs = 0;
    for (int64_t c = 1; c < n && !differs; ++c) differs = !(v[c] == v[0]);
    a.keep[g] = differs;
  });
}

// --------------------------------------------------------------------- dedupe

inline uint64_t atomic_load(const uint64_t* p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }

}  // namespace

void select_best_of_n(const SelectArgs& a) {
  if (a.dtype == kFloat32)
    best_of_n_run<float>(a);
  else
    best_of_n_run<double>(a);
}

void select_rso(const SelectArgs& a) {
  if (a.dtype == kFloat32)
    rso_run<float>(a);
  else
    rso_run<double>(a);
}

void select_threshold_count(const SelectArgs& a) {
  if (a.dtype == kFloat32)
    threshold_run<float>(a, false);
  else
    threshold_run<double>(a, false);
}

void select_threshold_write(const SelectArgs& a) {
  if (a.dtype == kFloat32)
    threshold_run<float>(a, true);
  else
    threshold_run<double>(a, true);
}

void select_top_fraction(const SelectArgs& a) {
  if (a.count <= 0) return;
  if (a.dtype == kFloat32)
    top_fraction_run<float>(a);
  else
    top_fraction_run<double>(a);
}

void select_filter_groups(const SelectArgs& a) {
  if (a.dtype == kFloat32)
    filter_groups_run<float>(a);
  else if (a.dtype == kFloat64)
    filter_groups_run<double>(a);
  else
    filter_groups_run<int64_t>(a);
}

// Pass 1 inserts every element into an open-addressing table (linear
// probing); a slot holds an element index and, once claimed, only ever
// indices of elements with the same (group, key), lowered by atomic min. So
// each pair ends in one slot holding its smallest index, whatever the thread
// interleaving. Pass 2 finds each element's slot again: keep[i] = slot == i.
void select_dedupe(const DedupeArgs& a) {
  if (a.m <= 0) return;
  const uint64_t tmask = (uint64_t)a.table_size - 1;
  uint64_t* table = a.table;
  const int64_t* keys = a.keys;
  const int64_t* groups = a.groups;
  const int nt = threads_for(a.m);
  const int64_t nchunks = (a.m + kChunkValues - 1) / kChunkValues;
  const int64_t tchunks = (a.table_size + kChunkValues - 1) / kChunkValues;
#pragma omp parallel num_threads(nt) if (nt > 1)
  {
#pragma omp for schedule(static)
    for (int64_t c = 0; c < tchunks; ++c) {
      const int64_t end = std::min(a.table_size, (c + 1) * kChunkValues);
      for (int64_t s = c * kChunkValues; s < end; ++s) table[s] = kDedupeEmpty;
    }
#pragma omp for schedule(dynamic, 1)
    for (int64_t c = 0; c < nchunks; ++c) {
      const int64_t end = std::min(a.m, (c + 1) * kChunkValues);
      for (int64_t i = c * kChunkValues; i < end; ++i) {
        const uint64_t me = (uint64_t)i;
        uint64_t s = pair_hash(groups[i], keys[i]) & tmask;
        for (int64_t probe = 0; probe < a.table_size; ++probe, s = (s + 1) & tmask) {
          uint64_t cur = atomic_load(table + s);
          if (cur == kDedupeEmpty) {
            if (__atomic_compare_exchange_n(table + s, &cur, me, false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
              break;  // claimed; cur now holds the index that won otherwise
          }
          if (groups[cur] == groups[i] && keys[cur] == keys[i]) {
            while (me < cur &&
                   !__atomic_compare_exchange_n(table + s, &cur, me, false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
            }
            break;
          }
        }
      }
    }
#pragma omp for schedule(dynamic, 1)
    for (int64_t c = 0; c < nchunks; ++c) {
      const int64_t end = std::min(a.m, (c + 1) * kChunkValues);
      for (int64_t i = c * kChunkValues; i < end; ++i) {
        uint64_t s = pair_hash(groups[i], keys[i]) & tmask;
        uint8_t keep = 0;
        for (int64_t probe = 0; probe < a.table_size; ++probe, s = (s + 1) & tmask) {
          const uint64_t cur = table[s];
          if (cur == kDedupeEmpty) break;  // unreachable: the pair was inserted on this probe path
          if (groups[cur] == groups[i] && keys[cur] == keys[i]) {
            keep = cur == (uint64_t)i;
            break;
          }
        }
        a.keep[i] = keep;
      }
    }
  }
}

}  // namespace rsfast::cpu::RSFAST_CPU_ISA
