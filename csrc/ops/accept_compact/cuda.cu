// CUDA driver of accept_compact: the same result as csrc/ops/accept_compact/cpu.cpp
// (same decisions, same stable row order, same counts) in three launches on
// the caller's stream, with no host synchronisation and no allocation.
//
//   K1 decide_kernel  one block per tile of kTile rows: decide every row
//                     (shared core rsfast::decide, in the dtype T of log p
//                     and log q with log M cast to T, as on the CPU), write
//                     one flag byte per row, the tile's accepted count to
//                     tile_counts[tile], and fold the NaN / overweight / +inf
//                     counts and the max log-ratio into counts /
//                     max_log_ratio (one atomic each per block).
//   K2 scan_kernel    one block: exclusive scan of tile_counts, offset by the
//                     device-side counts[kAccepted] (never read on the host),
//                     into tile_offsets; then counts[kAccepted] += total.
//   K3 copy_kernel    one block per tile: rank of each accepted row inside the
//                     tile (block scan in row order), then the block copies
//                     the tile's accepted rows, which are consecutive in out,
//                     to out[tile_offsets[tile] + rank] while < capacity.
//
// Scratch (accept_compact_scratch_bytes), from a base rounded up to 256 bytes:
//   [flags: ntiles * kTile bytes][tile_counts: ntiles int64][tile_offsets: ntiles int64]
// K1 writes every flag byte of every tile (0 past row m), so no launch reads
// stale scratch and K3 can load 8 flags at once without bounds checks.
#include <cuda_runtime.h>

#include <climits>
#include <cstdint>
#include <cub/cub.cuh>
#include <stdexcept>

#include "ops/accept_compact/core.h"
#include "ops/accept_compact/api.h"
#include "util.cuh"

