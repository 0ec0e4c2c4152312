// The per-row core of the CPU driver (csrc/ops/tokens/cpu.cpp, its only
// includer): scan, integer weights, the radix descent of the kept-set
// threshold and the inverse CDF. Compiled once per instruction set with it.
#pragma once
#include <algorithm>
#include <cmath>
#include <vector>

#include "ops/tokens/core.h"
#include "ops/tokens/api.h"
#include "parallel.h"

namespace rsfast::tokens::cpu::RSFAST_CPU_ISA {
namespace {
constexpr int64_t kTile = 512;

// Per-thread scratch of one row.
struct Scratch {
  std::vector<uint64_t> q;   // [V] integer weights
  std::vector<uint32_t> ck;  // candidate keys of a boundary bucket
  std::vector<uint64_t> cq;  // their weights
  uint32_t cnt0[kBuckets];   // level-0 histogram of the row
  uint64_t mass0[kBuckets];
  uint32_t cnt[kBuckets];  // histogram of a deeper level
  uint64_t mass[kBuckets];
  std::vector<float> tile_max;  // max of each tile of the row
  // With a lower bound (low > 0): every value with key >= low, in index order. The kept set, the
  // boundary buckets and the draw then only visit these.
  bool listed = false;
  std::vector<int64_t> lidx;
  std::vector<uint32_t> lkey;
  std::vector<uint64_t> block_mass;  // multi-draw: kept mass per block of kBlock values
};

constexpr int64_t kBlock = 64;

// Loads values [i0, i0 + n) of a row as float32: a pointer into the row for
// float32, else converted into buf.
template <int DT>
inline const float* tile_of(const void* row, int64_t i0, int64_t n, float* buf) {
  if (DT == kFloat32) return static_cast<const float*>(row) + i0;
  for (int64_t j = 0; j < n; ++j) buf[j] = load_x<DT>(row, i0 + j);
  return buf;
}

// The float whose key is t (t > 0); keys are a bijection on non-NaN floats
// with -0 folded into +0.
inline float key_value(uint32_t t) {
  return bits_float((t & 0x80000000u) ? (t & 0x7fffffffu) : ~t);
}

struct Scan {
  float m;
  bool bad;
};

template <int DT>
Scan scan_row(const void* row, int64_t V, int input, std::vector<float>* tile_max = nullptr) {
  if (tile_max) tile_max->clear();
  float m = -INFINITY;
  uint32_t bad = 0;
  alignas(64) float buf[kTile];
  for (int64_t i0 = 0; i0 < V; i0 += kTile) {
    const int64_t n = std::min(kTile, V - i0);
    const float* x = tile_of<DT>(row, i0, n, buf);
    float mt = -INFINITY;
    uint32_t bt = 0;
    if (input == kLogits) {
#pragma omp simd reduction(max : mt) reduction(| : bt)
      for (int64_t j = 0; j < n; ++j) {
        mt = x[j] > mt ? x[j] : mt;
        bt |= (uint32_t)(x[j] != x[j]) | (uint32_t)(x[j] == INFINITY);
      }
    } else {
#pragma omp simd reduction(max : mt) reduction(| : bt)
      for (int64_t j = 0; j < n; ++j) {
        mt = x[j] > mt ? x[j] : mt;
        bt |= (uint32_t)!(x[j] >= 0.0f) | (uint32_t)(x[j] == INFINITY);
      }
    }
    m = mt > m ? mt : m;
    bad |= bt;
    if (tile_max) tile_max->push_back(mt);
  }
  const bool empty = input == kLogits ? !(m > -INFINITY) : !(m > 0.0f);
  return Scan{m, bad != 0 || empty};
}

template <int DT>
int64_t first_max(const void* row, int64_t V, float m) {
  alignas(64) float buf[kTile];
  for (int64_t i0 = 0; i0 < V; i0 += kTile) {
    const int64_t n = std::min(kTile, V - i0);
    const float* x = tile_of<DT>(row, i0, n, buf);
    for (int64_t j = 0; j < n; ++j)
      if (x[j] == m) return i0 + j;
  }
  return 0;
}

// Gathers the (key, weight) of every value whose key has the given level-0 bucket.
template <int DT>
void collect(const void* row, int64_t V, uint32_t bucket, uint32_t low, Scratch& s) {
  s.ck.clear();
  s.cq.clear();
  if (s.listed) {
    for (size_t c = 0; c < s.lidx.size(); ++c)
      if ((s.lkey[c] >> level_shift(0)) == bucket) {
        s.ck.push_back(s.lkey[c]);
        s.cq.push_back(s.q[s.lidx[c]]);
      }
    return;
  }
  alignas(64) float buf[kTile];
  for (int64_t i0 = 0; i0 < V; i0 += kTile) {
    const int64_t n = std::min(kTile, V - i0);
    const float* x = tile_of<DT>(row, i0, n, buf);
    uint32_t any = 0;
#pragma omp simd reduction(| : any)
    for (int64_t j = 0; j < n; ++j) any |= (uint32_t)((token_key(x[j]) >> level_shift(0)) == bucket);
    if (!any) continue;
    for (int64_t j = 0; j < n; ++j) {
      const uint32_t k = token_key(x[j]);
      if ((k >> level_shift(0)) == bucket && k >= low) {
        s.ck.push_back(k);
        s.cq.push_back(s.q[i0 + j]);
      }
    }
  }
}

struct Boundary {
  uint32_t key;       // the boundary group's value key
  uint64_t mass_ge;   // mass of keys >= key
};

// Radix descent: the group (equal keys) at which the running count (by_mass
// false) or mass (true), from the top, first reaches `need` (need >= 1 and
// <= the row total).
template <int DT>
Boundary descend(const void* row, int64_t V, bool by_mass, uint64_t need, uint32_t low, Scratch& s) {
  uint64_t above_cnt = 0, above_mass = 0;
  int b = find_bucket(s.cnt0, s.mass0, kBuckets, by_mass, need, &above_cnt, &above_mass);
  if (b < 0) b = 0;  // unreachable for need <= total
  uint32_t prefix = (uint32_t)b;
  collect<DT>(row, V, prefix, low, s);
  uint64_t group_mass = 0;
  for (int level = 1; level < kLevels; ++level) {
    const int sh = level_shift(level), nb = 1 << level_bits(level);
    std::fill(s.cnt, s.cnt + nb, 0u);
    std::fill(s.mass, s.mass + nb, 0ull);
    const int64_t n = (int64_t)s.ck.size();
    for (int64_t j = 0; j < n; ++j) {
      const uint32_t d = (s.ck[j] >> sh) & (uint32_t)(nb - 1);
      s.cnt[d] += 1;
      s.mass[d] += s.cq[j];
    }
    int d = find_bucket(s.cnt, s.mass, nb, by_mass, need, &above_cnt, &above_mass);
    if (d < 0) d = 0;
    prefix = (prefix << level_bits(level)) | (uint32_t)d;
    group_mass = s.mass[d];
    if (level + 1 < kLevels) {  // keep the candidates of bucket d
      int64_t w = 0;
      for (int64_t j = 0; j < n; ++j)
        if (((s.ck[j] >> sh) & (uint32_t)(nb - 1)) == (uint32_t)d) {
          s.ck[w] = s.ck[j];
          s.cq[w] = s.cq[j];
          ++w;
        }
      s.ck.resize(w);
      s.cq.resize(w);
    }
  }
  return Boundary{prefix, above_mass + group_mass};
}

// Mass of the values >= v.
template <int DT>
uint64_t mass_at_least(const void* row, int64_t V, float v, const uint64_t* q) {
  uint64_t z = 0;
  alignas(64) float buf[kTile];
  for (int64_t i0 = 0; i0 < V; i0 += kTile) {
    const int64_t n = std::min(kTile, V - i0);
    const float* x = tile_of<DT>(row, i0, n, buf);
    uint64_t zt = 0;
#pragma omp simd reduction(+ : zt)
    for (int64_t j = 0; j < n; ++j) zt += x[j] >= v ? q[i0 + j] : 0ull;
    z += zt;
  }
  return z;
}

// The kept set and mass of a row (see core.h). Leaves the integer weights in s.q.
template <int DT>
RowPlan plan_row(const void* row, int64_t V, const RowParams& P, int input, int order, Scratch& s) {
  RowPlan plan{};
  const Scan sc = scan_row<DT>(row, V, input, &s.tile_max);
  plan.m = sc.m;
  if (sc.bad || !params_ok(P, input)) return plan;
  plan.valid = true;
  if (P.temperature == 0.0f) {
    plan.greedy = true;
    plan.argmax = first_max<DT>(row, V, sc.m);
    return plan;
  }
  const int shift = weight_shift(V);
  plan.scale = input == kLogits ? pow2(shift) : probs_scale(sc.m, shift);
  const bool topk = topk_active(P.top_k, V), topp = P.top_p < 1.0, minp = P.min_p > 0.0;
  const bool hist = topk || topp;
  // Histogram only keys >= low. With top-k, low = the k-th largest tile max: k values are >= it, so the
  // k-th largest value (and, in order "hf", the top-p boundary above it) is too. Below low the joint
  // top-p boundary cannot bind (top-k does).
  uint32_t low = 0;
  if (topk && P.top_k <= (int64_t)s.tile_max.size()) {
    std::vector<float>& tm = s.tile_max;
    std::nth_element(tm.begin(), tm.begin() + (P.top_k - 1), tm.end(), [](float a, float b) { return a > b; });
    low = token_key(tm[P.top_k - 1]);
  }
  uint64_t mass_low = 0;  // mass of the keys >= low
  s.listed = low > 0;
  s.lidx.clear();
  s.lkey.clear();
  const float m = sc.m, T = P.temperature;
  const double lmin = minp ? std::log(P.min_p) : 0.0, pmin = P.min_p * (double)m;
  if ((int64_t)s.q.size() < V) s.q.resize(V);
  if (hist) {
    std::fill(s.cnt0, s.cnt0 + kBuckets, 0u);
    std::fill(s.mass0, s.mass0 + kBuckets, 0ull);
  }
  uint64_t z_all = 0;
  uint32_t t_min = 0xffffffffu;  // smallest key kept by min-p
  alignas(64) float buf[kTile];
  alignas(64) uint32_t keys[kTile];
  for (int64_t i0 = 0; i0 < V; i0 += kTile) {
    const int64_t n = std::min(kTile, V - i0);
    const float* x = tile_of<DT>(row, i0, n, buf);
    uint64_t* q = s.q.data() + i0;
    uint64_t zt = 0;
    if (input == kLogits) {
#pragma omp simd reduction(+ : zt)
      for (int64_t j = 0; j < n; ++j) {
        q[j] = quantise(fast_expf((x[j] - m) / T), plan.scale);
        zt += q[j];
      }
    } else {
#pragma omp simd reduction(+ : zt)
      for (int64_t j = 0; j < n; ++j) {
        q[j] = quantise(x[j], plan.scale);
        zt += q[j];
      }
    }
    z_all += zt;
    if (hist || minp) {
#pragma omp simd
      for (int64_t j = 0; j < n; ++j) keys[j] = token_key(x[j]);
    }
    if (minp) {
      uint32_t tm = t_min;
#pragma omp simd reduction(min : tm)
      for (int64_t j = 0; j < n; ++j) {
        const uint32_t cand = minp_keep(x[j], m, T, lmin, pmin, input) ? keys[j] : 0xffffffffu;
        tm = cand < tm ? cand : tm;
      }
      t_min = tm;
    }
    if (hist) {
      for (int64_t j = 0; j < n; ++j) {
        if (keys[j] < low) continue;
        if (s.listed) {
          s.lidx.push_back(i0 + j);
          s.lkey.push_back(keys[j]);
        }
        const uint32_t b = keys[j] >> level_shift(0);
        s.cnt0[b] += 1;
        s.mass0[b] += q[j];
        mass_low += q[j];
      }
    }
  }
  uint32_t t = 0;
  uint64_t z = z_all;
  if (topk) {
    const Boundary bk = descend<DT>(row, V, false, (uint64_t)P.top_k, low, s);
    t = bk.key;
    z = bk.mass_ge;
  }
  if (topp && ceil_mul(P.top_p, order == kOrderHF ? z : z_all) <= mass_low) {
    const uint64_t need = ceil_mul(P.top_p, order == kOrderHF ? z : z_all);
    const Boundary bp = descend<DT>(row, V, true, need, low, s);
    if (bp.key > t) {
      t = bp.key;
      z = bp.mass_ge;
    }
  }
  if (minp && t_min > t) {
    t = t_min;
    if (s.listed) {
      z = 0;
      for (size_t c = 0; c < s.lidx.size(); ++c) z += s.lkey[c] >= t ? s.q[s.lidx[c]] : 0ull;
    } else {
      z = mass_at_least<DT>(row, V, key_value(t), s.q.data());
    }
  }
  plan.t = t;
  plan.Z = z;
  return plan;
}

// First index whose running kept mass exceeds target (< plan.Z): tile sums
// first, then the tile that holds it.
template <int DT>
int64_t inverse_cdf(const void* row, int64_t V, const RowPlan& plan, const uint64_t* q, uint64_t target,
                    const Scratch* listed = nullptr) {
  if (listed && listed->listed) {  // every kept value is listed (t >= low), in index order
    uint64_t acc = 0;
    int64_t last = 0;
    for (size_t c = 0; c < listed->lidx.size(); ++c) {
      if (listed->lkey[c] < plan.t) continue;
      const int64_t i = listed->lidx[c];
      if (q[i]) last = i;
      acc += q[i];
      if (acc > target) return i;
    }
    return last;
  }
  const float v = plan.t == 0 ? -INFINITY : key_value(plan.t);
  uint64_t acc = 0;
  int64_t last = -1;
  alignas(64) float buf[kTile];
  for (int64_t i0 = 0; i0 < V; i0 += kTile) {
    const int64_t n = std::min(kTile, V - i0);
    const float* x = tile_of<DT>(row, i0, n, buf);
    uint64_t zt = 0;
#pragma omp simd reduction(+ : zt)
    for (int64_t j = 0; j < n; ++j) zt += x[j] >= v ? q[i0 + j] : 0ull;
    if (acc + zt <= target) {
      acc += zt;
      continue;
    }
    for (int64_t j = 0; j < n; ++j) {
      const uint64_t w = x[j] >= v ? q[i0 + j] : 0ull;
      if (w) last = i0 + j;
      acc += w;
      if (acc > target) return i0 + j;
    }
  }
  return last < 0 ? 0 : last;  // unreachable: the kept mass is exact
}

template <int DT>
bool kept(const void* row, const RowPlan& plan, int64_t i) {
  return plan.t == 0 || token_key(load_x<DT>(row, i)) >= plan.t;
}

}  // namespace
}  // namespace rsfast::tokens::cpu::RSFAST_CPU_ISA
