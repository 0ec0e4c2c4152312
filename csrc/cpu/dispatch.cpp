// The CPU runtime: which instruction set the drivers run (the AVX2 build of the kernels when the CPU
// has AVX2, x86-64 builds only, else the baseline build; both give the same bits: no FMA contraction,
// the same arithmetic in the same order) and the OpenMP thread count. The per-op pick between
// cpu::base:: and cpu::avx2:: is RSFAST_CPU in csrc/include/rsfast/bind.h.
#include <cstdlib>
#include <cstring>
#include <string>

#include "parallel.h"
#include "rsfast/drivers.h"

namespace rsfast::cpu {

// RSFAST_CPU_ISA=baseline in the environment forces the baseline build (tests
// compare the two builds bit for bit).
bool has_avx2() {
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

}  // namespace rsfast::cpu
