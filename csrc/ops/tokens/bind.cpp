// rsfast._C.tokens_sample / tokens_filter / tokens_verify.
#include "ops/tokens/api.h"
#include "rsfast/bind.h"

namespace rsfast::bind {
namespace {

using tokens::FilterArgs;
using tokens::RowParamArrays;
using tokens::SampleArgs;
using tokens::VerifyArgs;

void check_codes(int xdtype, int input, int order) {
  if (!is_any_float_dtype(xdtype)) throw std::invalid_argument("rsfast._C.tokens: bad dtype code");
  if (input != kLogits && input != kProbs) throw std::invalid_argument("rsfast._C.tokens: bad input code");
  if (order != kOrderHF && order != kOrderJoint) throw std::invalid_argument("rsfast._C.tokens: bad order code");
}

RowParamArrays params(uintptr_t temperature, uintptr_t top_k, uintptr_t top_p, uintptr_t min_p, uintptr_t seeds,
                      uintptr_t offsets, bool per_row_stream) {
  return RowParamArrays{at<const float>(temperature), at<const int64_t>(top_k), at<const double>(top_p),
                        at<const double>(min_p),      at<const int64_t>(seeds), at<const int64_t>(offsets),
                        per_row_stream ? 1 : 0};
}

void sample(int xdtype, int input, int order, int64_t B, int64_t V, uintptr_t x, uintptr_t temperature,
            uintptr_t top_k, uintptr_t top_p, uintptr_t min_p, uintptr_t seeds, uintptr_t offsets,
            bool per_row_stream, int64_t num_samples, uintptr_t ids, uintptr_t valid, uintptr_t logprobs,
            int device, uintptr_t stream) {
  check_codes(xdtype, input, order);
  if (B < 0 || V < 1 || num_samples < 1 || num_samples > (int64_t(1) << 32))
    throw std::invalid_argument("rsfast._C.tokens_sample: bad sizes");
  const SampleArgs a{xdtype, input, order, B, V, at<const void>(x),
                     params(temperature, top_k, top_p, min_p, seeds, offsets, per_row_stream), num_samples,
                     at<int64_t>(ids), at<uint8_t>(valid), at<float>(logprobs)};
  RSFAST_RUN(rsfast::tokens, sample, a, device, stream);
}

void verify(int xdtype, int qdtype, int input, int order, int mode, int64_t B, int64_t V, int64_t S, uintptr_t cu,
            int64_t N, uintptr_t draft, uintptr_t target, uintptr_t draft_probs, uintptr_t temperature,
            uintptr_t top_k, uintptr_t top_p, uintptr_t min_p, uintptr_t seeds, uintptr_t offsets,
            bool per_row_stream, uintptr_t ids, uintptr_t num_accepted, uintptr_t num_emitted, uintptr_t valid,
            int device, uintptr_t stream) {
  check_codes(xdtype, input, order);
  check_codes(qdtype, input, order);
  if (mode != kProbabilistic && mode != kGreedy) throw std::invalid_argument("rsfast._C.tokens_verify: bad mode");
  if (B < 0 || V < 1 || S < 0) throw std::invalid_argument("rsfast._C.tokens_verify: bad sizes");
  if (N < 0) throw std::invalid_argument("rsfast._C.tokens_verify: bad sizes");
  const VerifyArgs a{xdtype, qdtype, input, order, mode, B, V, S, at<const int64_t>(cu), N, at<const int64_t>(draft),
                     at<const void>(target), at<const void>(draft_probs),
                     params(temperature, top_k, top_p, min_p, seeds, offsets, per_row_stream), at<int64_t>(ids),
                     at<int64_t>(num_accepted), at<int64_t>(num_emitted), at<uint8_t>(valid)};
  RSFAST_RUN(rsfast::tokens, verify, a, device, stream);
}

void filter(int xdtype, int input, int order, int mode, int64_t B, int64_t V, uintptr_t x, uintptr_t temperature,
            uintptr_t top_k, uintptr_t top_p, uintptr_t min_p, uintptr_t out, uintptr_t valid, int device,
            uintptr_t stream) {
  check_codes(xdtype, input, order);
  if (mode != kRenorm && mode != kMask) throw std::invalid_argument("rsfast._C.tokens_filter: bad mode");
  if (B < 0 || V < 1) throw std::invalid_argument("rsfast._C.tokens_filter: bad sizes");
  const FilterArgs a{xdtype, input, order, mode, B, V, at<const void>(x),
                     params(temperature, top_k, top_p, min_p, 0, 0, false), at<float>(out), at<uint8_t>(valid)};
  RSFAST_RUN(rsfast::tokens, filter, a, device, stream);
}

}  // namespace

RSFAST_BIND(tokens) {
  m.def("tokens_sample", &sample, "Token sampling under temperature / top-k / top-p / min-p, one token per row.");
  m.def("tokens_filter", &filter, "The filtered distribution of each row: probabilities or masked logits.");
  m.def("tokens_verify", &verify, "Speculative-decoding verification of chain drafts.");
}

}  // namespace rsfast::bind
