"""Check a repaired wheel: ``auditwheel show`` passes with a manylinux tag, libgomp is vendored, cudart is
static (not a dependency), libtorch is never linked. Usage: check_wheel.py AUDITWHEEL WHEEL."""

from __future__ import annotations

import io
import subprocess
import sys
import zipfile

from elftools.elf.dynamic import DynamicSection
from elftools.elf.elffile import ELFFile


def needed(data: bytes) -> list[str]:
    elf = ELFFile(io.BytesIO(data))
    return [t.needed for s in elf.iter_sections() if isinstance(s, DynamicSection) for t in s.iter_tags()
            if t.entry.d_tag == "DT_NEEDED"]  # fmt: skip


def main(auditwheel: str, wheel: str) -> int:
    problems = []
    if "manylinux" not in wheel:
        problems.append(f"not a manylinux wheel: {wheel}")
    show = subprocess.run([auditwheel, "show", wheel], capture_output=True, text=True)
    print(show.stdout.strip())
    if show.returncode != 0 or "manylinux" not in show.stdout:
        problems.append(f"auditwheel show failed ({show.returncode}): {show.stderr.strip()}")
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        mods = [n for n in names if n.startswith("rsfast/_C") and n.endswith(".so")]
        if len(mods) != 1:
            problems.append(f"expected one rsfast/_C*.so, got {mods}")
        else:
            deps = needed(z.read(mods[0]))
            print(f"{mods[0]} NEEDED: {', '.join(deps)}")
            bad = [d for d in deps if d.startswith(("libtorch", "libc10", "libcudart", "libcuda."))]
            if bad:
                problems.append(f"_C must not link {bad}")
            if not any(d.startswith("libgomp") for d in deps):
                problems.append("_C does not use OpenMP (libgomp missing from NEEDED)")
        vendored = [n for n in names if ".libs/" in n]
        print(f"vendored: {', '.join(vendored) or '-'}")
        if not any("libgomp" in n for n in vendored):
            problems.append("libgomp is not vendored")
        if any("libtorch" in n or "libc10" in n for n in vendored):
            problems.append("libtorch was vendored")
    for p in problems:
        print(f"check_wheel: {p}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
