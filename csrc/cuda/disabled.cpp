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

}  // namespace rsfast::cuda
