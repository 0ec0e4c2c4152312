"""Every code Python sends to the native module exists in the tables the module exports
(rsfast._C.CODES, generated from csrc/include/rsfast/registry.h), every table each layer uses is read
from there, no Python file writes a native code as a literal, and every op's binding registered itself."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import torch

import rsfast
from rsfast import _C, _native, ops, reference

PKG = Path(rsfast.__file__).resolve().parent
# The sources of the build under test: the tests live in the source tree, the package may be installed.
CSRC = Path(__file__).resolve().parent.parent / "csrc"
TOKENS = importlib.import_module("rsfast.ops.tokens")
PROPOSE = importlib.import_module("rsfast.ops.propose")
ACCEPT = importlib.import_module("rsfast.ops.accept_compact")
FUSED = importlib.import_module("rsfast.ops.fused_sample")
SLOT = importlib.import_module("rsfast.ops.slot_sample")
SELECT = importlib.import_module("rsfast.ops.select")
PERTURB = importlib.import_module("rsfast.ops.perturb")


def test_tables_are_dense_and_unique():
    assert set(_C.CODES) >= {
        "dtype", "proposal_kind", "count_slot", "fused_slot", "slot_law", "select_op", "select_scratch",
        "tokens_input", "tokens_order", "verify_mode", "filter_mode",
    }  # fmt: skip
    for table, codes in _C.CODES.items():
        assert sorted(codes.values()) == list(range(len(codes))), table


def _by_name(codes: dict[torch.dtype, int]) -> dict[str, int]:
    return {str(d).removeprefix("torch."): c for d, c in codes.items()}


def test_one_dtype_table():
    """One DType for every op: each op's dtype map is a part of CODES["dtype"]."""
    dtype = _C.CODES["dtype"]
    assert set(dtype) == {"float32", "float64", "float16", "bfloat16", "int64"}
    for codes, names in (
        (_native.DTYPE_CODES, {"float32", "float64"}),
        (PERTURB.PERTURB_DTYPE_CODES, {"float32", "float64", "float16", "bfloat16"}),
        (SELECT.SELECT_DTYPE_CODES, {"float32", "float64", "int64"}),
        (TOKENS.X_DTYPES, {"float32", "float64", "float16", "bfloat16"}),
    ):
        assert _by_name(codes) == {n: dtype[n] for n in names}
    assert {str(d).removeprefix("torch.") for d in ops.PERTURB_DTYPES} == set(
        _by_name(PERTURB.PERTURB_DTYPE_CODES)
    )


def test_native_reads_every_code_from_the_module():
    assert PROPOSE.PROPOSAL_KINDS == _C.CODES["proposal_kind"]
    assert SLOT.SLOT_LAW_CODES == _C.CODES["slot_law"]
    assert SELECT.SELECT_OPS == _C.CODES["select_op"]
    assert SELECT.SELECT_SCRATCH == _C.CODES["select_scratch"]
    for table, slots in (("count_slot", ACCEPT.COUNT_SLOTS), ("fused_slot", FUSED.FUSED_COUNT_SLOTS)):
        assert {name: i for i, name in enumerate(slots)} == _C.CODES[table]
    assert TOKENS.INPUTS == _C.CODES["tokens_input"]
    assert TOKENS.ORDERS == _C.CODES["tokens_order"]
    assert TOKENS.MODES == _C.CODES["verify_mode"]
    assert TOKENS.FILTER_MODES == _C.CODES["filter_mode"]


def test_every_layer_uses_names_of_the_tables():
    assert set(ops.PROPOSAL_PARAMS) == set(_C.CODES["proposal_kind"])
    assert set(ops.SLOT_LAWS) == set(_C.CODES["slot_law"])
    assert set(reference.SLOT_TWINS) == set(_C.CODES["slot_law"])
    assert tuple(ops.FUSED_COUNT_SLOTS) == FUSED.FUSED_COUNT_SLOTS == _native.slots("fused_slot")
    source = (PKG / "ops" / "select.py").read_text()
    used_ops = set(re.findall(r'select_groups_into\(\s*"(\w+)"', source))
    used_scratch = set(re.findall(r'select_scratch\(\s*"(\w+)"', source))
    assert used_ops and used_ops <= set(_C.CODES["select_op"])
    assert used_scratch and used_scratch <= set(_C.CODES["select_scratch"])


def test_no_python_file_writes_a_native_code():
    """A name of a code table next to an integer literal (``"logits": 0``, ``torch.float32: 0``) would be a
    second copy of a native number."""
    names = {name for codes in _C.CODES.values() for name in codes}
    pattern = re.compile(r"""(?:["'](\w+)["']|torch\.(\w+))\s*:\s*-?\d+\b""")
    for path in sorted(PKG.rglob("*.py")):
        for line_no, line in enumerate(path.read_text().splitlines(), 1):
            for m in pattern.finditer(line):
                name = m.group(1) or m.group(2)
                assert name not in names, f"{path.relative_to(PKG.parent)}:{line_no}: {line.strip()}"


def test_the_check_finds_a_literal_code():
    pattern = re.compile(r"""(?:["'](\w+)["']|torch\.(\w+))\s*:\s*-?\d+\b""")
    m = pattern.search('X = {torch.float16: 1, "probs": 1}')
    assert m and (m.group(1) or m.group(2)) == "float16"


def test_every_op_binding_registered_itself():
    """Every csrc/ops/<op>/bind.cpp registered its functions through its static registrar."""
    folders = sorted(p.parent.name for p in CSRC.glob("ops/*/bind.cpp"))
    assert folders and list(_C.OPS) == folders
