"""A real search on CUDA: the paths that only a GPU runs (graph capture inside the search loop,
several candidates at once on their own streams, the final training and prediction on the device).

These skip without a CUDA GPU (CI has none); they are the first thing a GPU session runs
(``benchmarks/gpu_checks.sh``), because every GPU benchmark stands on them.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from budgetnas import load_model
from budgetnas.data import DataSplits, from_arrays
from budgetnas.search import Search, SearchConfig, open_study
from budgetnas.search.records import counts_as_trial, record_of, status_of
from tests.conftest import cuda_allocated

pytestmark = pytest.mark.gpu

SMALL = dict(C=8, N=1, final_C=8, final_N=1, epochs=3, final_epochs=4, strategy="random", device="cuda")


@pytest.fixture(scope="module")
def splits(digits) -> DataSplits:
    x, y = digits
    return DataSplits(train=from_arrays(x[:1400], y[:1400], name="digits"),
                      test=from_arrays(x[1400:], y[1400:], name="digits"))


@pytest.mark.parametrize("concurrent", [1, 2])
def test_a_search_on_cuda_trains_every_candidate_in_a_cuda_graph(tmp_path: Path, splits: DataSplits,
                                                                 concurrent: int) -> None:
    run = tmp_path / "run"
    cfg = SearchConfig(data="digits", run_dir=str(run), max_trials=4, concurrent=concurrent, **SMALL)
    result = Search(cfg, data=splits, data_name="digits", progress=False).run()
    trials = open_study(run).get_trials()
    counted = [t for t in trials if counts_as_trial(t)]
    assert len(counted) == 4
    failed = [(t.number, t.user_attrs.get("reason")) for t in trials if status_of(t) == "failed"]
    assert not failed, failed
    for t in counted:
        rec = record_of(t)
        if status_of(t) != "cached":  # a trained trial, not an evaluation-cache hit
            assert rec["step_mode"] == "graph", rec
            assert rec["device_seconds"] > 0
    metrics = json.loads((run / "best" / "metrics.json").read_text())
    assert metrics["step_mode"] == "graph"
    assert result.test_metrics["accuracy"] > 0.5  # 10 classes: far above chance after 4 epochs


def test_the_final_model_predicts_the_same_on_cuda_and_on_the_cpu(tmp_path: Path, splits: DataSplits) -> None:
    run = tmp_path / "run"
    cfg = SearchConfig(data="digits", run_dir=str(run), max_trials=1, **SMALL)
    Search(cfg, data=splits, data_name="digits", progress=False).run()
    x = splits.test.images[:200]
    gpu = load_model(run, device="cuda")
    cpu = load_model(run, device="cpu")
    # bf16 autocast on CUDA, float32 on the CPU: the labels agree on (nearly) every image.
    agree = float(np.mean(gpu.predict(x) == cpu.predict(x)))
    assert agree >= 0.97, agree
    assert cuda_allocated() < 2 ** 30
