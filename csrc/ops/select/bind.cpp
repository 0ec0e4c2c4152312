// rsfast._C.select_groups (one entry, op code SelectOp), select_dedupe, select_scratch_bytes.
#include "ops/select/api.h"
#include "rsfast/bind.h"

namespace rsfast::bind {
namespace {

void select_groups(int op, int dtype, int64_t groups, int64_t n, uintptr_t offsets, uintptr_t values, int64_t k,
                   double beta, uint64_t seed, uint32_t offset, double min_reward, int64_t max_per_group,
                   int64_t count, uintptr_t out, uintptr_t counts, uintptr_t keep, uintptr_t scratch, int device,
                   uintptr_t stream) {
  if (!(is_float_dtype(dtype) || (op == kFilterGroups && dtype == kInt64)))
    throw std::invalid_argument("rsfast._C.select_groups: bad dtype code");
  if (groups < 0 || n < 0 || k < 0) throw std::invalid_argument("rsfast._C.select_groups: negative size");
  const SelectArgs a{dtype, groups, n, at<const int64_t>(offsets), cptr(values), k, beta, seed,
                     offset, min_reward, max_per_group, count, at<int64_t>(out),
                     at<int64_t>(counts), at<uint8_t>(keep), mptr(scratch)};
  switch (op) {
    case kBestOfN: return RSFAST_RUN(rsfast, select_best_of_n, a, device, stream);
    case kRso: return RSFAST_RUN(rsfast, select_rso, a, device, stream);
    case kThresholdCount: return RSFAST_RUN(rsfast, select_threshold_count, a, device, stream);
    case kThresholdWrite: return RSFAST_RUN(rsfast, select_threshold_write, a, device, stream);
    case kTopFraction: return RSFAST_RUN(rsfast, select_top_fraction, a, device, stream);
    case kFilterGroups: return RSFAST_RUN(rsfast, select_filter_groups, a, device, stream);
    default: throw std::invalid_argument("rsfast._C.select_groups: unknown op");
  }
}

void select_dedupe(int64_t m, uintptr_t keys, uintptr_t groups, uintptr_t keep, uintptr_t table, int64_t table_size,
                   int device, uintptr_t stream) {
  if (m > 0 && (table_size < 2 * m || (table_size & (table_size - 1)) != 0))
    throw std::invalid_argument("rsfast._C.select_dedupe: table_size must be a power of two >= 2 m");
  const DedupeArgs a{m, at<const int64_t>(keys), at<const int64_t>(groups), at<uint8_t>(keep), at<uint64_t>(table),
                     table_size};
  RSFAST_RUN(rsfast, select_dedupe, a, device, stream);
}

// CPU scratch: top_fraction, two arrays of order keys; best_of_n (k > 32), an index per value. Per-thread
// buffers of one group (rso) and per-chunk counts are kept by the drivers themselves.
int64_t cpu_scratch_bytes(int op, int64_t m, int) {
  if (op == kScratchTopFraction) return 64 + 2 * m * 8;  // room for 64-bit keys (float64)
  if (op == kScratchBestOfN) return 64 + 8 * m;
  return 1;
}

int64_t select_scratch_bytes(int op, int64_t m, int dtype, int device) {
  return query(&cpu_scratch_bytes, RSFAST_CUDA(rsfast, select_scratch_bytes), device, op, m, dtype);
}

}  // namespace

RSFAST_BIND(select) {
  m.def("select_groups", &select_groups,
        "Group selection kernels (best_of_n, rso, threshold, top_fraction, filter_groups).");
  m.def("select_dedupe", &select_dedupe, "Keep the first occurrence of each (group, key).");
  m.def("select_scratch_bytes", &select_scratch_bytes);
}

}  // namespace rsfast::bind
