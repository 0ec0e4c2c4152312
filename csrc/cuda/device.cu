// CUDA build facts and device discovery. cudart is linked statically, so these
// calls work (and report why not) on machines without a driver or a GPU.
#include <cuda_runtime.h>

#include <string>

#include "rsfast/drivers.h"

#ifndef RSFAST_CUDA_ARCHS
#define RSFAST_CUDA_ARCHS ""
#endif

namespace rsfast::cuda {

bool compiled() { return true; }

std::string archs() { return RSFAST_CUDA_ARCHS; }

int device_count(std::string& why) {
  int count = 0;
  const cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess) {
    (void)cudaGetLastError();  // clear it: later runtime calls must not see it
    why = cudaGetErrorString(err);
    return 0;
  }
  if (count <= 0) {
    why = "no CUDA device";
    return 0;
  }
  why.clear();
  return count;
}

}  // namespace rsfast::cuda
