// The CUDA entry points of a build without nvcc: they report that CUDA was
// not compiled, and rsfast/_native.py never routes CUDA tensors here.
#include <stdexcept>

#include "rsfast/drivers.h"

namespace rsfast::cuda {

bool compiled() { return false; }
std::string archs() { return ""; }
int device_count(std::string& why) {
  why = "rsfast was built without CUDA kernels (no nvcc at build time, or RSFAST_CUDA=OFF)";
  return 0;
}
[[noreturn]] static void missing() { throw std::runtime_error("rsfast was built without CUDA kernels"); }
void propose(const ProposeArgs&, int, void*) { missing(); }
void accept_compact(const AcceptArgs&, int, void*) { missing(); }
int64_t accept_compact_scratch_bytes(int64_t) { missing(); }
void slot_sample(const SlotArgs&, int, void*) { missing(); }

void perturb(const PerturbArgs&, int, void*) { missing(); }

// accept_compact_rows
void accept_compact_rows_decide(const CompactRowsArgs&, int, void*) { missing(); }
void accept_compact_rows_gather(const GatherRowsArgs&, int, void*) { missing(); }
int64_t accept_compact_rows_scratch_bytes(int64_t) { missing(); }

void fused_sample(const FusedArgs&, int, void*) { missing(); }

void select_best_of_n(const SelectArgs&, int, void*) { missing(); }
void select_rso(const SelectArgs&, int, void*) { missing(); }
void select_threshold_count(const SelectArgs&, int, void*) { missing(); }
void select_threshold_write(const SelectArgs&, int, void*) { missing(); }
void select_top_fraction(const SelectArgs&, int, void*) { missing(); }
void select_filter_groups(const SelectArgs&, int, void*) { missing(); }
void select_dedupe(const DedupeArgs&, int, void*) { missing(); }
int64_t select_scratch_bytes(int, int64_t, int) { missing(); }

}  // namespace rsfast::cuda

namespace rsfast::tokens::cuda {
void sample(const SampleArgs&, int, void*) { ::rsfast::cuda::missing(); }
void verify(const VerifyArgs&, int, void*) { ::rsfast::cuda::missing(); }
void filter(const FilterArgs&, int, void*) { ::rsfast::cuda::missing(); }
}  // namespace rsfast::tokens::cuda
