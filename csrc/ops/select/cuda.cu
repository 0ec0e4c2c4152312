// CUDA drivers of the group selection ops (rsfast.select): the same results as
// csrc/ops/select/cpu.cpp, on the caller's stream, with no host synchronisation
// and no allocation (scratch comes from torch).
//
//   best_of_n, rso, threshold (count and write passes), filter_groups: one
//     warp per group (grid-stride over groups). Warp ballots keep index
//     order: a round of RSO visits its candidates 32 at a time and accepts
//     the set lanes lowest first until k, exactly the serial order.
//   top_fraction: order keys, a stable descending CUB radix sort of (key,
//     index) pairs, then an ascending sort of the first `count` indices.
//   dedupe: an open-addressing table filled with atomicCAS / atomicMin (each
//     (group, key) ends in one slot holding its smallest index, whatever the
//     order of the threads), then keep[i] = (its slot holds i).
#include <cuda_runtime.h>

#include <algorithm>
#include <climits>
#include <cstdint>
#include <cub/cub.cuh>
#include <stdexcept>

#include "ops/select/api.h"
#include "ops/select/core.h"
#include "util.cuh"

namespace rsfast::cuda {
namespace {

constexpr int kThreads = 256;
constexpr int kWarps = kThreads / 32;
constexpr unsigned kFull = 0xffffffffu;

unsigned warp_grid(int64_t groups) {
  const int64_t blocks = (groups + kWarps - 1) / kWarps;
  return (unsigned)std::max<int64_t>(1, std::min<int64_t>(blocks, int64_t(1) << 20));
}

__device__ __forceinline__ int64_t first_warp() { return ((int64_t)blockIdx.x * blockDim.x + threadIdx.x) / 32; }
__device__ __forceinline__ int64_t warp_stride() { return (int64_t)gridDim.x * blockDim.x / 32; }
__device__ __forceinline__ int lane_id() { return threadIdx.x & 31; }

// ------------------------------------------------------------------ best_of_n

// Pick j is the best candidate ranking after pick j - 1: a warp arg-best per
// pick, O(k n / 32) per group.
template <typename T>
__global__ void __launch_bounds__(kThreads)
    best_of_n_kernel(GroupLayout L, const T* __restrict__ values, int64_t k, int64_t* __restrict__ out) {
  const int lane = lane_id();
  for (int64_t g = first_warp(); g < L.groups; g += warp_stride()) {
    const T* v = values + L.begin(g);
    const int64_t n = L.size(g);
    const int64_t kk = k < n ? k : n;
    T prev_v = 0;
    int64_t prev_i = -1;
    for (int64_t j = 0; j < kk; ++j) {
      T best_v = 0;
      int64_t best_i = -1;
      for (int64_t c = lane; c < n; c += 32) {
        const T x = v[c];
        if (prev_i >= 0 && !ranks_before(prev_v, prev_i, x, c)) continue;
        if (best_i < 0 || ranks_before(x, c, best_v, best_i)) {
          best_v = x;
          best_i = c;
        }
      }
#pragma unroll
      for (int s = 16; s > 0; s >>= 1) {
        const T ov = __shfl_xor_sync(kFull, best_v, s);
        const int64_t oi = __shfl_xor_sync(kFull, best_i, s);
        if (oi >= 0 && (best_i < 0 || ranks_before(ov, oi, best_v, best_i))) {
          best_v = ov;
          best_i = oi;
        }
      }
      if (lane == 0) out[g * k + j] = best_i;
      prev_v = best_v;
      prev_i = best_i;
    }
    for (int64_t j = kk + lane; j < k; j += 32) out[g * k + j] = -1;
  }
}

// ------------------------------------------------------------------------ rso

template <typename T>
__global__ void __launch_bounds__(kThreads)
    rso_kernel(GroupLayout L, const T* __restrict__ values, int64_t k, T beta, uint64_t seed, uint32_t offset,
               int64_t* __restrict__ out, uint8_t* __restrict__ taken_all) {
  const int lane = lane_id();
  const unsigned lower = (1u << lane) - 1u;
  for (int64_t g = first_warp(); g < L.groups; g += warp_stride()) {
    const int64_t base = L.begin(g), n = L.size(g);
    const T* v = values + base;
    uint8_t* taken = taken_all + base;
    for (int64_t c = lane; c < n; c += 32) taken[c] = 0;
    __syncwarp();
    int64_t count = 0;
    const int64_t rounds = k < n ? k : n;
    for (int64_t t = 0; t < rounds && count < k; ++t) {
      T rmax = (T)-INFINITY;
      bool live = false;
      for (int64_t c = lane; c < n; c += 32) {
        const T x = v[c];
        if (!taken[c] && x == x) {
          live = true;
          rmax = x > rmax ? x : rmax;
        }
      }
#pragma unroll
      for (int s = 16; s > 0; s >>= 1) {
        const T o = __shfl_xor_sync(kFull, rmax, s);
        rmax = o > rmax ? o : rmax;
      }
      if (!__any_sync(kFull, live)) break;  // nothing but NaN left
      for (int64_t c0 = 0; c0 < n && count < k; c0 += 32) {
        const int64_t c = c0 + lane;
        bool acc = false;
        if (c < n && !taken[c]) {
          const T x = v[c];
          const T u = rso_uniform_at<T>(seed, offset, g, n, t, c);
          acc = rso_accept(x, rmax, rso_prob(x, rmax, beta), u);
        }
        const unsigned mask = __ballot_sync(kFull, acc);
        const int64_t rank = __popc(mask & lower);
        if (acc && count + rank < k) {
          out[g * k + count + rank] = c;
          taken[c] = 1;
        }
        const int64_t got = __popc(mask);
        count = count + got < k ? count + got : k;
        __syncwarp();
      }
    }
    for (int64_t j = count + lane; j < k; j += 32) out[g * k + j] = -1;
  }
}

// ------------------------------------------------------------------ threshold

template <typename T>
__global__ void __launch_bounds__(kThreads)
    threshold_count_kernel(GroupLayout L, const T* __restrict__ values, T bar, int64_t cap,
                           int64_t* __restrict__ counts) {
  const int lane = lane_id();
  for (int64_t g = first_warp(); g < L.groups; g += warp_stride()) {
    const T* v = values + L.begin(g);
    const int64_t n = L.size(g);
    int64_t hits = 0;
    for (int64_t c0 = 0; c0 < n; c0 += 32) {
      const int64_t c = c0 + lane;
      hits += __popc(__ballot_sync(kFull, c < n && v[c] >= bar));
    }
    if (lane == 0) counts[g] = hits < cap ? hits : cap;
  }
}

template <typename T>
__global__ void __launch_bounds__(kThreads)
    threshold_write_kernel(GroupLayout L, const T* __restrict__ values, T bar, int64_t cap,
                           const int64_t* __restrict__ starts, int64_t* __restrict__ out) {
  const int lane = lane_id();
  const unsigned lower = (1u << lane) - 1u;
  for (int64_t g = first_warp(); g < L.groups; g += warp_stride()) {
    const int64_t base = L.begin(g), n = L.size(g);
    const T* v = values + base;
    const int64_t pos = starts[g];
    int64_t hits = 0;
    for (int64_t c0 = 0; c0 < n && hits < cap; c0 += 32) {
      const int64_t c = c0 + lane;
      const bool hit = c < n && v[c] >= bar;
      const unsigned mask = __ballot_sync(kFull, hit);
      const int64_t rank = __popc(mask & lower);
      if (hit && hits + rank < cap) out[pos + hits + rank] = base + c;
      hits += __popc(mask);
    }
  }
}

// -------------------------------------------------------------- filter_groups

template <typename T>
__global__ void __launch_bounds__(kThreads)
    filter_groups_kernel(GroupLayout L, const T* __restrict__ values, uint8_t* __restrict__ keep) {
  const int lane = lane_id();
  for (int64_t g = first_warp(); g < L.groups; g += warp_stride()) {
    const T* v = values + L.begin(g);
    const int64_t n = L.size(g);
    bool differs = false;
    if (n > 1) {
      const T first = v[0];
      for (int64_t c = 1 + lane; c < n && !differs; c += 32) differs = !(v[c] == first);
    }
    differs = __any_sync(kFull, differs);
    if (lane == 0) keep[g] = differs ? 1 : 0;
  }
}

// --------------------------------------------------------------- top_fraction

template <typename T>
using KeyOf = typename std::conditional<sizeof(T) == 4, uint32_t, uint64_t>::type;

int64_t align_up(int64_t x) { return (x + 255) / 256 * 256; }

int index_bits(int64_t m) {
  int b = 1;
  while (b < 63 && (int64_t(1) << b) < m) ++b;
  return b;
}

// CUB's temporary storage for both sorts (a host-side size query: no launch).
template <typename T>
size_t top_fraction_temp_bytes(int m) {
  using K = KeyOf<T>;
  size_t a = 0, b = 0;
  CUDA_CHECK(cub::DeviceRadixSort::SortPairsDescending(nullptr, a, (const K*)nullptr, (K*)nullptr,
                                                       (const int64_t*)nullptr, (int64_t*)nullptr, m));
  CUDA_CHECK(cub::DeviceRadixSort::SortKeys(nullptr, b, (const int64_t*)nullptr, (int64_t*)nullptr, m));
  return std::max(a, b);
}

// Scratch: [keys_in][keys_out][idx_in][idx_out][cub temp], each 256-aligned.
template <typename T>
int64_t top_fraction_scratch(int64_t m) {
  using K = KeyOf<T>;
  return 256 + 2 * align_up(m * (int64_t)sizeof(K)) + 2 * align_up(m * 8) +
         align_up((int64_t)top_fraction_temp_bytes<T>((int)m));
}

template <typename T>
__global__ void __launch_bounds__(kThreads)
    order_keys_kernel(const T* __restrict__ v, int64_t m, KeyOf<T>* __restrict__ keys, int64_t* __restrict__ idx) {
  const int64_t stride = (int64_t)gridDim.x * blockDim.x;
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < m; i += stride) {
    keys[i] = order_key(v[i]);
    idx[i] = i;
  }
}

template <typename T>
void top_fraction_launch(const SelectArgs& a, cudaStream_t s) {
  using K = KeyOf<T>;
  const int64_t m = a.groups * a.n;
  if (m > INT_MAX) throw std::invalid_argument("rsfast CUDA top_fraction: more than 2^31 - 1 rewards");
  uint8_t* p = reinterpret_cast<uint8_t*>(align_up(reinterpret_cast<intptr_t>(a.scratch)));
  K* keys_in = reinterpret_cast<K*>(p);
  p += align_up(m * (int64_t)sizeof(K));
  K* keys_out = reinterpret_cast<K*>(p);
  p += align_up(m * (int64_t)sizeof(K));
  int64_t* idx_in = reinterpret_cast<int64_t*>(p);
  p += align_up(m * 8);
  int64_t* idx_out = reinterpret_cast<int64_t*>(p);
  p += align_up(m * 8);
  size_t temp_bytes = top_fraction_temp_bytes<T>((int)m);
  const unsigned grid = (unsigned)std::min<int64_t>((m + kThreads - 1) / kThreads, int64_t(1) << 20);
  order_keys_kernel<T><<<grid, kThreads, 0, s>>>(static_cast<const T*>(a.values), m, keys_in, idx_in);
  CUDA_CHECK(cudaGetLastError());
  // Radix sort is stable: equal keys keep increasing index order.
  CUDA_CHECK(cub::DeviceRadixSort::SortPairsDescending(p, temp_bytes, keys_in, keys_out, idx_in, idx_out, (int)m, 0,
                                                       (int)(8 * sizeof(K)), s));
  temp_bytes = top_fraction_temp_bytes<T>((int)m);
  CUDA_CHECK(cub::DeviceRadixSort::SortKeys(p, temp_bytes, idx_out, a.out, (int)a.count, 0, index_bits(m), s));
}

// --------------------------------------------------------------------- dedupe

__global__ void __launch_bounds__(kThreads)
    dedupe_insert_kernel(int64_t m, const int64_t* __restrict__ keys, const int64_t* __restrict__ groups,
                         unsigned long long* table, uint64_t tmask) {
  const int64_t stride = (int64_t)gridDim.x * blockDim.x;
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < m; i += stride) {
    const unsigned long long me = (unsigned long long)i;
    const int64_t gi = groups[i], ki = keys[i];
    uint64_t s = pair_hash(gi, ki) & tmask;
    for (uint64_t probe = 0; probe <= tmask; ++probe, s = (s + 1) & tmask) {
      unsigned long long cur = *reinterpret_cast<volatile unsigned long long*>(table + s);
      if (cur == kDedupeEmpty) {
        cur = atomicCAS(table + s, (unsigned long long)kDedupeEmpty, me);
        if (cur == kDedupeEmpty) break;  // claimed
      }
      if (groups[cur] == gi && keys[cur] == ki) {
        atomicMin(table + s, me);
        break;
      }
    }
  }
}

