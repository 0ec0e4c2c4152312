"""The torch-compat layer: op schemas, the tested torch range in ``rsfast info``."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

import rsfast
from rsfast import _compat, ops


def _registered_ops() -> list[object]:
    return [v for v in vars(ops).values() if hasattr(v, "_rsfast_impl")]


def test_every_op_is_registered_with_our_schema() -> None:
    found = _registered_ops()
    assert len(found) >= 12
    for op in found:
        schema = str(op._opoverload._schema)
        assert schema[schema.index("(") :] == _compat.schema_of(op._rsfast_impl, op._rsfast_mutates)


@pytest.mark.parametrize(
    "version, expected",
    [("2.4.1", (2, 4, 1)), ("2.13.0+cpu", (2, 13, 0)), ("2.7.0a0+git123", (2, 7, 0)), ("2.10", (2, 10, 0))],
)
def test_parse_version(version: str, expected: tuple[int, ...]) -> None:
    assert _compat._parse(version) == expected


def test_schema_matches_torch_inference() -> None:
    """Where torch can infer a schema from our annotations, it writes the same one as _compat."""
    infer = getattr(torch.library, "infer_schema", None)
    if infer is None:
        pytest.skip(f"torch.library.infer_schema is absent in torch {torch.__version__} (added in 2.5)")
    checked = 0
    for op in _registered_ops():
        mutated = op._rsfast_mutates
        try:
            theirs = infer(op._rsfast_impl, mutates_args=mutated)
        except ValueError as e:  # torch < 2.7 cannot read list[Tensor] / string annotations
            pytest.skip(f"torch {torch.__version__} cannot infer a schema from our annotations: {e}")
        assert theirs == _compat.schema_of(op._rsfast_impl, mutated), op._name
        checked += 1
    assert checked >= 12


def test_info_reports_torch_and_tested_range(tmp_path) -> None:
    cmd = [sys.executable, "-m", "rsfast", "info", "--json"]
    out = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, check=True)
    info = json.loads(out.stdout)
    assert info["torch"] == torch.__version__
    assert info["torch_tested_range"] == f"{_compat.TORCH_TESTED[0]} .. {_compat.TORCH_TESTED[1]}"
    assert info["torch_in_tested_range"] is _compat.torch_support()["torch_in_tested_range"]
    assert rsfast.build_info()["torch"] == torch.__version__
