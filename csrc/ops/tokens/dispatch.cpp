// rsfast.tokens entry points: the AVX2 or baseline build of the CPU driver
// (both give the same bits), and the CUDA stubs of a build without nvcc.
#include <cstdlib>
#include <cstring>
#include <stdexcept>

#include "driver.h"

namespace rsfast::tokens {
namespace cpu {

namespace base {
void sample(const SampleArgs& args);
void verify(const VerifyArgs& args);
void filter(const FilterArgs& args);
}  // namespace base
#ifdef RSFAST_CPU_AVX2
namespace avx2 {
void sample(const SampleArgs& args);
void verify(const VerifyArgs& args);
void filter(const FilterArgs& args);
}  // namespace avx2
#endif

static bool use_avx2() {
#ifdef RSFAST_CPU_AVX2
  static const bool yes = [] {
    const char* forced = std::getenv("RSFAST_CPU_ISA");
    return __builtin_cpu_supports("avx2") && !(forced && std::strcmp(forced, "baseline") == 0);
  }();
  return yes;
#else
  return false;
#endif
}

void sample(const SampleArgs& args) {
#ifdef RSFAST_CPU_AVX2
  if (use_avx2()) return avx2::sample(args);
#endif
  base::sample(args);
}

void verify(const VerifyArgs& args) {
#ifdef RSFAST_CPU_AVX2
  if (use_avx2()) return avx2::verify(args);
#endif
  base::verify(args);
}

void filter(const FilterArgs& args) {
#ifdef RSFAST_CPU_AVX2
  if (use_avx2()) return avx2::filter(args);
#endif
  base::filter(args);
}

}  // namespace cpu

#ifndef RSFAST_CUDA_ARCHS
namespace cuda {
[[noreturn]] static void missing() { throw std::runtime_error("rsfast was built without CUDA kernels"); }
void sample(const SampleArgs&, int, void*) { missing(); }
void verify(const VerifyArgs&, int, void*) { missing(); }
void filter(const FilterArgs&, int, void*) { missing(); }
}  // namespace cuda
#endif

}  // namespace rsfast::tokens