__global__ void __launch_bounds__(kThreads)
    dedupe_mark_kernel(int64_t m, const int64_t* __restrict__ keys, const int64_t* __restrict__ groups,
                       const unsigned long long* __restrict__ table, uint64_t tmask, uint8_t* __restrict__ keep) {
  const int64_t stride = (int64_t)gridDim.x * blockDim.x;
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < m; i += stride) {
    const int64_t gi = groups[i], ki = keys[i];
    uint64_t s = pair_hash(gi, ki) & tmask;
    uint8_t k = 0;
    for (uint64_t probe = 0; probe <= tmask; ++probe, s = (s + 1) & tmask) {
      const unsigned long long cur = table[s];
      if (cur == kDedupeEmpty) break;  // unreachable: the pair was inserted on this probe path
      if (groups[cur] == gi && keys[cur] == ki) {
        k = cur == (unsigned long long)i ? 1 : 0;
        break;
      }
    }
    keep[i] = k;
  }
}

}  // namespace

void select_best_of_n(const SelectArgs& a, int device, void* stream) {
  if (a.groups <= 0) return;
  DeviceGuard guard(device);
  cudaStream_t s = static_cast<cudaStream_t>(stream);
  const GroupLayout L{a.groups, a.n, a.offsets};
  if (a.dtype == kFloat32)
    best_of_n_kernel<float><<<warp_grid(a.groups), kThreads, 0, s>>>(L, static_cast<const float*>(a.values), a.k,
                                                                      a.out);
  else
    best_of_n_kernel<double><<<warp_grid(a.groups), kThreads, 0, s>>>(L, static_cast<const double*>(a.values), a.k,
                                                                       a.out);
  CUDA_CHECK(cudaGetLastError());
}

