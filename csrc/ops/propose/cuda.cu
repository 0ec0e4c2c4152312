// CUDA driver of propose: one thread per row (grid-stride), each running the
// shared propose_row core, so that every row draws the same Philox blocks as
// csrc/ops/propose/cpu.cpp (bit-identical for float32, see CMakeLists --fmad).
#include <cuda_runtime.h>

#include <algorithm>
#include <climits>
#include <stdexcept>

#include "ops/propose/api.h"
#include "ops/propose/core.h"
#include "util.cuh"

namespace rsfast::cuda {
namespace {

constexpr int kProposeThreads = 256;

template <typename T>
__global__ void __launch_bounds__(kProposeThreads)
    propose_kernel(const ProposalParams<T> p, uint64_t seed, uint32_t offset, int64_t m, T* __restrict__ x,
                   T* __restrict__ log_q) {
  const int64_t stride = (int64_t)gridDim.x * blockDim.x;
  for (int64_t row = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; row < m; row += stride)
    propose_row<T>(p, seed, offset, (uint64_t)row, x + row * p.dim, log_q + row);
}

template <typename T>
void launch(const ProposeArgs& a, cudaStream_t stream) {
  const ProposalParams<T> p = params_of<T>(a);
  const int64_t blocks = (a.m + kProposeThreads - 1) / kProposeThreads;
  // Grid-stride beyond this; 2^20 blocks of 256 threads fill any GPU.
  const unsigned grid = (unsigned)std::min<int64_t>(blocks, int64_t(1) << 20);
  propose_kernel<T><<<grid, kProposeThreads, 0, stream>>>(p, a.seed, a.offset, a.m, static_cast<T*>(a.x),
                                                         static_cast<T*>(a.log_q));
  CUDA_CHECK(cudaGetLastError());
}

}  // namespace

void propose(const ProposeArgs& args, int device, void* stream) {
  if (args.m <= 0) return;
  if (args.dim < 0 || (args.kind == kMixtureNormal && args.ncomp < 1))
    throw std::invalid_argument("rsfast CUDA propose: bad dim or ncomp");
  DeviceGuard guard(device);
  cudaStream_t s = static_cast<cudaStream_t>(stream);
  if (args.dtype == kFloat32)
    launch<float>(args, s);
  else
    launch<double>(args, s);
}

}  // namespace rsfast::cuda
