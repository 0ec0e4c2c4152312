// rsfast._C: the module itself. Everything crosses as integers: data pointers, sizes, dtype codes,
// (seed, offset), a device index (-1 for the CPU) and a cudaStream_t. Memory is owned by torch on the
// Python side; the drivers only fill it. Each op binds its own functions (csrc/ops/<op>/bind.cpp,
// RSFAST_BIND in rsfast/bind.h); this file holds the runtime functions, the code tables and the walk
// over the ops' binders.
#include <algorithm>
#include <array>
#include <string>
#include <utility>
#include <vector>

#include "rsfast/bind.h"
#include "rsfast/philox.h"
#include "rsfast/registry.h"

#ifndef RSFAST_VERSION
#define RSFAST_VERSION "dev"
#endif

namespace py = pybind11;

namespace rsfast::bind {

// Filled by the static registrars of the bind.cpp objects before PYBIND11_MODULE runs (a function-local
// static: the registrars of other objects may run first).
static std::vector<std::pair<std::string, Binder>>& binders() {
  static std::vector<std::pair<std::string, Binder>> list;
  return list;
}

void add_binder(const char* name, Binder binder) { binders().emplace_back(name, binder); }

namespace {

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

// Every code that crosses the boundary, by table and name (rsfast/registry.h): rsfast/_native.py and
// rsfast/ops read their codes from here, so the registry is the only copy.
py::dict codes() {
  py::dict tables;
#define RSFAST_CODE_ITEM(id, name) t[name] = static_cast<int>(id);
#define RSFAST_CODE_TABLE(table, Type, LIST) \
  {                                          \
    py::dict t;                              \
    LIST(RSFAST_CODE_ITEM)                   \
    tables[table] = t;                       \
  }
  RSFAST_CODE_TABLES(RSFAST_CODE_TABLE)
#undef RSFAST_CODE_TABLE
#undef RSFAST_CODE_ITEM
  return tables;
}

}  // namespace
}  // namespace rsfast::bind

PYBIND11_MODULE(_C, mod) {
  using namespace rsfast;
  mod.doc() = "rsfast native kernels (torch-free; see rsfast/_native.py)";
  mod.def("philox4x32_10", &bind::philox, "One Philox4x32-10 block: (counter[4], key[2]) -> 4 words.");
  mod.def("build_info", &bind::build_info);
  mod.def("set_num_threads", &cpu::set_max_threads,
          "Threads of the CPU kernels (rsfast follows torch.get_num_threads()).");
  mod.def("cuda_device_count", &bind::cuda_device_count);
  mod.attr("CODES") = bind::codes();
  auto list = bind::binders();
  std::sort(list.begin(), list.end());
  py::list names;
  for (const auto& [name, binder] : list) {
    binder(mod);
    names.append(name);
  }
  // The ops whose bind.cpp registered itself (a check that static registration ran).
  mod.attr("OPS") = names;
}