void select_rso(const SelectArgs& a, int device, void* stream) {
  if (a.groups <= 0) return;
  DeviceGuard guard(device);
  cudaStream_t s = static_cast<cudaStream_t>(stream);
  const GroupLayout L{a.groups, a.n, a.offsets};
  uint8_t* taken = static_cast<uint8_t*>(a.scratch);
  if (a.dtype == kFloat32)
    rso_kernel<float><<<warp_grid(a.groups), kThreads, 0, s>>>(L, static_cast<const float*>(a.values), a.k,
                                                                (float)a.beta, a.seed, a.offset, a.out, taken);
  else
    rso_kernel<double><<<warp_grid(a.groups), kThreads, 0, s>>>(L, static_cast<const double*>(a.values), a.k,
                                                                 a.beta, a.seed, a.offset, a.out, taken);
  CUDA_CHECK(cudaGetLastError());
}

void select_threshold_count(const SelectArgs& a, int device, void* stream) {
  if (a.groups <= 0) return;
  DeviceGuard guard(device);
  cudaStream_t s = static_cast<cudaStream_t>(stream);
  const GroupLayout L{a.groups, a.n, a.offsets};
  const int64_t cap = a.max_per_group < 0 ? INT64_MAX : a.max_per_group;
  if (a.dtype == kFloat32)
    threshold_count_kernel<float><<<warp_grid(a.groups), kThreads, 0, s>>>(
        L, static_cast<const float*>(a.values), (float)a.min_reward, cap, a.counts);
  else
    threshold_count_kernel<double><<<warp_grid(a.groups), kThreads, 0, s>>>(
        L, static_cast<const double*>(a.values), a.min_reward, cap, a.counts);
  CUDA_CHECK(cudaGetLastError());
}

