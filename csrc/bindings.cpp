// rsfast._C: the only file that knows about Python. Everything crosses as
// integers: data pointers, sizes, dtype codes, (seed, offset), a device index
// (-1 for the CPU) and a cudaStream_t. Memory is owned by torch on the Python
// side; the drivers only fill it.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <array>
#include <initializer_list>
#include <stdexcept>
#include <utility>
#include <vector>

#include "rsfast/drivers.h"
#include "ops/tokens/core.h"
#include "ops/fused_sample/core.h"
#include "ops/perturb/core.h"
#include "rsfast/philox.h"
#include "ops/slot_sample/laws.h"
#include "ops/select/core.h"

#ifndef RSFAST_VERSION
#define RSFAST_VERSION "dev"
#endif

namespace py = pybind11;
using namespace rsfast;


namespace {

const void* cptr(uintptr_t p) { return reinterpret_cast<const void*>(p); }
void* mptr(uintptr_t p) { return reinterpret_cast<void*>(p); }

void check_dtype(int dtype) {
  if (dtype != kFloat32 && dtype != kFloat64) throw std::invalid_argument("rsfast._C: dtype code must be 0 or 1");
}

void propose(int kind, int dtype, int64_t dim, int64_t ncomp, int64_t m, uint64_t seed, uint32_t offset,
             uintptr_t a, uintptr_t b, uintptr_t c, uintptr_t cdf, uintptr_t x, uintptr_t log_q, int device,
             uintptr_t stream) {
  check_dtype(dtype);
  if (kind < kNormal || kind > kMixtureNormal) throw std::invalid_argument("rsfast._C.propose: unknown kind");
  const ProposeArgs args{kind, dtype, dim, ncomp, m, seed, offset, cptr(a), cptr(b), cptr(c), cptr(cdf),
                         mptr(x), mptr(log_q)};
  py::gil_scoped_release nogil;
  if (device < 0)
    cpu::propose(args);
  else
    cuda::propose(args, device, mptr(stream));
}

void accept_compact(int dtype, int64_t m, int64_t row_bytes, int64_t capacity, uintptr_t x, uintptr_t log_p,
                    uintptr_t log_q, double log_M, uint64_t seed, uint32_t offset, uintptr_t out, uintptr_t counts,
                    uintptr_t max_log_ratio, uintptr_t scratch, int device, uintptr_t stream) {
  check_dtype(dtype);
  const AcceptArgs args{dtype,  m,    row_bytes, capacity, cptr(x), cptr(log_p), cptr(log_q),
                        log_M,  seed, offset,    mptr(out), static_cast<int64_t*>(mptr(counts)),
                        static_cast<double*>(mptr(max_log_ratio)), mptr(scratch)};
  py::gil_scoped_release nogil;
  if (device < 0)
    cpu::accept_compact(args);
  else
    cuda::accept_compact(args, device, mptr(stream));
}

int64_t accept_compact_scratch_bytes(int64_t m, int device) {
  return device < 0 ? cpu::accept_compact_scratch_bytes(m) : cuda::accept_compact_scratch_bytes(m);
}

std::array<uint32_t, 4> philox(std::array<uint32_t, 4> ctr, std::array<uint32_t, 2> key) {
  const U32x4 r = philox4x32_10(ctr[0], ctr[1], ctr[2], ctr[3], key[0], key[1]);
  return {r.v[0], r.v[1], r.v[2], r.v[3]};
}

py::dict build_info() {
  py::dict d;
  d["version"] = RSFAST_VERSION;
  d["cuda_compiled"] = cuda::compiled();
  d["cuda_archs"] = cuda::archs();
  d["openmp"] = cpu::openmp();
  d["openmp_threads"] = cpu::max_threads();
  d["cpu_isa"] = cpu::isa();
  return d;
}

py::tuple cuda_device_count() {
  std::string why;
  const int n = cuda::device_count(why);
  return py::make_tuple(n, why);
}

// perturb: one PerturbTensor per (pointer, numel, dtype code, list index); all on one device.
void perturb(const std::vector<uintptr_t>& ptrs, const std::vector<int64_t>& numels, const std::vector<int>& dtypes,
             const std::vector<uint32_t>& indices, uint64_t seed, double scale, int device, uintptr_t stream) {
  const size_t n = ptrs.size();
  if (numels.size() != n || dtypes.size() != n || indices.size() != n)
    throw std::invalid_argument("rsfast._C.perturb: ptrs, numels, dtypes and indices must have one length");
  std::vector<PerturbTensor> tensors(n);
  for (size_t c = 0; c < n; ++c) {
    if (dtypes[c] < 0 || dtypes[c] > 3) throw std::invalid_argument("rsfast._C.perturb: dtype code must be 0..3");
    if (numels[c] < 0) throw std::invalid_argument("rsfast._C.perturb: numel must be >= 0");
    tensors[c] = PerturbTensor{mptr(ptrs[c]), numels[c], dtypes[c], indices[c]};
  }
  const PerturbArgs args{tensors.data(), (int64_t)n, seed, scale};
  py::gil_scoped_release nogil;
  if (device < 0)
    cpu::perturb(args);
  else
    cuda::perturb(args, device, mptr(stream));
}


// ---- accept_compact_rows

void accept_compact_rows_decide(int dtype, int64_t m, uintptr_t log_ratio, double log_M, uintptr_t log_M_ptr,
                                uint64_t seed, uint32_t offset, uintptr_t count, uintptr_t scratch, int device,
                                uintptr_t stream) {
  check_dtype(dtype);
  const CompactRowsArgs args{dtype, m, cptr(log_ratio), log_M, cptr(log_M_ptr), seed, offset,
                             static_cast<int64_t*>(mptr(count)), mptr(scratch)};
  py::gil_scoped_release nogil;
  if (device < 0)
    cpu::accept_compact_rows_decide(args);
  else
    cuda::accept_compact_rows_decide(args, device, mptr(stream));
}

void accept_compact_rows_gather(int64_t m, const std::vector<uintptr_t>& src, const std::vector<uintptr_t>& dst,
                                const std::vector<int64_t>& row_bytes, int64_t capacity, bool zero_tail,
                                uintptr_t scratch, int device, uintptr_t stream) {
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
  py::gil_scoped_release nogil;
  if (device < 0)
    cpu::accept_compact_rows_gather(args);
  else
    cuda::accept_compact_rows_gather(args, device, mptr(stream));
}

int64_t accept_compact_rows_scratch_bytes(int64_t m, int device) {
  return device < 0 ? cpu::accept_compact_rows_scratch_bytes(m) : cuda::accept_compact_rows_scratch_bytes(m);
}

void fused_sample(int kind, int dtype, int64_t dim, int64_t ncomp_q, int64_t ncomp_p, int64_t n, uint64_t seed,
                  uint32_t offset, double log_M, int64_t max_proposals, uintptr_t q_a, uintptr_t q_b, uintptr_t q_c,
                  uintptr_t q_cdf, uintptr_t q_inv_scale, uintptr_t p_loc, uintptr_t p_inv_scale, uintptr_t p_c,
                  uintptr_t out, uintptr_t counts, uintptr_t max_log_ratio, int device, uintptr_t stream) {
  check_dtype(dtype);
  if (kind < kNormal || kind > kMixtureNormal) throw std::invalid_argument("rsfast._C.fused_sample: unknown kind");
  if (dim < 1 || ncomp_q < 1 || ncomp_p < 1)
    throw std::invalid_argument("rsfast._C.fused_sample: dim and component counts must be >= 1");
  const FusedArgs args{kind, dtype, dim, ncomp_q, ncomp_p, n, seed, offset, log_M, max_proposals,
                       cptr(q_a), cptr(q_b), cptr(q_c), cptr(q_cdf), cptr(q_inv_scale),
                       cptr(p_loc), cptr(p_inv_scale), cptr(p_c), mptr(out),
                       static_cast<int64_t*>(mptr(counts)), static_cast<double*>(mptr(max_log_ratio))};
  py::gil_scoped_release nogil;
  if (device < 0)
    cpu::fused_sample(args);
  else
    cuda::fused_sample(args, device, mptr(stream));
}

void slot_sample(int law, int dtype, int64_t n, int64_t batch, std::vector<uintptr_t> params, uint64_t seed,
                 uint32_t offset, uintptr_t out, uintptr_t exhausted, uintptr_t invalid, int device,
                 uintptr_t stream) {
  check_dtype(dtype);
  const int k = slot_law_params(law);
  if (k == 0) throw std::invalid_argument("rsfast._C.slot_sample: unknown law code");
  if ((int)params.size() != k) throw std::invalid_argument("rsfast._C.slot_sample: wrong number of parameters");
  if (batch < 1 || n < 0 || (n > 0 && n % batch != 0))
    throw std::invalid_argument("rsfast._C.slot_sample: n must be a multiple of batch >= 1");
  SlotArgs args{law, dtype, n, batch, {nullptr, nullptr, nullptr, nullptr}, seed, offset, mptr(out),
                static_cast<int64_t*>(mptr(exhausted)), static_cast<int64_t*>(mptr(invalid))};
  for (int i = 0; i < k; ++i) args.params[i] = cptr(params[i]);
  py::gil_scoped_release nogil;
  if (device < 0)
    cpu::slot_sample(args);
  else
    cuda::slot_sample(args, device, mptr(stream));
}

// ---- group selection (rsfast.select) ----

// Op codes of select_groups, shared with rsfast/_native.py (SELECT_OPS).
enum SelectOp : int {
  kBestOfN = 0,
  kRso = 1,
  kThresholdCount = 2,
  kThresholdWrite = 3,
  kTopFraction = 4,
  kFilterGroups = 5
};

void select_groups(int op, int dtype, int64_t groups, int64_t n, uintptr_t offsets, uintptr_t values, int64_t k,
                   double beta, uint64_t seed, uint32_t offset, double min_reward, int64_t max_per_group,
                   int64_t count, uintptr_t out, uintptr_t counts, uintptr_t keep, uintptr_t scratch, int device,
                   uintptr_t stream) {
  if (op == kFilterGroups ? (dtype < kFloat32 || dtype > kSelectInt64) : (dtype != kFloat32 && dtype != kFloat64))
    throw std::invalid_argument("rsfast._C.select_groups: bad dtype code");
  if (groups < 0 || n < 0 || k < 0) throw std::invalid_argument("rsfast._C.select_groups: negative size");
  const SelectArgs a{dtype, groups, n, static_cast<const int64_t*>(cptr(offsets)), cptr(values), k, beta, seed,
                     offset, min_reward, max_per_group, count, static_cast<int64_t*>(mptr(out)),
                     static_cast<int64_t*>(mptr(counts)), static_cast<uint8_t*>(mptr(keep)), mptr(scratch)};
  py::gil_scoped_release nogil;
  const bool cpu_side = device < 0;
  switch (op) {
    case kBestOfN: cpu_side ? cpu::select_best_of_n(a) : cuda::select_best_of_n(a, device, mptr(stream)); break;
    case kRso: cpu_side ? cpu::select_rso(a) : cuda::select_rso(a, device, mptr(stream)); break;
    case kThresholdCount:
      cpu_side ? cpu::select_threshold_count(a) : cuda::select_threshold_count(a, device, mptr(stream));
      break;
    case kThresholdWrite:
      cpu_side ? cpu::select_threshold_write(a) : cuda::select_threshold_write(a, device, mptr(stream));
      break;
    case kTopFraction:
      cpu_side ? cpu::select_top_fraction(a) : cuda::select_top_fraction(a, device, mptr(stream));
      break;
    case kFilterGroups:
      cpu_side ? cpu::select_filter_groups(a) : cuda::select_filter_groups(a, device, mptr(stream));
      break;
    default: throw std::invalid_argument("rsfast._C.select_groups: unknown op");
  }
}

void select_dedupe(int64_t m, uintptr_t keys, uintptr_t groups, uintptr_t keep, uintptr_t table, int64_t table_size,
                   int device, uintptr_t stream) {
  if (m > 0 && (table_size < 2 * m || (table_size & (table_size - 1)) != 0))
    throw std::invalid_argument("rsfast._C.select_dedupe: table_size must be a power of two >= 2 m");
  const DedupeArgs a{m, static_cast<const int64_t*>(cptr(keys)), static_cast<const int64_t*>(cptr(groups)),
                     static_cast<uint8_t*>(mptr(keep)), static_cast<uint64_t*>(mptr(table)), table_size};
  py::gil_scoped_release nogil;
  if (device < 0)
    cpu::select_dedupe(a);
  else
    cuda::select_dedupe(a, device, mptr(stream));
}

int64_t select_scratch_bytes(int op, int64_t m, int dtype, int device) {
  return device < 0 ? cpu::select_scratch_bytes(op, m, dtype) : cuda::select_scratch_bytes(op, m, dtype);
}

// Every code that crosses the boundary, by name: rsfast/_native.py reads its
// tables from here (rsfast._C.CODES), so the C++ enums are the only copy.
py::dict code_table(std::initializer_list<std::pair<const char*, int>> items) {
  py::dict d;
  for (const auto& [name, code] : items) d[name] = code;
  return d;
}

py::dict codes() {
  py::dict t;
  t["dtype"] = code_table({{"float32", kFloat32}, {"float64", kFloat64}});
  t["proposal_kind"] = code_table({{"normal", kNormal}, {"uniform", kUniform}, {"mixture_normal", kMixtureNormal}});
  t["count_slot"] = code_table({{"accepted", kAccepted}, {"nan", kNaN}, {"overweight", kOverweight}, {"posinf", kPosInf}});
  t["fused_slot"] = code_table({{"accepted", kFusedAccepted}, {"nan", kFusedNaN}, {"overweight", kFusedOverweight},
                                {"posinf", kFusedPosInf}, {"proposals", kFusedProposals}, {"stopped", kFusedStopped}});
  t["perturb_dtype"] = code_table({{"float32", kPerturbF32}, {"float64", kPerturbF64}, {"float16", kPerturbF16},
                                   {"bfloat16", kPerturbBF16}});
  t["slot_law"] = code_table({{"truncated_normal", kSlotTruncatedNormal}, {"von_mises", kSlotVonMises},
                              {"gamma", kSlotGamma}, {"beta", kSlotBeta}, {"poisson", kSlotPoisson},
                              {"binomial", kSlotBinomial}});
  t["select_op"] = code_table({{"best_of_n", kBestOfN}, {"rso", kRso}, {"threshold_count", kThresholdCount},
                               {"threshold_write", kThresholdWrite}, {"top_fraction", kTopFraction},
                               {"filter_groups", kFilterGroups}});
  t["select_dtype"] = code_table({{"float32", kFloat32}, {"float64", kFloat64}, {"int64", kSelectInt64}});
  t["select_scratch"] = code_table({{"rso", kScratchRso}, {"top_fraction", kScratchTopFraction},
                                    {"best_of_n", kScratchBestOfN}});
  return t;
}

}  // namespace

