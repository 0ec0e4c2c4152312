"""Every code Python sends to the native module exists in the tables the module exports
(rsfast._C.CODES, built from the C++ enums), and every name each layer uses is one of them."""

from __future__ import annotations

import re
from pathlib import Path

import torch

import rsfast
from rsfast import _C, _native, ops, reference


def test_tables_are_dense_and_unique():
    assert set(_C.CODES) >= {"dtype", "proposal_kind", "count_slot", "fused_slot", "slot_law", "select_op"}
    for table, codes in _C.CODES.items():
        assert sorted(codes.values()) == list(range(len(codes))), table


def test_native_reads_every_code_from_the_module():
    assert (
        _native.DTYPE_CODES
        == {torch.float32: 0, torch.float64: 1}
        == {getattr(torch, k): v for k, v in _C.CODES["dtype"].items()}
    )
    assert _native.PROPOSAL_KINDS == _C.CODES["proposal_kind"]
    assert _native.SLOT_LAW_CODES == _C.CODES["slot_law"]
    assert _native.SELECT_OPS == _C.CODES["select_op"]
    assert _native.SELECT_SCRATCH == _C.CODES["select_scratch"]
    for table, slots in (("count_slot", _native.COUNT_SLOTS), ("fused_slot", _native.FUSED_COUNT_SLOTS)):
        assert {name: i for i, name in enumerate(slots)} == _C.CODES[table]
    for table, codes in (
        ("perturb_dtype", _native.PERTURB_DTYPE_CODES),
        ("select_dtype", _native.SELECT_DTYPE_CODES),
    ):
        assert {str(d).removeprefix("torch."): c for d, c in codes.items()} == _C.CODES[table]


def test_every_layer_uses_names_of_the_tables():
    assert set(ops.PROPOSAL_PARAMS) == set(_C.CODES["proposal_kind"])
    assert set(ops.SLOT_LAWS) == set(_C.CODES["slot_law"])
    assert set(reference.SLOT_TWINS) == set(_C.CODES["slot_law"])
    assert {str(d).removeprefix("torch.") for d in ops.PERTURB_DTYPES} == set(_C.CODES["perturb_dtype"])
    assert tuple(ops.FUSED_COUNT_SLOTS) == _native.FUSED_COUNT_SLOTS
    source = (Path(rsfast.__file__).parent / "ops" / "select.py").read_text()
    used_ops = set(re.findall(r'select_groups_into\(\s*"(\w+)"', source))
    used_scratch = set(re.findall(r'select_scratch\(\s*"(\w+)"', source))
    assert used_ops and used_ops <= set(_C.CODES["select_op"])
    assert used_scratch and used_scratch <= set(_C.CODES["select_scratch"])
