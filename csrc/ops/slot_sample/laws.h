// The laws of slot mode, and the one switch from a law code to its type that
// both drivers (csrc/ops/slot_sample/cpu.cpp, csrc/ops/slot_sample/cuda.cu) use. Adding a law: see
// "How to add a law" in slot_sample/core.h.
#pragma once
#include "ops/slot_sample/laws/discrete.h"
#include "ops/slot_sample/laws/gamma.h"
#include "ops/slot_sample/laws/truncated_normal.h"
#include "ops/slot_sample/laws/von_mises.h"
#include "ops/slot_sample/core.h"

namespace rsfast {

// Calls f(Law{}) with the law type of `law` for element type T; false when the
// code is unknown. Host code only (the drivers instantiate their kernels in f).
template <typename T, typename F>
inline bool slot_dispatch(int law, F&& f) {
  switch (law) {
    case kSlotTruncatedNormal:
      f(TruncatedNormalLaw<T>{});
      return true;
    case kSlotPoisson:
      f(PoissonLaw<T>{});
      return true;
    case kSlotBinomial:
      f(BinomialLaw<T>{});
      return true;
    case kSlotVonMises:
      f(VonMisesLaw<T>{});
      return true;
    case kSlotGamma:
      f(GammaLaw<T>{});
      return true;
    case kSlotBeta:
      f(BetaLaw<T>{});
      return true;
    default:
      return false;
  }
}

// Number of parameters of a law (0 when unknown), for argument checks.
inline int slot_law_params(int law) {
  int k = 0;
  slot_dispatch<float>(law, [&](auto l) { k = decltype(l)::kParams; });
  return k;
}

}  // namespace rsfast