// ---- token sampling (rsfast.tokens) ----

namespace rsfast::tokens {
namespace {

template <typename T>
T* at(uintptr_t p) {
  return reinterpret_cast<T*>(p);
}

void check_codes(int xdtype, int input, int order) {
  if (xdtype < kXF32 || xdtype > kXF64) throw std::invalid_argument("rsfast._C.tokens: bad dtype code");
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
  py::gil_scoped_release nogil;
  if (device < 0)
    cpu::sample(a);
  else
    cuda::sample(a, device, at<void>(stream));
}

void verify(int xdtype, int qdtype, int input, int order, int mode, int64_t B, int64_t V, int64_t S, uintptr_t cu,
            int64_t N,
            uintptr_t draft, uintptr_t target, uintptr_t draft_probs, uintptr_t temperature, uintptr_t top_k,
            uintptr_t top_p, uintptr_t min_p, uintptr_t seeds, uintptr_t offsets, bool per_row_stream,
            uintptr_t ids, uintptr_t num_accepted, uintptr_t num_emitted, uintptr_t valid, int device,
            uintptr_t stream) {
  check_codes(xdtype, input, order);
  check_codes(qdtype, input, order);
  if (mode != kProbabilistic && mode != kGreedy) throw std::invalid_argument("rsfast._C.tokens_verify: bad mode");
  if (B < 0 || V < 1 || S < 0) throw std::invalid_argument("rsfast._C.tokens_verify: bad sizes");
  if (N < 0) throw std::invalid_argument("rsfast._C.tokens_verify: bad sizes");
  const VerifyArgs a{xdtype, qdtype, input, order, mode, B, V, S, at<const int64_t>(cu), N, at<const int64_t>(draft),
                     at<const void>(target), at<const void>(draft_probs),
                     params(temperature, top_k, top_p, min_p, seeds, offsets, per_row_stream), at<int64_t>(ids),
                     at<int64_t>(num_accepted), at<int64_t>(num_emitted), at<uint8_t>(valid)};
  py::gil_scoped_release nogil;
  if (device < 0)
    cpu::verify(a);
  else
    cuda::verify(a, device, at<void>(stream));
}

void filter(int xdtype, int input, int order, int mode, int64_t B, int64_t V, uintptr_t x, uintptr_t temperature,
            uintptr_t top_k, uintptr_t top_p, uintptr_t min_p, uintptr_t out, uintptr_t valid, int device,
            uintptr_t stream) {
  check_codes(xdtype, input, order);
  if (mode != kRenorm && mode != kMask) throw std::invalid_argument("rsfast._C.tokens_filter: bad mode");
  if (B < 0 || V < 1) throw std::invalid_argument("rsfast._C.tokens_filter: bad sizes");
  const FilterArgs a{xdtype, input, order, mode, B, V, at<const void>(x),
                     params(temperature, top_k, top_p, min_p, 0, 0, false), at<float>(out), at<uint8_t>(valid)};
  py::gil_scoped_release nogil;
  if (device < 0)
    cpu::filter(a);
  else
    cuda::filter(a, device, at<void>(stream));
}

}  // namespace

void bind(py::module& mod) {
  mod.def("tokens_sample", &sample, "Token sampling under temperature / top-k / top-p / min-p, one token per row.");
  mod.def("tokens_filter", &filter, "The filtered distribution of each row: probabilities or masked logits.");
  mod.def("tokens_verify", &verify, "Speculative-decoding verification of chain drafts.");
}

}  // namespace rsfast::tokens

