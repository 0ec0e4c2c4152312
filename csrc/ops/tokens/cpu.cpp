// CPU driver of rsfast.tokens (sample, verify). One row per task, rows
// scheduled dynamically over OpenMP threads; a row's result depends on that
// row only (its own Philox key and stream), so never on the thread count or
// the row's position.
//
// Passes over a row of V values (worst case; "typical" in parentheses):
//   1 scan: max and bad values;
//   2 weights: integer weights into scratch, total mass, level-0 histogram
//     (2048 buckets on the top 11 key bits, count and mass) when top-k or
//     top-p filters;
//   3, 4 one collection pass per filter (top-k, top-p) gathering the values
//     of its boundary bucket; levels 1 and 2 (11 and 10 bits) run on that
//     bucket only (usually a small fraction of V);
//   5 a masked mass pass when min-p is the binding filter;
//   6 the inverse CDF, tile sums first (stops at the drawn token: half a row
//     on average).
// So at most 6 passes, 3 or 4 typically, and no sort.
#include <algorithm>
#include <cmath>
#include <vector>

#include "ops/tokens/row.h"
#include "ops/tokens/api.h"
#include "parallel.h"

namespace rsfast::tokens::cpu::RSFAST_CPU_ISA {
namespace {

using rsfast::cpu::threads_for;

RowParams row_params(const RowParamArrays& p, int64_t b) {
  return RowParams{p.temperature[b], p.top_k[b], p.top_p[b], p.min_p[b]};
}

U32x4 row_block(const RowParamArrays& p, int64_t b, uint64_t stream_const, uint32_t block) {
  const uint64_t stream = p.per_row_stream ? (uint64_t)b : stream_const;
  return philox_block((uint64_t)p.seeds[b], stream, (uint32_t)p.offsets[b], block);
}

template <typename F>
void for_rows(int64_t B, int64_t work, F&& f) {
  const int nt = threads_for(work);
#pragma omp parallel num_threads(nt) if (nt > 1)
  {
    Scratch* s = new Scratch();
#pragma omp for schedule(dynamic, 1)
    for (int64_t b = 0; b < B; ++b) f(b, *s);
    delete s;
  }
}

// ------------------------------------------------------------------- sample

// Many draws from one plan: kept weights zeroed outside the set, per-block
// masses, then per draw a binary search over blocks and a scan of one block.
// The same token as inverse_cdf for the same target (both: the first index
// whose running kept mass exceeds it).
template <int DT>
void draw_many(const void* row, int64_t V, const RowPlan& plan, Scratch& s, const RowParamArrays& p, int64_t b,
               int64_t n, int64_t* ids) {
  const float v = plan.t == 0 ? -INFINITY : key_value(plan.t);
  uint64_t* q = s.q.data();
  alignas(64) float buf[kTile];
  for (int64_t i0 = 0; i0 < V; i0 += kTile) {
    const int64_t m = std::min(kTile, V - i0);
    const float* x = tile_of<DT>(row, i0, m, buf);
#pragma omp simd
    for (int64_t j = 0; j < m; ++j) q[i0 + j] = x[j] >= v ? q[i0 + j] : 0ull;
  }
  const int64_t nb = (V + kBlock - 1) / kBlock;
  s.block_mass.assign(nb + 1, 0ull);
  for (int64_t k = 0; k < nb; ++k) {
    uint64_t z = 0;
    const int64_t end = std::min(V, (k + 1) * kBlock);
    for (int64_t i = k * kBlock; i < end; ++i) z += q[i];
    s.block_mass[k + 1] = s.block_mass[k] + z;
  }
  const uint64_t* cum = s.block_mass.data();
  for (int64_t j = 0; j < n; ++j) {
    const U32x4 w = row_block(p, b, kSampleStream, (uint32_t)j);
    const uint64_t target = draw_target(w.v[0], w.v[1], plan.Z);
    // first block k with cum[k + 1] > target
    const int64_t k = std::upper_bound(cum + 1, cum + nb + 1, target) - (cum + 1);
    uint64_t acc = cum[k];
    int64_t id = -1;
    const int64_t end = std::min(V, (k + 1) * kBlock);
    for (int64_t i = k * kBlock; i < end; ++i) {
      acc += q[i];
      if (acc > target) {
        id = i;
        break;
      }
    }
    ids[j] = id < 0 ? 0 : id;  // id < 0 is unreachable: the masses are exact
  }
}

template <int DT>
void sample_run(const SampleArgs& a) {
  const size_t x_bytes = DT == kFloat32 ? 4 : (DT == kFloat64 ? 8 : 2);
  const int64_t n = a.num_samples;
  for_rows(a.B, a.B * a.V + a.B * n * 8, [&](int64_t b, Scratch& s) {
    const void* row = static_cast<const char*>(a.x) + (size_t)b * (size_t)a.V * x_bytes;
    const RowPlan plan = plan_row<DT>(row, a.V, row_params(a.p, b), a.input, a.order, s);
    int64_t* ids = a.ids + b * n;
    float* lps = a.logprobs ? a.logprobs + b * n : nullptr;
    if (!plan.valid || plan.greedy) {
      for (int64_t j = 0; j < n; ++j) ids[j] = plan.valid ? plan.argmax : 0;
      for (int64_t j = 0; lps && j < n; ++j) lps[j] = plan.valid ? 0.0f : NAN;
    } else {
      if (n == 1) {
        const U32x4 w = row_block(a.p, b, kSampleStream, 0);
        ids[0] = inverse_cdf<DT>(row, a.V, plan, s.q.data(), draw_target(w.v[0], w.v[1], plan.Z), &s);
      } else {
        draw_many<DT>(row, a.V, plan, s, a.p, b, n, ids);
      }
      const double lz = std::log((double)plan.Z);
      for (int64_t j = 0; lps && j < n; ++j) lps[j] = (float)(std::log((double)s.q[ids[j]]) - lz);
    }
    a.valid[b] = plan.valid ? 1 : 0;
  });
}

// ------------------------------------------------------------------- verify

template <int DT>
bool row_bad(const void* row, int64_t V, int input) {
  return scan_row<DT>(row, V, input).bad;
}

// Residual weight max(0, p_i - q_i) in units of the kept mass Z.
inline uint64_t residual(uint64_t w, double qi, double zd) {
  const double qd = qi * zd;
  return qd >= (double)w ? 0ull : w - (uint64_t)qd;
}

template <int DT, int QT>
void verify_run(const VerifyArgs& a) {
  const size_t x_bytes = DT == kFloat32 ? 4 : (DT == kFloat64 ? 8 : 2);
  const size_t q_bytes = QT == kFloat32 ? 4 : (QT == kFloat64 ? 8 : 2);
  const int64_t V = a.V;
  for_rows(a.B, a.B * (a.S + 1) * V, [&](int64_t b, Scratch& s) {
    const int64_t n = a.cu ? a.cu[b + 1] - a.cu[b] : a.S;
    const int64_t d0 = a.cu ? a.cu[b] : b * a.S;    // first draft (and draft-prob row)
    const int64_t r0 = a.cu ? a.cu[b] + b : b * (a.S + 1);  // first target row
    auto trow = [&](int64_t j) { return static_cast<const char*>(a.target) + (size_t)(r0 + j) * V * x_bytes; };
    auto qrow = [&](int64_t j) {
      return static_cast<const char*>(a.draft_probs) + (size_t)(d0 + j) * V * q_bytes;
    };
    int64_t* ids = a.ids + b * (a.S + 1);
    for (int64_t j = 0; j <= a.S; ++j) ids[j] = -1;
    const RowParams P = row_params(a.p, b);
    // a ragged layout outside its arrays makes the request invalid (never read out of bounds)
    bool ok = params_ok(P, a.input) && n >= 0 && n <= a.S && (!a.cu || (a.cu[b] >= 0 && a.cu[b + 1] <= a.N));
    for (int64_t j = 0; ok && j <= n; ++j) ok = !row_bad<DT>(trow(j), V, a.input);
    for (int64_t j = 0; ok && j < n; ++j) ok = a.draft[d0 + j] >= 0 && a.draft[d0 + j] < V;
    for (int64_t j = 0; ok && a.draft_probs && j < n; ++j) ok = !row_bad<QT>(qrow(j), V, kProbs);
    a.valid[b] = ok ? 1 : 0;
    if (!ok) {
      a.num_accepted[b] = 0;
      a.num_emitted[b] = 0;
      return;
    }
    int64_t j = 0;
    int64_t out = 0;
    for (; j < n; ++j) {
      const int64_t d = a.draft[d0 + j];
      const void* row = trow(j);
      if (a.mode == kGreedy) {
        const int64_t am = first_max<DT>(row, V, scan_row<DT>(row, V, a.input).m);
        if (am == d) continue;
        out = am;
        break;
      }
      const RowPlan plan = plan_row<DT>(row, V, P, a.input, a.order, s);
      const U32x4 w = row_block(a.p, b, kVerifyStream, (uint32_t)j);
      const double qd = a.draft_probs ? (double)load_x<QT>(qrow(j), d) : 1.0;
      if (plan.greedy) {  // p is a point mass on the argmax, so is the residual
        if (u01_f52(w.v[0], w.v[1]) * qd < (d == plan.argmax ? 1.0 : 0.0)) continue;
        out = plan.argmax;
        break;
      }
      const bool dk = kept<DT>(row, plan, d);
      const double pd = dk ? (double)s.q[d] / (double)plan.Z : 0.0;
      if (u01_f52(w.v[0], w.v[1]) * qd < pd) continue;
      // Rejected: draw from max(0, p - q), renormalised.
      if (!a.draft_probs) {
        const uint64_t R = plan.Z - (dk ? s.q[d] : 0ull);
        if (R == 0) {
          out = d;
          break;
        }
        const uint64_t keep_d = dk ? s.q[d] : 0ull;
        s.q[d] = 0;  // exclude the drafted token
        out = inverse_cdf<DT>(row, V, plan, s.q.data(), draw_target(w.v[2], w.v[3], R), &s);
        s.q[d] = keep_d;
        break;
      }
      const double zd = (double)plan.Z;
      const void* qr = qrow(j);
      uint64_t R = 0;
      for (int64_t i = 0; i < V; ++i) {
        const uint64_t wi = kept<DT>(row, plan, i) ? s.q[i] : 0ull;
        s.q[i] = wi ? residual(wi, (double)load_x<QT>(qr, i), zd) : 0ull;
        R += s.q[i];
      }
      if (R == 0) {  // p <= q everywhere: p == q, never rejected but by rounding
        out = d;
        break;
      }
      RowPlan all = plan;
      all.t = 0;
      out = inverse_cdf<DT>(row, V, all, s.q.data(), draw_target(w.v[2], w.v[3], R), &s);
      break;
    }
    for (int64_t i = 0; i < j; ++i) ids[i] = a.draft[d0 + i];
    if (j == n) {  // all accepted: the bonus token from the last target row
      const void* row = trow(n);
      if (a.mode == kGreedy) {
        out = first_max<DT>(row, V, scan_row<DT>(row, V, a.input).m);
      } else {
        const RowPlan plan = plan_row<DT>(row, V, P, a.input, a.order, s);
        if (plan.greedy) {
          out = plan.argmax;
        } else {
          const U32x4 w = row_block(a.p, b, kVerifyStream, (uint32_t)n);
          out = inverse_cdf<DT>(row, V, plan, s.q.data(), draw_target(w.v[2], w.v[3], plan.Z), &s);
        }
      }
    }
    ids[j] = out;
    a.num_accepted[b] = j;
    a.num_emitted[b] = j + 1;
  });
}

// ------------------------------------------------------------------- filter

template <int DT>
void filter_run(const FilterArgs& a) {
  const size_t x_bytes = DT == kFloat32 ? 4 : (DT == kFloat64 ? 8 : 2);
  const int64_t V = a.V;
  for_rows(a.B, a.B * V, [&](int64_t b, Scratch& s) {
    const void* row = static_cast<const char*>(a.x) + (size_t)b * (size_t)V * x_bytes;
    float* out = a.out + b * V;
    const RowPlan plan = plan_row<DT>(row, V, row_params(a.p, b), a.input, a.order, s);
    a.valid[b] = plan.valid ? 1 : 0;
    const float off = a.mode == kRenorm ? 0.0f : -INFINITY;
    for (int64_t i = 0; i < V; ++i) out[i] = off;
    if (!plan.valid) return;
    if (plan.greedy) {
      out[plan.argmax] = a.mode == kRenorm ? 1.0f : load_x<DT>(row, plan.argmax);
      return;
    }
    const float v = plan.t == 0 ? -INFINITY : key_value(plan.t);
    const double zd = (double)plan.Z;
    alignas(64) float buf[kTile];
    for (int64_t i0 = 0; i0 < V; i0 += kTile) {
      const int64_t n = std::min(kTile, V - i0);
      const float* x = tile_of<DT>(row, i0, n, buf);
      if (a.mode == kRenorm) {
        for (int64_t j = 0; j < n; ++j) out[i0 + j] = x[j] >= v ? (float)((double)s.q[i0 + j] / zd) : 0.0f;
      } else {
        for (int64_t j = 0; j < n; ++j) out[i0 + j] = x[j] >= v ? x[j] : -INFINITY;
      }
    }
  });
}

template <int DT>
void verify_q(const VerifyArgs& a) {
  switch (a.qdtype) {
    case kFloat16: return verify_run<DT, kFloat16>(a);
    case kBFloat16: return verify_run<DT, kBFloat16>(a);
    case kFloat64: return verify_run<DT, kFloat64>(a);
    default: return verify_run<DT, kFloat32>(a);
  }
}

}  // namespace

void sample(const SampleArgs& a) {
  switch (a.xdtype) {
    case kFloat16: return sample_run<kFloat16>(a);
    case kBFloat16: return sample_run<kBFloat16>(a);
    case kFloat64: return sample_run<kFloat64>(a);
    default: return sample_run<kFloat32>(a);
  }
}

void filter(const FilterArgs& a) {
  switch (a.xdtype) {
    case kFloat16: return filter_run<kFloat16>(a);
    case kBFloat16: return filter_run<kBFloat16>(a);
    case kFloat64: return filter_run<kFloat64>(a);
    default: return filter_run<kFloat32>(a);
  }
}

void verify(const VerifyArgs& a) {
  switch (a.xdtype) {
    case kFloat16: return verify_q<kFloat16>(a);
    case kBFloat16: return verify_q<kBFloat16>(a);
    case kFloat64: return verify_q<kFloat64>(a);
    default: return verify_q<kFloat32>(a);
  }
}

}  // namespace rsfast::tokens::cpu::RSFAST_CPU_ISA
