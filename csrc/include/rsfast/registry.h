// Every code that crosses the boundary between Python and the native module, in one table per kind:
// X(enumerator, "python name"), codes 0, 1, 2, ... in the order written. The C++ enums below are
// generated from these lists, and csrc/bindings.cpp exports the same lists as rsfast._C.CODES
// (table name -> {python name: code}), which rsfast/_native.py and rsfast/ops read: no number is
// written twice. Adding a code is adding one X(...) here (a new table: one line in RSFAST_CODE_TABLES).
#pragma once

// Element types of every tensor a driver reads or writes.
#define RSFAST_DTYPE_CODES(X) \
  X(kFloat32, "float32")      \
  X(kFloat64, "float64")      \
  X(kFloat16, "float16")      \
  X(kBFloat16, "bfloat16")    \
  X(kInt64, "int64")

// Built-in proposals of propose / fused_sample (ProposalParams in ops/propose/core.h).
#define RSFAST_PROPOSAL_KIND_CODES(X) \
  X(kNormal, "normal")                \
  X(kUniform, "uniform")              \
  X(kMixtureNormal, "mixture_normal")

// Layout of the int64 statistics vector that accept_compact accumulates into.
#define RSFAST_COUNT_SLOT_CODES(X) \
  X(kAccepted, "accepted")   /* accepted rows over all calls (may exceed the output capacity) */ \
  X(kNaN, "nan")             /* rows whose log p was NaN (rejected) */                           \
  X(kOverweight, "overweight") /* rows with log p - log q > log M (the envelope is wrong there) */ \
  X(kPosInf, "posinf")       /* rows whose log p was +inf (the engine raises) */

// Layout of the int64 statistics vector of fused_sample (the first four slots mean what the
// count slots mean for accept_compact).
#define RSFAST_FUSED_SLOT_CODES(X)                                                 \
  X(kFusedAccepted, "accepted")     /* rows accepted (n unless a bound stopped the kernel) */ \
  X(kFusedNaN, "nan")               /* tries with a NaN log ratio (rejected) */              \
  X(kFusedOverweight, "overweight") /* tries with log p - log q > log M */                   \
  X(kFusedPosInf, "posinf")         /* tries with log p == +inf */                           \
  X(kFusedProposals, "proposals")   /* tries counted */                                       \
  X(kFusedStopped, "stopped")       /* 1 when a bound stopped the kernel (results unusable) */

// Laws of slot_sample (their cores in ops/slot_sample/laws/<law>.h, dispatched in laws.h).
#define RSFAST_SLOT_LAW_CODES(X)             \
  X(kSlotTruncatedNormal, "truncated_normal") \
  X(kSlotVonMises, "von_mises")               \
  X(kSlotGamma, "gamma")                      \
  X(kSlotBeta, "beta")                        \
  X(kSlotPoisson, "poisson")                  \
  X(kSlotBinomial, "binomial")

// Kernels behind _C.select_groups.
#define RSFAST_SELECT_OP_CODES(X)          \
  X(kBestOfN, "best_of_n")                 \
  X(kRso, "rso")                           \
  X(kThresholdCount, "threshold_count")    \
  X(kThresholdWrite, "threshold_write")    \
  X(kTopFraction, "top_fraction")          \
  X(kFilterGroups, "filter_groups")

// Scratch kinds of _C.select_scratch_bytes.
#define RSFAST_SELECT_SCRATCH_CODES(X) \
  X(kScratchRso, "rso")                \
  X(kScratchTopFraction, "top_fraction") \
  X(kScratchBestOfN, "best_of_n")

// Token ops: what the rows hold.
#define RSFAST_TOKENS_INPUT_CODES(X) \
  X(kLogits, "logits")               \
  X(kProbs, "probs")

// Token ops: filter order, Hugging Face's (top-p on the top-k survivors) or joint (all on the full row).
#define RSFAST_TOKENS_ORDER_CODES(X) \
  X(kOrderHF, "hf")                  \
  X(kOrderJoint, "joint")

// tokens_verify: acceptance rule.
#define RSFAST_VERIFY_MODE_CODES(X)    \
  X(kProbabilistic, "probabilistic")   \
  X(kGreedy, "greedy")

// tokens_filter: probabilities (renorm) or the kept values with -inf elsewhere (mask).
#define RSFAST_FILTER_MODE_CODES(X) \
  X(kRenorm, "renorm")              \
  X(kMask, "mask")

// The tables: T("name in rsfast._C.CODES", C++ enum, list).
#define RSFAST_CODE_TABLES(T)                                       \
  T("dtype", DType, RSFAST_DTYPE_CODES)                             \
  T("proposal_kind", ProposalKind, RSFAST_PROPOSAL_KIND_CODES)      \
  T("count_slot", CountSlot, RSFAST_COUNT_SLOT_CODES)               \
  T("fused_slot", FusedSlot, RSFAST_FUSED_SLOT_CODES)               \
  T("slot_law", SlotLaw, RSFAST_SLOT_LAW_CODES)                     \
  T("select_op", SelectOp, RSFAST_SELECT_OP_CODES)                  \
  T("select_scratch", SelectScratch, RSFAST_SELECT_SCRATCH_CODES)   \
  T("tokens_input", TokensInput, RSFAST_TOKENS_INPUT_CODES)         \
  T("tokens_order", TokensOrder, RSFAST_TOKENS_ORDER_CODES)         \
  T("verify_mode", VerifyMode, RSFAST_VERIFY_MODE_CODES)            \
  T("filter_mode", FilterMode, RSFAST_FILTER_MODE_CODES)

namespace rsfast {

#define RSFAST_CODE_ENUMERATOR(id, name) id,
#define RSFAST_CODE_PLUS_ONE(id, name) +1
#define RSFAST_CODE_ENUM(table, Type, LIST) enum Type : int { LIST(RSFAST_CODE_ENUMERATOR) };
RSFAST_CODE_TABLES(RSFAST_CODE_ENUM)
#undef RSFAST_CODE_ENUM

// Sizes of the statistics vectors.
constexpr int kNumCounts = 0 RSFAST_COUNT_SLOT_CODES(RSFAST_CODE_PLUS_ONE);
constexpr int kFusedNumCounts = 0 RSFAST_FUSED_SLOT_CODES(RSFAST_CODE_PLUS_ONE);

// Floating dtypes of the float32/float64 ops.
constexpr bool is_float_dtype(int dtype) { return dtype == kFloat32 || dtype == kFloat64; }
// Floating dtypes of perturb and the token ops (half types included).
constexpr bool is_any_float_dtype(int dtype) { return dtype >= kFloat32 && dtype <= kBFloat16; }

}  // namespace rsfast
