// rsfast._C.fused_sample.
#include "ops/fused_sample/api.h"
#include "rsfast/bind.h"

namespace rsfast::bind {
namespace {

void fused_sample(int kind, int dtype, int64_t dim, int64_t ncomp_q, int64_t ncomp_p, int64_t n, uint64_t seed,
                  uint32_t offset, double log_M, int64_t max_proposals, uintptr_t q_a, uintptr_t q_b, uintptr_t q_c,
                  uintptr_t q_cdf, uintptr_t q_inv_scale, uintptr_t p_loc, uintptr_t p_inv_scale, uintptr_t p_c,
                  uintptr_t out, uintptr_t counts, uintptr_t max_log_ratio, int device, uintptr_t stream) {
  check_float_dtype(dtype, "fused_sample");
  if (kind < kNormal || kind > kMixtureNormal) throw std::invalid_argument("rsfast._C.fused_sample: unknown kind");
  if (dim < 1 || ncomp_q < 1 || ncomp_p < 1)
    throw std::invalid_argument("rsfast._C.fused_sample: dim and component counts must be >= 1");
  const FusedArgs args{kind, dtype, dim, ncomp_q, ncomp_p, n, seed, offset, log_M, max_proposals,
                       cptr(q_a), cptr(q_b), cptr(q_c), cptr(q_cdf), cptr(q_inv_scale),
                       cptr(p_loc), cptr(p_inv_scale), cptr(p_c), mptr(out),
                       at<int64_t>(counts), at<double>(max_log_ratio)};
  RSFAST_RUN(rsfast, fused_sample, args, device, stream);
}

}  // namespace

RSFAST_BIND(fused_sample) {
  m.def("fused_sample", &fused_sample,
        "n rows from a mixture-of-normals target by rejection from a built-in proposal, in one launch.");
}

}  // namespace rsfast::bind
