// CPU driver of accept_compact: pass 1 decides every row (vectorised) into a
// flag byte and per-chunk counts; an exclusive scan over chunks gives each
// chunk its first output row; pass 2 copies the accepted rows in row order.
#include <cmath>
#include <cstring>

#include "parallel.h"
#include "rsfast/compact.h"
#include "rsfast/drivers.h"

namespace rsfast::cpu {
namespace {

struct ChunkStats {
  int64_t accepted = 0, nan = 0, overweight = 0, posinf = 0;
  double max_ratio = -INFINITY;
};

// Rows [begin, begin + count) with constant high index word `hi`.
template <typename T>
RSFAST_CLONES void decide_piece(const T* __restrict lp, const T* __restrict lq, T log_M, uint32_t k0, uint32_t k1,
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

// Copy the flagged rows of [begin, end) to out rows pos, pos+1, ... < capacity.
template <int64_t RB>
void copy_rows(const uint8_t* x, const uint8_t* flags, int64_t begin, int64_t end, uint8_t* out, int64_t pos,
               int64_t capacity, int64_t rb) {
  const int64_t bytes = RB > 0 ? RB : rb;
  for (int64_t i = begin; i < end && pos < capacity; ++i) {
    if (flags[i]) {
      std::memcpy(out + pos * bytes, x + i * bytes, RB > 0 ? RB : bytes);
      ++pos;
    }
  }
}

void copy_dispatch(const uint8_t* x, const uint8_t* flags, int64_t begin, int64_t end, uint8_t* out, int64_t pos,
                   int64_t capacity, int64_t rb) {
  switch (rb) {
    case 4: copy_rows<4>(x, flags, begin, end, out, pos, capacity, rb); break;
    case 8: copy_rows<8>(x, flags, begin, end, out, pos, capacity, rb); break;
    case 12: copy_rows<12>(x, flags, begin, end, out, pos, capacity, rb); break;
    case 16: copy_rows<16>(x, flags, begin, end, out, pos, capacity, rb); break;
    case 24: copy_rows<24>(x, flags, begin, end, out, pos, capacity, rb); break;
    case 32: copy_rows<32>(x, flags, begin, end, out, pos, capacity, rb); break;
    default: copy_rows<0>(x, flags, begin, end, out, pos, capacity, rb);
  }
}

template <typename T>
void run(const AcceptArgs& a) {
  const T* lp = static_cast<const T*>(a.log_p);
  const T* lq = static_cast<const T*>(a.log_q);
  uint8_t* flags = static_cast<uint8_t*>(a.scratch);
  ChunkStats stats[kMaxThreads];
  int64_t first[kMaxThreads + 1];
  const int64_t base = a.counts[kAccepted];
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
    stats[t] = ChunkStats();
    for_each_piece(begin, end, [&](int64_t b, uint32_t hi, uint32_t count) {
      decide_piece<T>(lp, lq, (T)a.log_M, (uint32_t)a.seed, (uint32_t)(a.seed >> 32), a.offset, b, hi, count, flags,
                      stats[t]);
    });
#pragma omp barrier
#pragma omp single
    {
      first[0] = base;
      for (int k = 0; k < n; ++k) first[k + 1] = first[k] + stats[k].accepted;
    }
    if (first[t] < a.capacity)
      copy_dispatch(static_cast<const uint8_t*>(a.x), flags, begin, end, static_cast<uint8_t*>(a.out), first[t],
                    a.capacity, a.row_bytes);
#pragma omp single
    {
      ChunkStats total;
      for (int k = 0; k < n; ++k) {
        total.accepted += stats[k].accepted;
        total.nan += stats[k].nan;
        total.overweight += stats[k].overweight;
        total.posinf += stats[k].posinf;
        total.max_ratio = std::max(total.max_ratio, stats[k].max_ratio);
      }
      a.counts[kAccepted] += total.accepted;
      a.counts[kNaN] += total.nan;
      a.counts[kOverweight] += total.overweight;
      a.counts[kPosInf] += total.posinf;
      if (total.max_ratio > a.max_log_ratio[0]) a.max_log_ratio[0] = total.max_ratio;
    }
  }
}

}  // namespace

int64_t accept_compact_scratch_bytes(int64_t m) { return m > 0 ? m : 1; }

void accept_compact(const AcceptArgs& args) {
  if (args.m <= 0) return;
  if (args.dtype == kFloat32)
    run<float>(args);
  else
    run<double>(args);
}

}  // namespace rsfast::cpu
