// rsfast._C.accept_compact and its scratch size.
#include "ops/accept_compact/api.h"
#include "rsfast/bind.h"

namespace rsfast::bind {
namespace {

void accept_compact(int dtype, int64_t m, int64_t row_bytes, int64_t capacity, uintptr_t x, uintptr_t log_p,
                    uintptr_t log_q, double log_M, uint64_t seed, uint32_t offset, uintptr_t out, uintptr_t counts,
                    uintptr_t max_log_ratio, uintptr_t scratch, int device, uintptr_t stream) {
  check_float_dtype(dtype, "accept_compact");
  const AcceptArgs args{dtype,  m,    row_bytes, capacity, cptr(x), cptr(log_p), cptr(log_q),
                        log_M,  seed, offset,    mptr(out), at<int64_t>(counts), at<double>(max_log_ratio),
                        mptr(scratch)};
  RSFAST_RUN(rsfast, accept_compact, args, device, stream);
}

// The CPU driver keeps one flag byte per row.
int64_t cpu_scratch_bytes(int64_t m) { return m > 0 ? m : 1; }

int64_t scratch_bytes(int64_t m, int device) {
  return query(&cpu_scratch_bytes, RSFAST_CUDA(rsfast, accept_compact_scratch_bytes), device, m);
}

}  // namespace

RSFAST_BIND(accept_compact) {
  m.def("accept_compact", &accept_compact, "Accept rows with log u < log p - log q - log M and append them.");
  m.def("accept_compact_scratch_bytes", &scratch_bytes);
}

}  // namespace rsfast::bind
