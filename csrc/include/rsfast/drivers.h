// The native runtime (threads, instruction set, devices) and the two macros with which every op's
// csrc/ops/<op>/api.h declares its drivers. The drivers take raw pointers and sizes only: the one
// place that knows about Python is each op's bind.cpp (and csrc/bindings.cpp for the module itself).
#pragma once
#include <cstdint>
#include <string>

#include "rsfast/common.h"

// A CPU driver: compiled once per instruction set (csrc/ops/<op>/cpu.cpp in namespace
// <ns>::cpu::RSFAST_CPU_ISA), declared here for both builds; csrc/include/rsfast/bind.h picks one.
#define RSFAST_CPU_DRIVER(decl) \
  namespace cpu {               \
  namespace base {              \
  decl;                         \
  }                             \
  namespace avx2 {              \
  decl;                         \
  }                             \
  }
// A CUDA driver (csrc/ops/<op>/cuda.cu, namespace <ns>::cuda): only referenced when _C is built with
// CUDA (RSFAST_WITH_CUDA), so a build without nvcc needs no stub.
#define RSFAST_CUDA_DRIVER(decl) \
  namespace cuda {               \
  decl;                          \
  }

namespace rsfast {

namespace cpu {
int max_threads();
void set_max_threads(int n);
bool openmp();
// True when the AVX2 build of the CPU drivers runs (x86-64 with AVX2, and RSFAST_CPU_ISA is not
// "baseline" in the environment).
bool has_avx2();
// Instruction set of the CPU kernels chosen at run time: "avx2" or "baseline".
std::string isa();
}  // namespace cpu

namespace cuda {
bool compiled();
std::string archs();
// Number of usable devices; on 0, `why` says what failed.
int device_count(std::string& why);
}  // namespace cuda

}  // namespace rsfast
