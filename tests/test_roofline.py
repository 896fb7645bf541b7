"""benchmarks/roofline.py: its FLOP count is NB201Space's, its bytes are sane, fused moves less."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from budgetnas.spaces import NB201Space
from tests.conftest import NB201_CSV, REPO


def _load() -> ModuleType:
    path = REPO / "benchmarks" / "roofline.py"
    spec = importlib.util.spec_from_file_location("roofline_script", path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up while the class is made
    spec.loader.exec_module(mod)
    return mod


roofline = _load()


@pytest.fixture(scope="module")
def rows() -> list:
    return [roofline.analyse(cell, name=name, index=index) for name, index, cell, _ in roofline.CELLS]


def test_the_four_cells_are_the_issues() -> None:
    names = [c[0] for c in roofline.CELLS]
    assert names == ["best", "wide", "deep", "tiny"]
    assert roofline.CELLS[0][1:3] == (
        6111,
        "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|",
    )


def test_flops_equal_twice_the_cost_macs(rows: list) -> None:
    space = NB201Space(C=16, N=5)
    for r in rows:
        cost = space.cost(space.parse(r.cell), in_channels=3, num_classes=10, resolution=32)
        assert r.macs == cost.macs, r.name
        assert r.fwd_flops == 2 * cost.macs, r.name
        assert r.train_flops == 3 * 2 * cost.macs, r.name
    assert rows[0].macs == 153_272_960  # the issue's "about 153M multiply-adds per image"
    assert rows[0].params == 1_073_466


def test_bytes_positive_and_fused_smaller(rows: list) -> None:
    for r in rows:
        assert r.conv_bytes > 0 and r.elementwise_bytes > 0 and r.weight_bytes > 0, r.name
        assert r.fwd_bytes == r.conv_bytes + r.elementwise_bytes
        assert 0 < r.fwd_bytes_fused < r.fwd_bytes, r.name
        assert 0 < r.train_bytes_fused < r.train_bytes, r.name
        # elementwise layers move more bytes than the convs at 16-64 channels
        assert r.elementwise_bytes > r.conv_bytes, r.name
        # weights and optimizer state, amortised over 512 images, are a small part
        assert r.weight_bytes < 0.05 * r.train_bytes, r.name


def test_best_cell_activation_bytes_by_hand(rows: list) -> None:
    # stage 1 has n = 16*32*32 elements per tensor; one best cell moves 5 ReLU-Conv-BN x 6n plus a
    # 2-term (3n) and a 3-term (4n) sum = 37n forward; stages 2 and 3 are n/2 and n/4
    n = 16 * 32 * 32
    cells_only = 5 * 37 * n * (1 + 0.5 + 0.25) * 2  # bytes
    best = rows[0]
    assert cells_only < best.fwd_bytes < 1.1 * cells_only


def test_append_writes_the_section(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "RESULTS.md"
    assert roofline.main(["--append", "--out", str(out), "-N", "1"]) == 0
    text = out.read_text()
    assert "## Roofline estimate (arithmetic, not a measurement)" in text
    assert "UTC" in text and "command: `python benchmarks/roofline.py --append --out" in text
    assert "datasheet" in text
    assert "| best |" in capsys.readouterr().out


@pytest.mark.skipif(not NB201_CSV.exists(), reason="shared NB201 table not present")
def test_cell_indices_match_the_table() -> None:
    from budgetnas.bench import load_nb201

    table = load_nb201(NB201_CSV)
    for name, index, cell, _ in roofline.CELLS:
        assert table.index(cell) == index, name