namespace rsfast::cuda {
namespace {

constexpr int kThreads = 256;                // K1 and K3 block size
constexpr int kItems = 8;                    // rows per thread per tile
constexpr int kTile = kThreads * kItems;     // 2048 rows per tile
constexpr int kScanThreads = 512;            // K2 block size (1024 spills int64 scans)
constexpr int kScanItems = 4;                // tiles per K2 thread per round
constexpr int64_t kScratchAlign = 256;       // slack so any scratch pointer works
static_assert(kItems == 8, "K3 loads the 8 flags of a thread as one uint64");
static_assert(kTile <= 65536, "row-in-tile indices are stored as uint16");

int64_t num_tiles(int64_t m) { return (m + kTile - 1) / kTile; }

// ---------------------------------------------------------------------------
// K1: decisions and statistics.

struct TileStats {
  int accepted, nan, overweight, posinf;
  double max_ratio;
};

struct TileStatsOp {
  __device__ __forceinline__ TileStats operator()(const TileStats& a, const TileStats& b) const {
    TileStats r;
    r.accepted = a.accepted + b.accepted;
    r.nan = a.nan + b.nan;
    r.overweight = a.overweight + b.overweight;
    r.posinf = a.posinf + b.posinf;
    r.max_ratio = b.max_ratio > a.max_ratio ? b.max_ratio : a.max_ratio;
    return r;
  }
};

// *addr = max(*addr, v), updating only when v > *addr as the CPU driver does
// (so a NaN already stored stays, like `if (total > old) old = total`).
// A CAS loop on the bits: correct for every sign, -inf included.
__device__ __forceinline__ void atomic_max_double(double* addr, double v) {
  unsigned long long* p = reinterpret_cast<unsigned long long*>(addr);
  unsigned long long old = *reinterpret_cast<volatile unsigned long long*>(p);
  while (v > __longlong_as_double((long long)old)) {
    const unsigned long long seen = atomicCAS(p, old, (unsigned long long)__double_as_longlong(v));
    if (seen == old) break;
    old = seen;
  }
}

__device__ __forceinline__ void atomic_add_i64(int64_t* addr, int64_t v) {
  // Two's complement: unsigned addition is int64 addition.
  atomicAdd(reinterpret_cast<unsigned long long*>(addr), (unsigned long long)v);
}

template <typename T>
__global__ void __launch_bounds__(kThreads)
    decide_kernel(const T* __restrict__ lp, const T* __restrict__ lq, int64_t m, T log_M, uint64_t seed,
                  uint32_t offset, uint8_t* __restrict__ flags, int64_t* __restrict__ tile_counts,
                  int64_t* counts, double* max_log_ratio) {
  using Reduce = cub::BlockReduce<TileStats, kThreads>;
  __shared__ typename Reduce::TempStorage tmp;

  const int64_t tile = blockIdx.x;
  const int64_t row0 = tile * kTile;
  TileStats st{0, 0, 0, 0, -INFINITY};
  // Striped rows (row0 + k * kThreads + tid): coalesced loads of log p / log q.
#pragma unroll
  for (int k = 0; k < kItems; ++k) {
    const int64_t row = row0 + k * kThreads + threadIdx.x;
    uint8_t f = 0;
    if (row < m) {
      const Decision<T> d = decide<T>(lp[row], lq[row], log_M, philox_block(seed, (uint64_t)row, offset, 0));
      f = d.accept ? 1 : 0;
      st.accepted += f;
      st.nan += d.nan ? 1 : 0;
      st.overweight += d.overweight ? 1 : 0;
      st.posinf += d.posinf ? 1 : 0;
      // The CPU takes the max in T, then widens; widening is monotone, so the same value.
      const double r = (double)d.log_ratio;
      st.max_ratio = r > st.max_ratio ? r : st.max_ratio;
    }
    flags[row] = f;  // row < ntiles * kTile: inside the flags region
  }
  const TileStats tot = Reduce(tmp).Reduce(st, TileStatsOp{});
  if (threadIdx.x == 0) {  // the block aggregate is valid in thread 0 only
    tile_counts[tile] = tot.accepted;
    if (tot.nan) atomic_add_i64(counts + kNaN, tot.nan);
    if (tot.overweight) atomic_add_i64(counts + kOverweight, tot.overweight);
    if (tot.posinf) atomic_add_i64(counts + kPosInf, tot.posinf);
    if (tot.max_ratio > -INFINITY) atomic_max_double(max_log_ratio, tot.max_ratio);
  }
}

// ---------------------------------------------------------------------------
// K2: tile offsets. One block loops over the tiles with a running carry that
// starts at the device-side counts[kAccepted].

__global__ void __launch_bounds__(kScanThreads)
    scan_kernel(const int64_t* __restrict__ tile_counts, int64_t* __restrict__ tile_offsets, int64_t ntiles,
                int64_t* counts) {
  using Scan = cub::BlockScan<int64_t, kScanThreads>;
  __shared__ typename Scan::TempStorage tmp;
  __shared__ int64_t s_base;
  // Only thread 0 touches counts[kAccepted]: it reads it here and writes it
  // at the very end, so no thread can see the updated value.
  if (threadIdx.x == 0) s_base = counts[kAccepted];
  __syncthreads();
  int64_t carry = s_base;  // identical in every thread throughout
  for (int64_t c0 = 0; c0 < ntiles; c0 += (int64_t)kScanThreads * kScanItems) {
    const int64_t first = c0 + (int64_t)threadIdx.x * kScanItems;  // blocked: scan order = tile order
    int64_t v[kScanItems], e[kScanItems];
#pragma unroll
    for (int k = 0; k < kScanItems; ++k) v[k] = first + k < ntiles ? tile_counts[first + k] : 0;
    int64_t round_total;
    Scan(tmp).ExclusiveSum(v, e, round_total);  // round_total is given to every thread
#pragma unroll
    for (int k = 0; k < kScanItems; ++k)
      if (first + k < ntiles) tile_offsets[first + k] = carry + e[k];
    carry += round_total;
    __syncthreads();  // tmp is reused by the next round
  }
  if (threadIdx.x == 0) counts[kAccepted] = carry;  // old value + all accepted rows
}

// ---------------------------------------------------------------------------
// K3: stable copy. Thread t owns rows 8t .. 8t+7 of the tile (blocked), so an
// exclusive scan of the per-thread counts is the in-tile rank in row order.
// W is the copy word (uint4 .. uint8_t) chosen on the host so that every row
// of x and of out is W-aligned; wpr = row_bytes / sizeof(W).

template <typename W>
__global__ void __launch_bounds__(kThreads)
    copy_kernel(const uint8_t* __restrict__ flags, const int64_t* __restrict__ tile_offsets,
                const W* __restrict__ x, W* __restrict__ out, int64_t wpr, int64_t capacity) {
  using Scan = cub::BlockScan<int, kThreads>;
  __shared__ typename Scan::TempStorage tmp;
  __shared__ uint16_t s_src[kTile];  // in-tile row of the r-th accepted row

  const int64_t tile = blockIdx.x;
  const int64_t row0 = tile * kTile;
  // 8 flag bytes (each 0 or 1) of rows row0 + 8t + k, k = 0..7; byte k is
  // bits 8k..8k+7 (little endian). Aligned: row0 and 8t are multiples of 8
  // and the flags region starts 256-aligned.
  const uint64_t f8 = reinterpret_cast<const uint64_t*>(flags + row0)[threadIdx.x];
  const int mine = __popcll(f8);  // one set bit per accepted row
  int rank, n_acc;
  Scan(tmp).ExclusiveSum(mine, rank, n_acc);  // n_acc is given to every thread

  // Accepted rows of this tile go to out rows dst0 .. dst0 + n_acc - 1; keep
  // those below capacity (the rest are counted by K2 but dropped).
  const int64_t dst0 = tile_offsets[tile];
  const int64_t room = capacity - dst0;
  const int n_copy = room <= 0 ? 0 : (room < n_acc ? (int)room : n_acc);
  if (n_copy == 0) return;  // uniform across the block: no barrier skipped by a subset

#pragma unroll
  for (int k = 0; k < kItems; ++k)
    if ((f8 >> (8 * k)) & 1u) s_src[rank++] = (uint16_t)(threadIdx.x * kItems + k);
  __syncthreads();

  W* dst = out + dst0 * wpr;  // the tile's output rows are consecutive
  const W* src = x + row0 * wpr;
  if (wpr >= 32) {
    // Large rows: one warp per row, lanes over the words of the row.
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    for (int r = warp; r < n_copy; r += kThreads / 32) {
      const W* s = src + (int64_t)s_src[r] * wpr;
      W* d = dst + (int64_t)r * wpr;
      for (int64_t w = lane; w < wpr; w += 32) d[w] = s[w];
    }
  } else if (wpr > 0) {
    // Small rows: the block walks the n_copy * wpr output words in order
    // (coalesced stores); n_copy * wpr < 2048 * 32 fits in 32 bits.
    const unsigned wp = (unsigned)wpr;
    const unsigned total = (unsigned)n_copy * wp;
    for (unsigned i = threadIdx.x; i < total; i += kThreads) {
      const unsigned r = i / wp, w = i - r * wp;
      dst[i] = src[(int64_t)s_src[r] * wpr + w];
    }
  }
}

// Widest word W such that row_bytes, x and out are all multiples of sizeof(W).
template <typename W>
bool fits(int64_t row_bytes, const void* x, const void* out) {
  const uintptr_t s = sizeof(W);
  return row_bytes % (int64_t)s == 0 && reinterpret_cast<uintptr_t>(x) % s == 0 &&
         reinterpret_cast<uintptr_t>(out) % s == 0;
}

template <typename W>
void launch_copy(unsigned grid, cudaStream_t stream, const uint8_t* flags, const int64_t* tile_offsets,
                 const AcceptArgs& a) {
  const int64_t wpr = a.row_bytes / (int64_t)sizeof(W);
  copy_kernel<W><<<grid, kThreads, 0, stream>>>(flags, tile_offsets, static_cast<const W*>(a.x),
                                                 static_cast<W*>(a.out), wpr, a.capacity);
  CUDA_CHECK(cudaGetLastError());
}

struct ScratchLayout {
  uint8_t* flags;
  int64_t* tile_counts;
  int64_t* tile_offsets;
};

ScratchLayout layout(void* scratch, int64_t ntiles) {
  uintptr_t p = reinterpret_cast<uintptr_t>(scratch);
  p = (p + kScratchAlign - 1) / kScratchAlign * kScratchAlign;  // uses at most kScratchAlign - 1 bytes of slack
  uint8_t* base = reinterpret_cast<uint8_t*>(p);
  ScratchLayout l;
  l.flags = base;
  l.tile_counts = reinterpret_cast<int64_t*>(base + ntiles * kTile);  // kTile % 8 == 0: aligned
  l.tile_offsets = l.tile_counts + ntiles;
  return l;
}

template <typename T>
void run(const AcceptArgs& a, cudaStream_t stream) {
  const int64_t ntiles = num_tiles(a.m);
  if (ntiles > INT_MAX) throw std::invalid_argument("rsfast CUDA accept_compact: too many rows");
  const unsigned grid = (unsigned)ntiles;
  const ScratchLayout s = layout(a.scratch, ntiles);

  decide_kernel<T><<<grid, kThreads, 0, stream>>>(static_cast<const T*>(a.log_p), static_cast<const T*>(a.log_q),
                                                  a.m, (T)a.log_M, a.seed, a.offset, s.flags, s.tile_counts,
                                                  a.counts, a.max_log_ratio);
  CUDA_CHECK(cudaGetLastError());

  scan_kernel<<<1, kScanThreads, 0, stream>>>(s.tile_counts, s.tile_offsets, ntiles, a.counts);
  CUDA_CHECK(cudaGetLastError());

  // Row addresses are x + i * row_bytes: all W-aligned iff x and row_bytes are.
  if (fits<uint4>(a.row_bytes, a.x, a.out))
    launch_copy<uint4>(grid, stream, s.flags, s.tile_offsets, a);
  else if (fits<uint2>(a.row_bytes, a.x, a.out))
    launch_copy<uint2>(grid, stream, s.flags, s.tile_offsets, a);
  else if (fits<uint32_t>(a.row_bytes, a.x, a.out))
    launch_copy<uint32_t>(grid, stream, s.flags, s.tile_offsets, a);
  else if (fits<uint16_t>(a.row_bytes, a.x, a.out))
    launch_copy<uint16_t>(grid, stream, s.flags, s.tile_offsets, a);
  else
    launch_copy<uint8_t>(grid, stream, s.flags, s.tile_offsets, a);
}

}  // namespace

int64_t accept_compact_scratch_bytes(int64_t m) {
  const int64_t ntiles = m > 0 ? num_tiles(m) : 0;
  return kScratchAlign + ntiles * kTile + 2 * ntiles * (int64_t)sizeof(int64_t);
}

void accept_compact(const AcceptArgs& args, int device, void* stream) {
  if (args.m <= 0) return;
  if (args.row_bytes < 0) throw std::invalid_argument("rsfast CUDA accept_compact: negative row_bytes");
  if (args.scratch == nullptr) throw std::invalid_argument("rsfast CUDA accept_compact: no scratch");
  DeviceGuard guard(device);
  cudaStream_t s = static_cast<cudaStream_t>(stream);
  if (args.dtype == kFloat32)
    run<float>(args, s);
  else
    run<double>(args, s);
}

}  // namespace rsfast::cuda
