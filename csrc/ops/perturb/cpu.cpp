// CPU driver of perturb: tiles of 64 elements = 16 Philox streams in SIMD lanes
// (philox_lanes) times 4 Box-Muller normals, added in place with contiguous
// loads and stores. One OpenMP region per call over fixed chunks of every
// tensor of the list (dynamic schedule): the noise of an element depends on
// (seed, tensor index, element index) only, never on the thread count.
#include "ops/perturb/core.h"

#include <algorithm>
#include <vector>

#include "parallel.h"
#include "philox_lanes.h"
#include "ops/perturb/api.h"

namespace rsfast::cpu::RSFAST_CPU_ISA {
namespace {

constexpr int64_t kChunk = 16384;  // elements per scheduling chunk (multiple of kPerturbTile)
static_assert(kChunk % kPerturbTile == 0, "chunks hold whole tiles");
static_assert(kLanes == kPerturbStreamsPerTile, "a tile is one philox_lanes call");

// Elements [begin, end) of one tensor; begin is a multiple of the tile.
template <int D>
void perturb_range(typename Storage<D>::T* __restrict x, int64_t begin, int64_t end, uint32_t k0, uint32_t k1,
                   uint32_t index, float s_f, double s_d) {
  using T = typename Storage<D>::T;
  constexpr int64_t W = kLanes;
  alignas(64) uint32_t w[4][W];
  alignas(64) float z[4][W];
  for (int64_t j0 = begin; j0 < end; j0 += kPerturbTile) {
    const uint64_t s0 = (uint64_t)(j0 >> 6) << 4;  // first stream of the tile (a multiple of 16: no wrap)
    philox_lanes(k0, k1, (uint32_t)s0, (uint32_t)(s0 >> 32), kPerturbTag, index, w);
    const int64_t n = std::min<int64_t>(kPerturbTile, end - j0);
    const bool half_tile = n <= 2 * W;  // only normals 0 and 1 are needed
#pragma omp simd
    for (int64_t l = 0; l < W; ++l) box_muller(w[0][l], w[1][l], z[0][l], z[1][l]);
    if (!half_tile) {
#pragma omp simd
      for (int64_t l = 0; l < W; ++l) box_muller(w[2][l], w[3][l], z[2][l], z[3][l]);
    }
    T* __restrict t = x + j0;
    if (n == kPerturbTile) {
#pragma GCC unroll 4
      for (int k = 0; k < 4; ++k) {
#pragma omp simd
        for (int64_t l = 0; l < W; ++l) t[k * W + l] = perturb_value<D>(t[k * W + l], z[k][l], s_f, s_d);
      }
    } else {
      for (int64_t r = 0; r < n; ++r) t[r] = perturb_value<D>(t[r], z[r >> 4][r & 15], s_f, s_d);
    }
  }
}

void perturb_chunk(const PerturbTensor& pt, int64_t begin, int64_t end, uint32_t k0, uint32_t k1, float s_f,
                   double s_d) {
  switch (pt.dtype) {
    case kFloat32:
      return perturb_range<kFloat32>(static_cast<float*>(pt.data), begin, end, k0, k1, pt.index, s_f, s_d);
    case kFloat64:
      return perturb_range<kFloat64>(static_cast<double*>(pt.data), begin, end, k0, k1, pt.index, s_f, s_d);
    case kFloat16:
      return perturb_range<kFloat16>(static_cast<uint16_t*>(pt.data), begin, end, k0, k1, pt.index, s_f,
                                        s_d);
    default:
      return perturb_range<kBFloat16>(static_cast<uint16_t*>(pt.data), begin, end, k0, k1, pt.index, s_f,
                                         s_d);
  }
}

}  // namespace

void perturb(const PerturbArgs& a) {
  // first[c]: the first global chunk of tensor c; chunks never straddle tensors.
  std::vector<int64_t> first((size_t)a.count + 1, 0);
  int64_t total = 0;
  for (int64_t c = 0; c < a.count; ++c) {
    first[(size_t)c + 1] = first[(size_t)c] + (std::max<int64_t>(a.tensors[c].numel, 0) + kChunk - 1) / kChunk;
    total += std::max<int64_t>(a.tensors[c].numel, 0);
  }
  const int64_t nchunks = first[(size_t)a.count];
  if (nchunks == 0) return;
  const uint32_t k0 = (uint32_t)a.seed, k1 = (uint32_t)(a.seed >> 32);
  const float s_f = (float)a.scale;
  const int nt = threads_for(total);
#pragma omp parallel for num_threads(nt) if (nt > 1) schedule(dynamic, 1)
  for (int64_t g = 0; g < nchunks; ++g) {
    const int64_t c = std::upper_bound(first.begin(), first.end(), g) - first.begin() - 1;
    const PerturbTensor& pt = a.tensors[c];
    const int64_t begin = (g - first[(size_t)c]) * kChunk;
    perturb_chunk(pt, begin, std::min(pt.numel, begin + kChunk), k0, k1, s_f, a.scale);
  }
}

}  // namespace rsfast::cpu::RSFAST_CPU_ISA
