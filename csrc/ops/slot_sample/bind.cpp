// rsfast._C.slot_sample.
#include <vector>

#include "ops/slot_sample/api.h"
#include "ops/slot_sample/laws.h"
#include "rsfast/bind.h"

namespace rsfast::bind {
namespace {

void slot_sample(int law, int dtype, int64_t n, int64_t batch, std::vector<uintptr_t> params, uint64_t seed,
                 uint32_t offset, uintptr_t out, uintptr_t exhausted, uintptr_t invalid, int device,
                 uintptr_t stream) {
  check_float_dtype(dtype, "slot_sample");
  const int k = slot_law_params(law);
  if (k == 0) throw std::invalid_argument("rsfast._C.slot_sample: unknown law code");
  if ((int)params.size() != k) throw std::invalid_argument("rsfast._C.slot_sample: wrong number of parameters");
  if (batch < 1 || n < 0 || (n > 0 && n % batch != 0))
    throw std::invalid_argument("rsfast._C.slot_sample: n must be a multiple of batch >= 1");
  SlotArgs args{law, dtype, n, batch, {nullptr, nullptr, nullptr, nullptr}, seed, offset, mptr(out),
                at<int64_t>(exhausted), at<int64_t>(invalid)};
  for (int i = 0; i < k; ++i) args.params[i] = cptr(params[i]);
  RSFAST_RUN(rsfast, slot_sample, args, device, stream);
}

}  // namespace

RSFAST_BIND(slot_sample) {
  m.def("slot_sample", &slot_sample,
        "Slot mode: every output element runs its law's rejection loop on its own stream.");
}

}  // namespace rsfast::bind
