// rsfast._C.propose: pointers and codes in, the ISA-picked CPU driver or the CUDA driver.
#include "ops/propose/api.h"
#include "rsfast/bind.h"

namespace rsfast::bind {
namespace {

void propose(int kind, int dtype, int64_t dim, int64_t ncomp, int64_t m, uint64_t seed, uint32_t offset,
             uintptr_t a, uintptr_t b, uintptr_t c, uintptr_t cdf, uintptr_t x, uintptr_t log_q, int device,
             uintptr_t stream) {
  check_float_dtype(dtype, "propose");
  if (kind < kNormal || kind > kMixtureNormal) throw std::invalid_argument("rsfast._C.propose: unknown kind");
  const ProposeArgs args{kind, dtype, dim, ncomp, m, seed, offset, cptr(a), cptr(b), cptr(c), cptr(cdf),
                         mptr(x), mptr(log_q)};
  RSFAST_RUN(rsfast, propose, args, device, stream);
}

}  // namespace

RSFAST_BIND(propose) { m.def("propose", &propose, "Draw m rows of a built-in proposal and their log q."); }

}  // namespace rsfast::bind
