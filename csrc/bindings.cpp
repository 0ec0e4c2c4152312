// rsfast._C: the only file that knows about Python. Everything crosses as
// integers: data pointers, sizes, dtype codes, (seed, offset), a device index
// (-1 for the CPU) and a cudaStream_t. Memory is owned by torch on the Python
// side; the drivers only fill it.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <array>
#include <stdexcept>
#include <vector>

#include "rsfast/drivers.h"
#include "rsfast/philox.h"
#include "rsfast/slot_laws.h"

#ifndef RSFAST_VERSION
#define RSFAST_VERSION "dev"
#endif

namespace py = pybind11;
using namespace rsfast;

namespace {

const void* cptr(uintptr_t p) { return reinterpret_cast<const void*>(p); }
void* mptr(uintptr_t p) { return reinterpret_cast<void*>(p); }

void check_dtype(int dtype) {
  if (dtype != kFloat32 && dtype != kFloat64) throw std::invalid_argument("rsfast._C: dtype code must be 0 or 1");
}

void propose(int kind, int dtype, int64_t dim, int64_t ncomp, int64_t m, uint64_t seed, uint32_t offset,
             uintptr_t a, uintptr_t b, uintptr_t c, uintptr_t cdf, uintptr_t x, uintptr_t log_q, int device,
             uintptr_t stream) {
  check_dtype(dtype);
  if (kind < kNormal || kind > kMixtureNormal) throw std::invalid_argument("rsfast._C.propose: unknown kind");
  const ProposeArgs args{kind, dtype, dim, ncomp, m, seed, offset, cptr(a), cptr(b), cptr(c), cptr(cdf),
                         mptr(x), mptr(log_q)};
  py::gil_scoped_release nogil;
  if (device < 0)
    cpu::propose(args);
  else
    cuda::propose(args, device, mptr(stream));
}

void accept_compact(int dtype, int64_t m, int64_t row_bytes, int64_t capacity, uintptr_t x, uintptr_t log_p,
                    uintptr_t log_q, double log_M, uint64_t seed, uint32_t offset, uintptr_t out, uintptr_t counts,
                    uintptr_t max_log_ratio, uintptr_t scratch, int device, uintptr_t stream) {
  check_dtype(dtype);
  const AcceptArgs args{dtype,  m,    row_bytes, capacity, cptr(x), cptr(log_p), cptr(log_q),
                        log_M,  seed, offset,    mptr(out), static_cast<int64_t*>(mptr(counts)),
                        static_cast<double*>(mptr(max_log_ratio)), mptr(scratch)};
  py::gil_scoped_release nogil;
  if (device < 0)
    cpu::accept_compact(args);
  else
    cuda::accept_compact(args, device, mptr(stream));
}

int64_t accept_compact_scratch_bytes(int64_t m, int device) {
  return device < 0 ? cpu::accept_compact_scratch_bytes(m) : cuda::accept_compact_scratch_bytes(m);
}

std::array<uint32_t, 4> philox(std::array<uint32_t, 4> ctr, std::array<uint32_t, 2> key) {
  const U32x4 r = philox4x32_10(ctr[0], ctr[1], ctr[2], ctr[3], key[0], key[1]);
  return {r.v[0], r.v[1], r.v[2], r.v[3]};
}

py::dict build_info() {
  py::dict d;
  d["version"] = RSFAST_VERSION;
  d["cuda_compiled"] = cuda::compiled();
  d["cuda_archs"] = cuda::archs();
  d["openmp"] = cpu::openmp();
  d["openmp_threads"] = cpu::max_threads();
  d["cpu_isa"] = cpu::isa();
  return d;
}

py::tuple cuda_device_count() {
  std::string why;
  const int n = cuda::device_count(why);
  return py::make_tuple(n, why);
}

void slot_sample(int law, int dtype, int64_t n, int64_t batch, std::vector<uintptr_t> params, uint64_t seed,
                 uint32_t offset, uintptr_t out, uintptr_t exhausted, int device, uintptr_t stream) {
  check_dtype(dtype);
  const int k = slot_law_params(law);
  if (k == 0) throw std::invalid_argument("rsfast._C.slot_sample: unknown law code");
  if ((int)params.size() != k) throw std::invalid_argument("rsfast._C.slot_sample: wrong number of parameters");
  if (batch < 1 || n < 0 || (n > 0 && n % batch != 0))
    throw std::invalid_argument("rsfast._C.slot_sample: n must be a multiple of batch >= 1");
  SlotArgs args{law, dtype, n, batch, {nullptr, nullptr, nullptr, nullptr}, seed, offset, mptr(out),
                static_cast<int64_t*>(mptr(exhausted))};
  for (int i = 0; i < k; ++i) args.params[i] = cptr(params[i]);
  py::gil_scoped_release nogil;
  if (device < 0)
    cpu::slot_sample(args);
  else
    cuda::slot_sample(args, device, mptr(stream));
}

}  // namespace

PYBIND11_MODULE(_C, mod) {
  mod.doc() = "rsfast native kernels (torch-free; see rsfast/_native.py)";
  mod.def("propose", &propose, "Draw m rows of a built-in proposal and their log q.");
  mod.def("accept_compact", &accept_compact, "Accept rows with log u < log p - log q - log M and append them.");
  mod.def("accept_compact_scratch_bytes", &accept_compact_scratch_bytes);
  mod.def("philox4x32_10", &philox, "One Philox4x32-10 block: (counter[4], key[2]) -> 4 words.");
  mod.def("build_info", &build_info);
  mod.def("set_num_threads", &cpu::set_max_threads, "Threads of the CPU kernels (rsfast follows torch.get_num_threads()).");
  mod.def("cuda_device_count", &cuda_device_count);
  mod.def("slot_sample", &slot_sample, "Slot mode: every output element runs its law's rejection loop on its own stream.");
}
