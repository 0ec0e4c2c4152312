// CUDA driver of perturb: one thread per Philox stream (4 normals, elements
// 64 t + 16 k + l of the tile t = s / 16, l = s % 16), grid-stride, one launch
// per tensor on the caller's stream. The same core as csrc/ops/perturb/cpu.cpp, so
// float32 noise is bit-identical to the CPU's (no FMA contraction, --fmad=false).
#include <cuda_runtime.h>

#include <algorithm>
#include <stdexcept>

#include "ops/perturb/api.h"
#include "ops/perturb/core.h"
#include "util.cuh"

namespace rsfast::cuda {
namespace {

constexpr int kPerturbThreads = 256;

template <int D>
__global__ void __launch_bounds__(kPerturbThreads)
    perturb_kernel(typename Storage<D>::T* __restrict__ x, int64_t numel, uint64_t seed, uint32_t index,
                   float s_f, double s_d) {
  const int64_t streams = ((numel + kPerturbTile - 1) / kPerturbTile) * kPerturbStreamsPerTile;
  const int64_t step = (int64_t)gridDim.x * blockDim.x;
  for (int64_t s = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; s < streams; s += step) {
    const Normals4 z = perturb_normals(seed, index, (uint64_t)s);
    const int64_t base = (s >> 4) * kPerturbTile + (s & 15);
#pragma unroll
    for (int k = 0; k < 4; ++k) {
      const int64_t j = base + 16 * k;
      if (j < numel) x[j] = perturb_value<D>(x[j], z.v[k], s_f, s_d);
    }
  }
}

template <int D>
void launch(const PerturbTensor& t, uint64_t seed, double scale, cudaStream_t stream) {
  const int64_t streams = ((t.numel + kPerturbTile - 1) / kPerturbTile) * kPerturbStreamsPerTile;
  const int64_t blocks = (streams + kPerturbThreads - 1) / kPerturbThreads;
  const unsigned grid = (unsigned)std::min<int64_t>(blocks, int64_t(1) << 20);  // grid-stride beyond
  perturb_kernel<D><<<grid, kPerturbThreads, 0, stream>>>(static_cast<typename Storage<D>::T*>(t.data), t.numel,
                                                         seed, t.index, (float)scale, scale);
  CUDA_CHECK(cudaGetLastError());
}

}  // namespace

void perturb(const PerturbArgs& args, int device, void* stream) {
  DeviceGuard guard(device);
  cudaStream_t s = static_cast<cudaStream_t>(stream);
  for (int64_t c = 0; c < args.count; ++c) {
    const PerturbTensor& t = args.tensors[c];
    if (t.numel <= 0) continue;
    switch (t.dtype) {
      case kFloat32: launch<kFloat32>(t, args.seed, args.scale, s); break;
      case kFloat64: launch<kFloat64>(t, args.seed, args.scale, s); break;
      case kFloat16: launch<kFloat16>(t, args.seed, args.scale, s); break;
      case kBFloat16: launch<kBFloat16>(t, args.seed, args.scale, s); break;
      default: throw std::invalid_argument("rsfast CUDA perturb: unknown dtype code");
    }
  }
}

}  // namespace rsfast::cuda
