// The CUDA runtime of a build without nvcc: it reports that CUDA was not compiled. No op needs a stub
// here: bind.h never references an op's CUDA driver when RSFAST_WITH_CUDA is off, and
// rsfast/_native.py never routes CUDA tensors to such a build.
#include "rsfast/drivers.h"

namespace rsfast::cuda {

bool compiled() { return false; }
std::string archs() { return ""; }
int device_count(std::string& why) {
  why = "rsfast was built without CUDA kernels (no nvcc at build time, or RSFAST_CUDA=OFF)";
  return 0;
}

}  // namespace rsfast::cuda