void select_threshold_write(const SelectArgs& a, int device, void* stream) {
  if (a.groups <= 0) return;
  DeviceGuard guard(device);
  cudaStream_t s = static_cast<cudaStream_t>(stream);
  const GroupLayout L{a.groups, a.n, a.offsets};
  const int64_t cap = a.max_per_group < 0 ? INT64_MAX : a.max_per_group;
  if (a.dtype == kFloat32)
    threshold_write_kernel<float><<<warp_grid(a.groups), kThreads, 0, s>>>(
        L, static_cast<const float*>(a.values), (float)a.min_reward, cap, a.counts, a.out);
  else
    threshold_write_kernel<double><<<warp_grid(a.groups), kThreads, 0, s>>>(
        L, static_cast<const double*>(a.values), a.min_reward, cap, a.counts, a.out);
  CUDA_CHECK(cudaGetLastError());
}

void select_top_fraction(const SelectArgs& a, int device, void* stream) {
  if (a.count <= 0 || a.groups * a.n <= 0) return;
  DeviceGuard guard(device);
  cudaStream_t s = static_cast<cudaStream_t>(stream);
  if (a.dtype == kFloat32)
    top_fraction_launch<float>(a, s);
  else
    top_fraction_launch<double>(a, s);
}

void select_filter_groups(const SelectArgs& a, int device, void* stream) {
  if (a.groups <= 0) return;
  DeviceGuard guard(device);
  cudaStream_t s = static_cast<cudaStream_t>(stream);
  const GroupLayout L{a.groups, a.n, a.offsets};
  const unsigned grid = warp_grid(a.groups);
  if (a.dtype == kFloat32)
    filter_groups_kernel<float><<<grid, kThreads, 0, s>>>(L, static_cast<const float*>(a.values), a.keep);
  else if (a.dtype == kFloat64)
    filter_groups_kernel<double><<<grid, kThreads, 0, s>>>(L, static_cast<const double*>(a.values), a.keep);
  else
    filter_groups_kernel<int64_t><<<grid, kThreads, 0, s>>>(L, static_cast<const int64_t*>(a.values), a.keep);
  CUDA_CHECK(cudaGetLastError());
}

