// CPU driver of accept_compact. Pass 1 (parallel over fixed chunks of rows,
// dynamically scheduled) decides every row into a flag byte and counts the
// accepted rows of each chunk; pass 2 (one thread) walks the flags and copies
// the accepted rows in row order. Acceptance is usually low, so pass 2 reads
// mostly zero flags, 8 at a time; one parallel region per call keeps the
// kernel robust when other processes hold the cores (every barrier then waits
// for a descheduled thread). The flags fit the op's scratch (one byte per
// row), which the in-chunk index lists of accept_compact_rows would not;
// Philox lanes, the accept test and the row-size-specialised copies are the
// compaction core's (csrc/cpu/compact.h).
#include <cmath>
#include <cstring>

#include "compact.h"
#include "parallel.h"
#include "ops/accept_compact/core.h"
#include "ops/accept_compact/api.h"

namespace rsfast::cpu::RSFAST_CPU_ISA {
namespace {

// Rows per scheduling chunk: a multiple of kLanes that divides 2^32, so the
// high word of the row index is constant inside a chunk.
constexpr int64_t kChunk = 8192;
static_assert(kChunk % kLanes == 0 && (int64_t(1) << 32) % kChunk == 0, "whole lane groups, one high word");

struct ChunkStats {
  int64_t accepted = 0, nan = 0, overweight = 0, posinf = 0;
  double max_ratio = -INFINITY;
};

// Statistics of a chunk kept per lane (vector adds), summed at the end.
template <typename T>
struct LaneStats {
  alignas(64) uint32_t acc[kLanes] = {}, nan[kLanes] = {}, over[kLanes] = {}, pinf[kLanes] = {};
  alignas(64) T mx[kLanes];
  LaneStats() {
    for (int l = 0; l < (int)kLanes; ++l) mx[l] = -INFINITY;
  }
  RSFAST_HD void add(int l, const Decision<T>& d) {
    acc[l] += d.accept;
    nan[l] += d.nan;
    over[l] += d.overweight;
    pinf[l] += d.posinf;
    mx[l] = d.log_ratio > mx[l] ? d.log_ratio : mx[l];
  }
};

// Rows [begin, begin + n) of one chunk into flags[begin ...] and st.
template <typename T>
void decide_chunk(const T* lp, const T* lq, T log_M, uint32_t k0, uint32_t k1, uint32_t offset, int64_t begin,
                  int64_t n, uint8_t* flags, ChunkStats& st) {
  LaneStats<T> ls;
  for_each_lane_group(k0, k1, offset, begin, n, [&](int64_t g, int64_t lim, const uint32_t (&w)[4][kLanes]) {
    const T* __restrict p = lp + begin + g;
    const T* __restrict q = lq + begin + g;
    uint8_t* __restrict fl = flags + begin + g;
    for_each_lane(lim, [&](int l) {
      const Decision<T> d = decide<T>(p[l], q[l], log_M, U32x4{{w[0][l], w[1][l], 0u, 0u}});
      fl[l] = (uint8_t)d.accept;
      ls.add(l, d);
    });
  });
  T m = -INFINITY;
  for (int l = 0; l < (int)kLanes; ++l) {
    st.accepted += ls.acc[l];
    st.nan += ls.nan[l];
    st.overweight += ls.over[l];
    st.posinf += ls.pinf[l];
    m = ls.mx[l] > m ? ls.mx[l] : m;
  }
  st.max_ratio = std::max(st.max_ratio, (double)m);
}

// Copy the flagged rows of [0, m) to out rows pos, pos+1, ... < capacity.
void copy_flagged(const uint8_t* x, const uint8_t* flags, int64_t m, uint8_t* out, int64_t pos, int64_t capacity,
                  int64_t rb) {
  with_row_bytes(rb, [&](auto rbc) {
    constexpr int64_t RB = decltype(rbc)::value;
    const int64_t bytes = RB > 0 ? RB : rb;
    int64_t i = 0;
    while (i < m && pos < capacity) {
      uint64_t eight;
      if (i + 8 <= m && (std::memcpy(&eight, flags + i, 8), eight == 0)) {
        i += 8;  // no accepted row among these 8
        continue;
      }
      if (flags[i]) {
        std::memcpy(out + pos * bytes, x + i * bytes, RB > 0 ? RB : bytes);
        ++pos;
      }
      ++i;
    }
  });
}

template <typename T>
void run(const AcceptArgs& a) {
  const T* lp = static_cast<const T*>(a.log_p);
  const T* lq = static_cast<const T*>(a.log_q);
  uint8_t* flags = static_cast<uint8_t*>(a.scratch);
  const int64_t nchunks = (a.m + kChunk - 1) / kChunk;
  const uint32_t k0 = (uint32_t)a.seed, k1 = (uint32_t)(a.seed >> 32);
  const T log_M = (T)a.log_M;
  int64_t acc = 0, nan = 0, over = 0, pinf = 0;
  double mx = -INFINITY;
  const int nt = threads_for(a.m);
#pragma omp parallel for num_threads(nt) if (nt > 1) schedule(dynamic, 1) \
    reduction(+ : acc, nan, over, pinf) reduction(max : mx)
  for (int64_t c = 0; c < nchunks; ++c) {
    ChunkStats st;
    const int64_t begin = c * kChunk;
    decide_chunk<T>(lp, lq, log_M, k0, k1, a.offset, begin, std::min(kChunk, a.m - begin), flags, st);
    acc += st.accepted;
    nan += st.nan;
    over += st.overweight;
    pinf += st.posinf;
    mx = std::max(mx, st.max_ratio);
  }
  const int64_t base = a.counts[kAccepted];
  if (acc > 0 && base < a.capacity)
    copy_flagged(static_cast<const uint8_t*>(a.x), flags, a.m, static_cast<uint8_t*>(a.out), base, a.capacity,
                 a.row_bytes);
  a.counts[kAccepted] += acc;
  a.counts[kNaN] += nan;
  a.counts[kOverweight] += over;
  a.counts[kPosInf] += pinf;
  if (mx > a.max_log_ratio[0]) a.max_log_ratio[0] = mx;
}

}  // namespace

void accept_compact(const AcceptArgs& args) {
  if (args.m <= 0) return;
  if (args.dtype == kFloat32)
    run<float>(args);
  else
    run<double>(args);
}

}  // namespace rsfast::cpu::RSFAST_CPU_ISA
