// Internal helpers of the CUDA drivers: error checking and a device guard.
// Host-only code; kernels never include torch or Python.
#pragma once
#include <cuda_runtime.h>

#include <stdexcept>
#include <string>

namespace rsfast::cuda {

[[noreturn]] inline void cuda_fail(cudaError_t err, const char* what, const char* file, int line) {
  throw std::runtime_error(std::string("rsfast CUDA error at ") + file + ":" + std::to_string(line) + ": " + what +
                           ": " + cudaGetErrorString(err));
}

}  // namespace rsfast::cuda

// Throws std::runtime_error (file, line, CUDA error string) when `expr` fails.
// The error is also cleared from this runtime so that later calls start clean.
#define CUDA_CHECK(expr)                                                      \
  do {                                                                        \
    const cudaError_t rsfast_err_ = (expr);                                   \
    if (rsfast_err_ != cudaSuccess) {                                         \
      (void)cudaGetLastError();                                               \
      ::rsfast::cuda::cuda_fail(rsfast_err_, #expr, __FILE__, __LINE__);      \
    }                                                                         \
  } while (0)

namespace rsfast::cuda {

// Makes `device` current for the lifetime of the guard and restores the
// previous device afterwards, so that a launch from a thread whose current
// device differs (torch tensors on cuda:1, say) runs on the tensors' device.
class DeviceGuard {
 public:
  explicit DeviceGuard(int device) {
    CUDA_CHECK(cudaGetDevice(&prev_));
    if (prev_ != device) {
      CUDA_CHECK(cudaSetDevice(device));
      changed_ = true;
    }
  }
  ~DeviceGuard() {
    // Never throw from a destructor: a failed restore is ignored (and cleared).
    if (changed_ && cudaSetDevice(prev_) != cudaSuccess) (void)cudaGetLastError();
  }
  DeviceGuard(const DeviceGuard&) = delete;
  DeviceGuard& operator=(const DeviceGuard&) = delete;

 private:
  int prev_ = 0;
  bool changed_ = false;
};

}  // namespace rsfast::cuda