void select_dedupe(const DedupeArgs& a, int device, void* stream) {
  if (a.m <= 0) return;
  DeviceGuard guard(device);
  cudaStream_t s = static_cast<cudaStream_t>(stream);
  unsigned long long* table = reinterpret_cast<unsigned long long*>(a.table);
  const uint64_t tmask = (uint64_t)a.table_size - 1;
  CUDA_CHECK(cudaMemsetAsync(table, 0xff, (size_t)a.table_size * sizeof(unsigned long long), s));
  const unsigned grid = (unsigned)std::min<int64_t>((a.m + kThreads - 1) / kThreads, int64_t(1) << 20);
  dedupe_insert_kernel<<<grid, kThreads, 0, s>>>(a.m, a.keys, a.groups, table, tmask);
  CUDA_CHECK(cudaGetLastError());
  dedupe_mark_kernel<<<grid, kThreads, 0, s>>>(a.m, a.keys, a.groups, table, tmask, a.keep);
  CUDA_CHECK(cudaGetLastError());
}

int64_t select_scratch_bytes(int op, int64_t m, int dtype) {
  if (op == kScratchRso) return std::max<int64_t>(m, 1);  // one taken flag per candidate
  if (op == kScratchBestOfN) return 1;                   // no scratch
  if (op == kScratchTopFraction) {
    if (m > INT_MAX) throw std::invalid_argument("rsfast CUDA top_fraction: more than 2^31 - 1 rewards");
    return dtype == kFloat32 ? top_fraction_scratch<float>(m) : top_fraction_scratch<double>(m);
  }
  throw std::invalid_argument("rsfast CUDA select_scratch_bytes: unknown op");
}

}  // namespace rsfast::cuda
