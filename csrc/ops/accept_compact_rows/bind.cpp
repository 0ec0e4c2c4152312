// rsfast._C.accept_compact_rows_decide / _gather / _scratch_bytes.
#include <vector>

#include "ops/accept_compact_rows/api.h"
#include "rsfast/bind.h"

namespace rsfast::bind {
namespace {

void decide(int dtype, int64_t m, uintptr_t log_ratio, double log_M, uintptr_t log_M_ptr, uint64_t seed,
            uint32_t offset, uintptr_t count, uintptr_t scratch, int device, uintptr_t stream) {
  check_float_dtype(dtype, "accept_compact_rows_decide");
  const CompactRowsArgs args{dtype, m, cptr(log_ratio), log_M, cptr(log_M_ptr), seed, offset, at<int64_t>(count),
                             mptr(scratch)};
  RSFAST_RUN(rsfast, accept_compact_rows_decide, args, device, stream);
}

void gather(int64_t m, const std::vector<uintptr_t>& src, const std::vector<uintptr_t>& dst,
            const std::vector<int64_t>& row_bytes, int64_t capacity, bool zero_tail, uintptr_t scratch, int device,
            uintptr_t stream) {
  if (src.size() != dst.size() || src.size() != row_bytes.size())
    throw std::invalid_argument("rsfast._C.accept_compact_rows_gather: src, dst, row_bytes differ in length");
  std::vector<const void*> s(src.size());
  std::vector<void*> d(dst.size());
  for (size_t i = 0; i < src.size(); ++i) {
    s[i] = cptr(src[i]);
    d[i] = mptr(dst[i]);
  }
  const GatherRowsArgs args{m, (int)s.size(), s.data(), d.data(), row_bytes.data(), capacity, zero_tail ? 1 : 0,
                            mptr(scratch)};
  RSFAST_RUN(rsfast, accept_compact_rows_gather, args, device, stream);
}

// Both ISA builds lay the scratch out alike: the baseline's size serves.
int64_t scratch_bytes(int64_t m, int device) {
  return query(&cpu::base::accept_compact_rows_scratch_bytes, RSFAST_CUDA(rsfast, accept_compact_rows_scratch_bytes),
               device, m);
}

}  // namespace

RSFAST_BIND(accept_compact_rows) {
  m.def("accept_compact_rows_decide", &decide,
        "Decide every row (log u < log_ratio - log M) into the scratch; count[0] = accepted rows.");
  m.def("accept_compact_rows_gather", &gather,
        "Copy the accepted rows of every tensor, in row order, from a decided scratch.");
  m.def("accept_compact_rows_scratch_bytes", &scratch_bytes);
}

}  // namespace rsfast::bind
