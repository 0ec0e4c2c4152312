// CUDA driver of slot mode: one thread per output element (grid-stride), each
// running its law's rejection loop on its own Philox stream (slot_sample/core.h), so that
// element i gets the same words as on the CPU. No host sync, no allocation.
#include <cuda_runtime.h>

#include <algorithm>
#include <stdexcept>

#include "ops/slot_sample/api.h"
#include "ops/slot_sample/laws.h"
#include "util.cuh"

namespace rsfast::cuda {
namespace {

constexpr int kSlotThreads = 256;

template <typename T>
struct SlotParams {
  const T* p[kSlotMaxParams];
};

template <typename T, typename Law>
__global__ void __launch_bounds__(kSlotThreads)
    slot_kernel(const SlotParams<T> params, int64_t n, int64_t batch, uint64_t seed, uint32_t offset,
                T* __restrict__ out, unsigned long long* __restrict__ exhausted,
                unsigned long long* __restrict__ invalid) {
  const int64_t stride = (int64_t)gridDim.x * blockDim.x;
  int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n) return;
  // The parameter row walks with i: one modulo per thread, none per element.
  int64_t j = i % batch;
  const int64_t step = stride % batch;
  for (; i < n; i += stride) {
    T row[kSlotMaxParams];
#pragma unroll
    for (int k = 0; k < Law::kParams; ++k) row[k] = params.p[k][j];
    // In-kernel parameter check: a bad row gives NaN, counted, and its check
    // bits in `invalid` (read by the host only on request: no sync here).
    const uint32_t fail = Law::invalid(row);
    T v = T(NAN);
    if (fail)
      atomicOr(invalid, (unsigned long long)fail);
    else
      v = slot_draw<T, Law>(Law::prepare(row), (uint32_t)seed, (uint32_t)(seed >> 32), (uint64_t)i, offset);
    out[i] = v;
    if (v != v) atomicAdd(exhausted, 1ull);
    j += step;
    if (j >= batch) j -= batch;
  }
}

template <typename T>
void launch(const SlotArgs& a, cudaStream_t stream) {
  SlotParams<T> params{};
  const int64_t blocks = (a.n + kSlotThreads - 1) / kSlotThreads;
  const unsigned grid = (unsigned)std::min<int64_t>(blocks, int64_t(1) << 20);
  const bool known = slot_dispatch<T>(a.law, [&](auto law) {
    using Law = decltype(law);
    for (int k = 0; k < Law::kParams; ++k) params.p[k] = static_cast<const T*>(a.params[k]);
    slot_kernel<T, Law><<<grid, kSlotThreads, 0, stream>>>(
        params, a.n, a.batch, a.seed, a.offset, static_cast<T*>(a.out),
        reinterpret_cast<unsigned long long*>(a.exhausted), reinterpret_cast<unsigned long long*>(a.invalid));
  });
  if (!known) throw std::invalid_argument("rsfast CUDA slot_sample: unknown law code");
  CUDA_CHECK(cudaGetLastError());
}

}  // namespace

void slot_sample(const SlotArgs& args, int device, void* stream) {
  if (args.n <= 0) return;
  DeviceGuard guard(device);
  cudaStream_t s = static_cast<cudaStream_t>(stream);
  if (args.dtype == kFloat32)
    launch<float>(args, s);
  else
    launch<double>(args, s);
}

}  // namespace rsfast::cuda
