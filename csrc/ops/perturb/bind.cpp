// rsfast._C.perturb: one PerturbTensor per (pointer, numel, dtype code, list index); all on one device.
#include <vector>

#include "ops/perturb/api.h"
#include "rsfast/bind.h"

namespace rsfast::bind {
namespace {

void perturb(const std::vector<uintptr_t>& ptrs, const std::vector<int64_t>& numels, const std::vector<int>& dtypes,
             const std::vector<uint32_t>& indices, uint64_t seed, double scale, int device, uintptr_t stream) {
  const size_t n = ptrs.size();
  if (numels.size() != n || dtypes.size() != n || indices.size() != n)
    throw std::invalid_argument("rsfast._C.perturb: ptrs, numels, dtypes and indices must have one length");
  std::vector<PerturbTensor> tensors(n);
  for (size_t c = 0; c < n; ++c) {
    if (!is_any_float_dtype(dtypes[c]))
      throw std::invalid_argument("rsfast._C.perturb: dtype code must be a floating DType");
    if (numels[c] < 0) throw std::invalid_argument("rsfast._C.perturb: numel must be >= 0");
    tensors[c] = PerturbTensor{mptr(ptrs[c]), numels[c], dtypes[c], indices[c]};
  }
  const PerturbArgs args{tensors.data(), (int64_t)n, seed, scale};
  RSFAST_RUN(rsfast, perturb, args, device, stream);
}

}  // namespace

RSFAST_BIND(perturb) {
  m.def("perturb", &perturb, "Add scale * z in place to each tensor, z the Philox normals of (seed, index, element).");
}

}  // namespace rsfast::bind
