// What every csrc/ops/<op>/bind.cpp uses: its self-registration into rsfast._C (RSFAST_BIND), the pick
// of its CPU driver's instruction-set build (RSFAST_CPU), and one way to launch a driver (RSFAST_RUN:
// release the GIL, then the CPU driver or the CUDA driver on the given device and stream). Included
// only by bind.cpp files and csrc/bindings.cpp (compiled once, into _C, not per instruction set).
#pragma once
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <stdexcept>
#include <string>

#include "rsfast/drivers.h"

namespace rsfast::bind {

namespace py = pybind11;

// ---- registration: each bind.cpp adds one binder; PYBIND11_MODULE (csrc/bindings.cpp) calls them all,
// in name order. The bind.cpp objects are linked into _C directly (not from a static archive), so their
// static registrars always run when the module is loaded.
using Binder = void (*)(py::module_&);
void add_binder(const char* name, Binder binder);  // csrc/bindings.cpp
struct Registrar {
  Registrar(const char* name, Binder binder) { add_binder(name, binder); }
};

// RSFAST_BIND(op) { m.def(...); }: the body receives the module as `m`.
#define RSFAST_BIND(op)                                                                        \
  static void rsfast_bind_##op(::pybind11::module_& m);                                        \
  static const ::rsfast::bind::Registrar rsfast_registrar_##op(#op, &rsfast_bind_##op);        \
  static void rsfast_bind_##op(::pybind11::module_& m)

// ---- pointers cross as integers
inline const void* cptr(uintptr_t p) { return reinterpret_cast<const void*>(p); }
inline void* mptr(uintptr_t p) { return reinterpret_cast<void*>(p); }
template <typename T>
T* at(uintptr_t p) {
  return reinterpret_cast<T*>(p);
}

// ---- argument checks shared by the ops
inline void check_float_dtype(int dtype, const char* op) {
  if (!is_float_dtype(dtype))
    throw std::invalid_argument(std::string("rsfast._C.") + op + ": dtype code must be float32 or float64");
}

[[noreturn]] inline void no_cuda() { throw std::runtime_error("rsfast was built without CUDA kernels"); }

// ---- the CPU driver of the instruction set picked at run time: RSFAST_CPU(ns, fn) is a pointer to
// ns::cpu::avx2::fn or ns::cpu::base::fn (ns: rsfast, or rsfast::tokens for the token ops).
template <typename F>
F isa_pick(F base, F avx2) {
  return ::rsfast::cpu::has_avx2() ? avx2 : base;
}
#ifdef RSFAST_CPU_AVX2
#define RSFAST_CPU(ns, fn) ::rsfast::bind::isa_pick(&::ns::cpu::base::fn, &::ns::cpu::avx2::fn)
#else
#define RSFAST_CPU(ns, fn) (&::ns::cpu::base::fn)
#endif

// ---- the CUDA driver, or nullptr in a build without CUDA (its symbol is then never referenced).
#ifdef RSFAST_WITH_CUDA
#define RSFAST_CUDA(ns, fn) (&::ns::cuda::fn)
#else
#define RSFAST_CUDA(ns, fn) nullptr
#endif

// Same<T>::type is T in a non-deduced context: `Args` is deduced from the CPU driver alone, so nullptr
// (no CUDA) converts to the CUDA driver's pointer type.
template <typename T>
struct Same {
  using type = T;
};

// Release the GIL, then run the CPU driver (device < 0) or the CUDA driver on `device` and `stream`.
template <typename Args>
void run(void (*cpu)(const Args&), typename Same<void (*)(const Args&, int, void*)>::type cuda, const Args& args,
         int device, uintptr_t stream) {
  py::gil_scoped_release nogil;
  if (device < 0)
    cpu(args);
  else if (cuda)
    cuda(args, device, mptr(stream));
  else
    no_cuda();
}

// A size query (scratch bytes): the CPU function on device < 0, else the CUDA one.
template <typename R, typename... A>
R query(R (*cpu)(A...), typename Same<R (*)(A...)>::type cuda, int device, typename Same<A>::type... a) {
  if (device < 0) return cpu(a...);
  if (!cuda) no_cuda();
  return cuda(a...);
}

// RSFAST_RUN(ns, fn, args, device, stream): `run` with ns's ISA-picked CPU driver fn and its CUDA driver fn.
#define RSFAST_RUN(ns, fn, args, device, stream) \
  ::rsfast::bind::run(RSFAST_CPU(ns, fn), RSFAST_CUDA(ns, fn), args, device, stream)

}  // namespace rsfast::bind
