"""The per-cell CPU benchmarks (benchmarks/eval_speed.py, benchmarks/final_forecast.py) run end to
end on a tiny network and append a results section that says when, where and how they ran."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from budgetnas.spaces.nb201 import NB201_OPS
from tests.conftest import REPO

TINY = ["-C", "4", "-N", "1", "--resolution", "8", "--device", "cpu"]


def _main(name: str):
    spec = importlib.util.spec_from_file_location(f"bench_{name}", REPO / "benchmarks" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod.main


@pytest.mark.parametrize("name, extra, rows", [
    ("eval_speed", ["--images", "96", "--batches", "16,32", "--repeats", "1"], len(NB201_OPS)),
    ("final_forecast", ["--images", "96", "--epochs", "1", "--cells", "2"], 2),
])
def test_a_cell_benchmark_appends_its_table_with_its_run_line(name, extra, rows, tmp_path: Path) -> None:
    out = tmp_path / "RESULTS.md"
    argv = [*TINY, *extra, "--out", str(out)]
    assert _main(name)(argv) == 0
    text = out.read_text()
    assert text.startswith("# Benchmark results")  # (a new file gets the header)
    assert "UTC, CPU: " in text and f"`python benchmarks/{name}.py {' '.join(argv)}`" in text
    table = [line for line in text.splitlines() if line.startswith("| ") and "---" not in line]
    assert len(table) == rows + 1  # the header row and one per cell
    if name == "eval_speed":  # the batch evaluate chooses for the network is named
        assert "The batch `evaluate` chooses for this network on cpu: 1024" in text


def test_the_throughput_benchmark_stopped_by_a_time_limit_still_writes_what_it_measured(tmp_path: Path) -> None:
    # gpu_checks.sh runs it under `timeout`: its SIGTERM used to lose the whole section, rows and all.
    import signal
    import subprocess

    out = tmp_path / "RESULTS.md"
    proc = subprocess.Popen(
        [sys.executable, str(REPO / "benchmarks" / "throughput.py"), "--synthetic", "--images", "64", "-C", "4",
         "-N", "1", "--device", "cpu", "--threads", "1", "--batch-sizes", "16,32", "--workers", "0",
         "--epochs", "100000", "--out", str(out)], stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert "device: CPU" in proc.stderr.readline()  # the data is made: it is measuring now
        proc.send_signal(signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        proc.kill()
    text = out.read_text()
    assert "## Training throughput, NB201 best cell" in text and "| mode | batch |" in text, (stdout, stderr)
    assert "**cut short** by SIGTERM (a time limit) after 0 measurement(s)" in text