PYBIND11_MODULE(_C, mod) {
  mod.doc() = "rsfast native kernels (torch-free; see rsfast/_native.py)";
  mod.def("propose", &propose, "Draw m rows of a built-in proposal and their log q.");
  mod.def("accept_compact", &accept_compact, "Accept rows with log u < log p - log q - log M and append them.");
  mod.def("accept_compact_scratch_bytes", &accept_compact_scratch_bytes);
  mod.def("philox4x32_10", &philox, "One Philox4x32-10 block: (counter[4], key[2]) -> 4 words.");
  mod.def("build_info", &build_info);
  mod.def("set_num_threads", &cpu::set_max_threads, "Threads of the CPU kernels (rsfast follows torch.get_num_threads()).");
  mod.def("cuda_device_count", &cuda_device_count);
  mod.def("perturb", &perturb,
          "Add scale * z in place to each tensor, z the Philox normals of (seed, index, element).");
  mod.def("accept_compact_rows_decide", &accept_compact_rows_decide,
          "Decide every row (log u < log_ratio - log M) into the scratch; count[0] = accepted rows.");
  mod.def("accept_compact_rows_gather", &accept_compact_rows_gather,
          "Copy the accepted rows of every tensor, in row order, from a decided scratch.");
  mod.def("accept_compact_rows_scratch_bytes", &accept_compact_rows_scratch_bytes);
  mod.def("fused_sample", &fused_sample,
          "n rows from a mixture-of-normals target by rejection from a built-in proposal, in one launch.");
  mod.def("slot_sample", &slot_sample, "Slot mode: every output element runs its law's rejection loop on its own stream.");
  mod.def("select_groups", &select_groups, "Group selection kernels (best_of_n, rso, threshold, top_fraction, filter_groups).");
  mod.def("select_dedupe", &select_dedupe, "Keep the first occurrence of each (group, key).");
  mod.def("select_scratch_bytes", &select_scratch_bytes);
  mod.attr("CODES") = codes();
  tokens::bind(mod);
}
