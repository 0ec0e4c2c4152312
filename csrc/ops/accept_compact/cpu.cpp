// CPU driver of accept_compact. Pass 1 (parallel over fixed chunks of rows,
// dynamically scheduled) decides every row into a flag byte and counts the
// accepted rows of each chunk; pass 2 (one thread) walks the flags and copies
// the accepted rows in row order. Acceptance is usually low, so pass 2 reads
// mostly zero flags, 8 at a time; one parallel region per call keeps the
// kernel robust when other processes hold the cores (every barrier then waits
// for a descheduled thread).
#include <cmath>
#include <cstring>

#include "parallel.h"
#include "ops/accept_compact/core.h"
#include "ops/accept_compact/api.h"

namespace rsfast::cpu::RSFAST_CPU_ISA {
namespace {

constexpr int64_t kChunk = 8192;  // rows per scheduling chunk (multiple of kLanes)

struct ChunkStats {
  int64_t accepted = 0, nan = 0, overweight = 0, posinf = 0;
  double max_ratio = -INFINITY;
};

// Rows [begin, begin + count) with constant high index word `hi`; the
// decisions vectorise across rows (Philox included).
template <typename T>
void decide_piece(const T* __restrict lp, const T* __restrict lq, T log_M, uint32_t k0, uint32_t k1,
                                uint32_t offset, int64_t begin, uint32_t hi, uint32_t count,
                                uint8_t* __restrict flags, ChunkStats& st) {
  uint32_t acc = 0, nan = 0, over = 0, pinf = 0;
  T mx = -INFINITY;
  const uint32_t lo0 = (uint32_t)begin;
  lp += begin;
  lq += begin;
  flags += begin;
#pragma omp simd reduction(+ : acc, nan, over, pinf) reduction(max : mx)
  for (uint32_t j = 0; j < count; ++j) {
    const Decision<T> d = decide<T>(lp[j], lq[j], log_M, philox_block(k0, k1, lo0 + j, hi, offset, 0));
    flags[j] = (uint8_t)d.accept;
    acc += d.accept;
    nan += d.nan;
    over += d.overweight;
    pinf += d.posinf;
    mx = d.log_ratio > mx ? d.log_ratio : mx;
  }
  st.accepted += acc;
  st.nan += nan;
  st.overweight += over;
  st.posinf += pinf;
  st.max_ratio = std::max(st.max_ratio, (double)mx);
}

// Copy the flagged rows of [begin, end) to out rows pos, pos+1, ... < capacity;
// returns the next free out row.
template <int64_t RB>
int64_t copy_rows(const uint8_t* x, const uint8_t* flags, int64_t begin, int64_t end, uint8_t* out, int64_t pos,
                  int64_t capacity, int64_t rb) {
  const int64_t bytes = RB > 0 ? RB : rb;
  int64_t i = begin;
  while (i < end && pos < capacity) {
    uint64_t eight;
    if (i + 8 <= end && (std::memcpy(&eight, flags + i, 8), eight == 0)) {
      i += 8;  // no accepted row among these 8
      continue;
    }
    if (flags[i]) {
      std::memcpy(out + pos * bytes, x + i * bytes, RB > 0 ? RB : bytes);
      ++pos;
    }
    ++i;
  }
  return pos;
}

int64_t copy_dispatch(const uint8_t* x, const uint8_t* flags, int64_t begin, int64_t end, uint8_t* out,
                      int64_t pos, int64_t capacity, int64_t rb) {
  switch (rb) {
    case 4: return copy_rows<4>(x, flags, begin, end, out, pos, capacity, rb);
    case 8: return copy_rows<8>(x, flags, begin, end, out, pos, capacity, rb);
    case 12: return copy_rows<12>(x, flags, begin, end, out, pos, capacity, rb);
    case 16: return copy_rows<16>(x, flags, begin, end, out, pos, capacity, rb);
    case 24: return copy_rows<24>(x, flags, begin, end, out, pos, capacity, rb);
    case 32: return copy_rows<32>(x, flags, begin, end, out, pos, capacity, rb);
    default: return copy_rows<0>(x, flags, begin, end, out, pos, capacity, rb);
  }
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
    for_each_piece(c * kChunk, std::min(a.m, (c + 1) * kChunk), [&](int64_t b, uint32_t hi, uint32_t count) {
      decide_piece<T>(lp, lq, log_M, k0, k1, a.offset, b, hi, count, flags, st);
    });
    acc += st.accepted;
    nan += st.nan;
    over += st.overweight;
    pinf += st.posinf;
    mx = std::max(mx, st.max_ratio);
  }
  const int64_t base = a.counts[kAccepted];
  if (acc > 0 && base < a.capacity)
    copy_dispatch(static_cast<const uint8_t*>(a.x), flags, 0, a.m, static_cast<uint8_t*>(a.out), base, a.capacity,
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
