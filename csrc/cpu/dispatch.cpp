// Entry points of the CPU drivers: pick the AVX2 build of the kernels when the
// CPU has AVX2 (x86-64 builds only), else the baseline build. Both builds give
// the same bits (no FMA contraction, the same arithmetic in the same order).
#include <cstdlib>
#include <cstring>
#include <string>

#include "parallel.h"
#include "rsfast/drivers.h"

namespace rsfast::cpu {

namespace base {
void propose(const ProposeArgs& args);
void accept_compact(const AcceptArgs& args);
}  // namespace base

#ifdef RSFAST_CPU_AVX2
namespace avx2 {
void propose(const ProposeArgs& args);
void accept_compact(const AcceptArgs& args);
}  // namespace avx2

// RSFAST_CPU_ISA=baseline in the environment forces the baseline build (tests
// compare the two builds bit for bit).
static bool has_avx2() {
  static const bool yes = [] {
    const char* forced = std::getenv("RSFAST_CPU_ISA");
    return __builtin_cpu_supports("avx2") && !(forced && std::strcmp(forced, "baseline") == 0);
  }();
  return yes;
}
#else
static bool has_avx2() { return false; }
#endif

void propose(const ProposeArgs& args) {
#ifdef RSFAST_CPU_AVX2
  if (has_avx2()) return avx2::propose(args);
#endif
  base::propose(args);
}

void accept_compact(const AcceptArgs& args) {
#ifdef RSFAST_CPU_AVX2
  if (has_avx2()) return avx2::accept_compact(args);
#endif
  base::accept_compact(args);
}

// One flag byte per row.
int64_t accept_compact_scratch_bytes(int64_t m) { return m > 0 ? m : 1; }

std::string isa() { return has_avx2() ? "avx2" : "baseline"; }

int max_threads() {
#ifdef _OPENMP
  return omp_get_max_threads();
#else
  return 1;
#endif
}

void set_max_threads(int n) {
#ifdef _OPENMP
  if (n > 0) omp_set_num_threads(n);
#else
  (void)n;
#endif
}

bool openmp() {
#ifdef _OPENMP
  return true;
#else
  return false;
#endif
}

// ---- perturb ----
namespace base {
void perturb(const PerturbArgs& args);
}  // namespace base
#ifdef RSFAST_CPU_AVX2
namespace avx2 {
void perturb(const PerturbArgs& args);
}  // namespace avx2
#endif

void perturb(const PerturbArgs& args) {
#ifdef RSFAST_CPU_AVX2
  if (has_avx2()) return avx2::perturb(args);
#endif
  base::perturb(args);
}

// ---- accept_compact_rows
namespace base {
void accept_compact_rows_decide(const CompactRowsArgs& args);
void accept_compact_rows_gather(const GatherRowsArgs& args);
int64_t accept_compact_rows_scratch_bytes(int64_t m);
}  // namespace base
#ifdef RSFAST_CPU_AVX2
namespace avx2 {
void accept_compact_rows_decide(const CompactRowsArgs& args);
void accept_compact_rows_gather(const GatherRowsArgs& args);
}  // namespace avx2
#endif

void accept_compact_rows_decide(const CompactRowsArgs& args) {
#ifdef RSFAST_CPU_AVX2
  if (has_avx2()) return avx2::accept_compact_rows_decide(args);
#endif
  base::accept_compact_rows_decide(args);
}

void accept_compact_rows_gather(const GatherRowsArgs& args) {
#ifdef RSFAST_CPU_AVX2
  if (has_avx2()) return avx2::accept_compact_rows_gather(args);
#endif
  base::accept_compact_rows_gather(args);
}

int64_t accept_compact_rows_scratch_bytes(int64_t m) { return base::accept_compact_rows_scratch_bytes(m); }

// ---- fused_sample ----
namespace base {
void fused_sample(const FusedArgs& args);
}  // namespace base
#ifdef RSFAST_CPU_AVX2
namespace avx2 {
void fused_sample(const FusedArgs& args);
}  // namespace avx2
#endif

void fused_sample(const FusedArgs& args) {
#ifdef RSFAST_CPU_AVX2
  if (has_avx2()) return avx2::fused_sample(args);
#endif
  base::fused_sample(args);
}

// ---- slot mode ----
namespace base {
void slot_sample(const SlotArgs& args);
}  // namespace base
#ifdef RSFAST_CPU_AVX2
namespace avx2 {
void slot_sample(const SlotArgs& args);
}  // namespace avx2
#endif

void slot_sample(const SlotArgs& args) {
#ifdef RSFAST_CPU_AVX2
  if (has_avx2()) return avx2::slot_sample(args);
#endif
  base::slot_sample(args);
}

// ---- group selection (select.cpp) ----

#define RSFAST_SELECT_DECLS                          \
  void select_best_of_n(const SelectArgs& args);      \
  void select_rso(const SelectArgs& args);            \
  void select_threshold_count(const SelectArgs& args); \
  void select_threshold_write(const SelectArgs& args); \
  void select_top_fraction(const SelectArgs& args);   \
  void select_filter_groups(const SelectArgs& args);  \
  void select_dedupe(const DedupeArgs& args);

namespace base {
RSFAST_SELECT_DECLS
}  // namespace base
#ifdef RSFAST_CPU_AVX2
namespace avx2 {
RSFAST_SELECT_DECLS
}  // namespace avx2
#endif
#undef RSFAST_SELECT_DECLS

#ifdef RSFAST_CPU_AVX2
#define RSFAST_SELECT_DISPATCH(name, Args)            \
  void name(const Args& args) {                       \
    if (has_avx2()) return avx2::name(args);          \
    base::name(args);                                 \
  }
#else
#define RSFAST_SELECT_DISPATCH(name, Args) \
  void name(const Args& args) { base::name(args); }
#endif
RSFAST_SELECT_DISPATCH(select_best_of_n, SelectArgs)
RSFAST_SELECT_DISPATCH(select_rso, SelectArgs)
RSFAST_SELECT_DISPATCH(select_threshold_count, SelectArgs)
RSFAST_SELECT_DISPATCH(select_threshold_write, SelectArgs)
RSFAST_SELECT_DISPATCH(select_top_fraction, SelectArgs)
RSFAST_SELECT_DISPATCH(select_filter_groups, SelectArgs)
RSFAST_SELECT_DISPATCH(select_dedupe, DedupeArgs)
#undef RSFAST_SELECT_DISPATCH

// top_fraction: two arrays of order keys; best_of_n (k > 32): an index per
// value. Per-thread buffers of one group (rso) and per-chunk counts are kept
// by the drivers themselves.
int64_t select_scratch_bytes(int op, int64_t m, int) {
  if (op == kScratchTopFraction) return 64 + 2 * m * 8;  // room for 64-bit keys (float64)
  if (op == kScratchBestOfN) return 64 + 8 * m;
  return 1;
}

}  // namespace rsfast::cpu
