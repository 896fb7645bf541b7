"""The benchmark-to-your-data workflow: top-k from the table trained on real data, Spearman's rho."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import spearmanr

from budgetnas.data import DataSplits, from_arrays
from budgetnas.errors import ConfigError
from budgetnas.search import SearchConfig, open_study
from budgetnas.search.records import status_of
from budgetnas.search.transfer import _pick_reverse, finetune_from_bench, rankdata, spearman
from tests.conftest import NB201_CSV

TINY = dict(C=4, N=1, final_C=4, final_N=1, epochs=1, final_epochs=1)


def test_spearman_matches_scipy_with_ties() -> None:
    rng = np.random.default_rng(0)
    for _ in range(20):
        a = rng.integers(0, 5, 12).astype(float)
        b = a + rng.normal(0, 2, 12)
        assert spearman(a, b) == pytest.approx(spearmanr(a, b).statistic)
    assert list(rankdata(np.array([3.0, 1.0, 3.0, 2.0]))) == [3.5, 1.0, 3.5, 2.0]
    assert np.isnan(spearman(np.array([1.0, 2.0]), np.array([2.0, 1.0])))


@pytest.fixture(scope="module")
def table():
    if not NB201_CSV.exists():
        pytest.skip("shared NB201 table not present")
    from budgetnas.bench import load_nb201

    return load_nb201(NB201_CSV)


def test_finetune_trains_the_top_k_and_reports_rho(tmp_path: Path, table, digits) -> None:
    x, y = digits
    splits = DataSplits(train=from_arrays(x[:400], y[:400]), test=from_arrays(x[1600:1700], y[1600:1700]))
    cfg = SearchConfig(data="digits", run_dir=str(tmp_path / "run"), max_trials=3, strategy="random", **TINY)
    report = finetune_from_bench(cfg, table, k=3, dataset="cifar100", max_params=20_000, data=splits,
                                 data_name="digits", progress=False)
    top = table.top_k(3, dataset="cifar100", max_params=20_000, in_channels=1, num_classes=10, C=4, N=1,
                      resolution=8)
    assert [r.arch for r in report.rows] == [t["arch"] for t in top]  # exactly the benchmark's top 3
    assert all(r.status == "complete" and r.params <= 20_000 for r in report.rows)
    measured = [r.measured for r in report.rows]
    assert report.rho == pytest.approx(spearmanr([r.bench_value for r in report.rows], measured).statistic)
    assert report.test_oracle and "TEST accuracy" in report.table()
    assert report.best_arch == max(report.rows, key=lambda r: r.measured).arch
    saved = json.loads((tmp_path / "run" / "transfer.json").read_text())
    assert saved["rho"] == pytest.approx(report.rho) and len(saved["rows"]) == 3
    # Running it again resumes: nothing is trained twice.
    again = finetune_from_bench(cfg, table, k=3, dataset="cifar100", max_params=20_000, data=splits,
                                data_name="digits", progress=False)
    trials = open_study(tmp_path / "run").get_trials()
    assert len([t for t in trials if status_of(t) == "complete"]) == 3
    assert again.rho == pytest.approx(report.rho)


def test_reverse_check_spreads_over_the_range(table) -> None:
    picks = _pick_reverse(table, 8, "cifar10", "test_accuracy", seed=0)
    values = table.column("cifar10", "test_accuracy")[picks]
    assert len(set(picks)) == 8
    assert values.min() < 75 and values.max() > 94  # from poor cells to the best
    assert np.all(np.diff(values) >= 0) and len(set(values.round(2))) >= 6  # spread, increasing


@pytest.mark.parametrize("dataset", ["cifar10", "cifar100", "ImageNet16-120"])
def test_reverse_leaves_out_chance_level_cells_stored_with_float_noise(table, dataset: str) -> None:
    """cifar100 stores chance level as 1.0 for one cell and 1.0000000x for 340: the reverse check
    used to start its range there, training cells whose output is all zeros."""
    values = table.column(dataset, "test_accuracy")
    picks = _pick_reverse(table, 6, dataset, "test_accuracy", seed=1)
    assert values[picks].min() > values.min() + 1e-3


def test_finetune_bad_k(tmp_path: Path, table) -> None:
    cfg = SearchConfig(data="digits", run_dir=str(tmp_path / "r"), max_trials=1, **TINY)
    for k in (2, -1, 2.5, True):
        with pytest.raises(ConfigError, match="k must be a whole number of at least 3: a rank correlation"):
            finetune_from_bench(cfg, table, k=k)


def _table_with_results_only_for(tmp_path: Path, keep: list[int]):
    """The shared table with every cifar10 result blanked (no result) but those of ``keep``."""
    import csv

    from budgetnas.bench import load_nb201

    with open(NB201_CSV, newline="") as f:
        rows = list(csv.reader(f))
    for i, row in enumerate(rows[1:]):
        if i not in keep:
            row[0] = ""
    path = tmp_path / "partial.csv"
    with open(path, "w", newline="") as f:
        csv.writer(f).writerows(rows)
    return load_nb201(path)


def test_finetune_refuses_what_it_would_silently_change(tmp_path: Path, table) -> None:
    run = str(tmp_path / "r")
    with pytest.raises(ConfigError, match="max_trials must be a positive integer.*default k"):
        finetune_from_bench(SearchConfig(data="digits", run_dir=run, max_trials=0, **TINY), table, k=3)
    cfg = SearchConfig(data="digits", run_dir=run, max_trials=3, **TINY)
    with pytest.raises(ConfigError, match="--diverse applies to the top-k cells; --reverse"):
        finetune_from_bench(cfg, table, k=3, reverse=True, diverse=2)
    two = _table_with_results_only_for(tmp_path, [6111, 9930])
    with pytest.raises(ConfigError, match="only 2 distinct benchmark cell.*rank correlation needs at least 3"):
        finetune_from_bench(cfg, two, k=3, progress=False)
    assert not Path(run, "study.db").exists()  # refused before anything was trained


def test_finetune_warns_when_fewer_cells_than_k_fit(tmp_path: Path, table, digits) -> None:
    x, y = digits
    splits = DataSplits(train=from_arrays(x[:200], y[:200]), test=from_arrays(x[1600:1650], y[1600:1650]))
    four = _table_with_results_only_for(tmp_path, [0, 1, 6111, 9930])
    cfg = SearchConfig(data="digits", run_dir=str(tmp_path / "r"), max_trials=1, final_training=False, **TINY)
    with pytest.warns(UserWarning, match="only 4 distinct benchmark cells meet the limits given: training those"):
        report = finetune_from_bench(cfg, four, k=12, data=splits, data_name="digits", progress=False)
    assert sorted(r.bench_index for r in report.rows) == [0, 1, 6111, 9930]


def test_a_run_dir_refuses_another_selection(tmp_path: Path, table, digits) -> None:
    """A second finetune in the same run dir with other options used to add its cells to the first
    one's and rank them together (and a plain search there mixed strategy cells in)."""
    from budgetnas.errors import ResumeError
    from budgetnas.search import Search

    x, y = digits
    splits = DataSplits(train=from_arrays(x[:200], y[:200]), test=from_arrays(x[1600:1650], y[1600:1650]))
    run = str(tmp_path / "run")
    cfg = SearchConfig(data="digits", run_dir=run, max_trials=3, strategy="random", final_training=False, **TINY)
    kw = dict(data=splits, data_name="digits", progress=False)
    first = finetune_from_bench(cfg, table, k=3, dataset="cifar10", max_params=20_000, **kw)
    with pytest.raises(ResumeError, match=r"holds top-k selection of 3 cells on cifar10.*asks for top-k "
                                          r"selection of 3 cells on cifar100.*new --run-dir"):
        finetune_from_bench(cfg, table, k=3, dataset="cifar100", max_params=20_000, **kw)
    with pytest.raises(ResumeError, match="asks for a search by the strategy"):
        Search(cfg, data=splits, data_name="digits", progress=False).run()
    again = finetune_from_bench(cfg, table, k=3, dataset="cifar10", max_params=20_000, **kw)  # same: resumes
    assert sum(status_of(t) == "complete" for t in open_study(Path(run)).get_trials()) == 3
    assert [r.measured for r in again.rows] == [r.measured for r in first.rows]
    # and a plain search's run dir is not taken over by a finetune
    other = SearchConfig(data="digits", run_dir=str(tmp_path / "plain"), max_trials=1, strategy="random",
                         final_training=False, **TINY)
    Search(other, data=splits, data_name="digits", progress=False).run()
    with pytest.raises(ResumeError, match="holds cells chosen otherwise"):
        finetune_from_bench(other, table, k=3, dataset="cifar10", max_params=20_000, **kw)


def test_reverse_honours_the_parameter_limit(table) -> None:
    """--reverse ignored --max-params, and the oversize cells then stood in the report as not run."""
    small = table.params(in_channels=1, num_classes=10, C=4, N=1) <= 5_000
    picks = _pick_reverse(table, 5, "cifar10", "test_accuracy", seed=0, allowed=small)
    assert len(picks) == 5 and small[picks].all()
    with pytest.raises(ConfigError, match="only 0 benchmark cells fit the limits"):
        _pick_reverse(table, 5, "cifar10", "test_accuracy", seed=0, allowed=np.zeros(len(table), bool))


def test_finetune_trains_only_the_benchmark_cells(tmp_path: Path, table, digits) -> None:
    """With more trials than cells (or cells rejected), the strategy used to fill the budget with
    cells of its own, which the transfer report then hid."""
    x, y = digits
    splits = DataSplits(train=from_arrays(x[:300], y[:300]), test=from_arrays(x[1600:1650], y[1600:1650]))
    cfg = SearchConfig(data="digits", run_dir=str(tmp_path / "run"), max_trials=8, strategy="tpe",
                       final_training=False, **TINY)
    report = finetune_from_bench(cfg, table, k=3, dataset="cifar10", reverse=True, data=splits,
                                 data_name="digits", progress=False)
    trials = open_study(tmp_path / "run").get_trials()
    assert sorted(t.user_attrs["record"]["arch"] for t in trials) == sorted(r.arch for r in report.rows)
    assert report.search.stop_reason == "every given cell was evaluated"


def test_finetune_dry_run_forecasts_its_own_cells_and_trains_nothing(tmp_path: Path, table, digits) -> None:
    x, y = digits
    splits = DataSplits(train=from_arrays(x[:300], y[:300]), test=from_arrays(x[1600:1650], y[1600:1650]))
    cfg = SearchConfig(data="digits", run_dir=str(tmp_path / "run"), strategy="random", **TINY)
    kw = dict(k=3, dataset="cifar10", max_params=20_000, data=splits, data_name="digits", progress=False)
    f = finetune_from_bench(cfg, table, dry_run=True, **kw)
    top = table.top_k(3, dataset="cifar10", max_params=20_000, in_channels=1, num_classes=10, C=4, N=1,
                      resolution=8)
    assert [c["arch"] for c in f["cells"]] == [t["arch"] for t in top]
    assert f["trials_affordable"] == 3  # k cells, no other budget
    assert f["seconds_per_trial"]["cheapest"] > 0 and f["seconds_per_trial"]["costliest"] > 0
    assert not (tmp_path / "run" / "study.db").exists() or not open_study(tmp_path / "run").get_trials()
    # After one cell trained, it forecasts the rest; another selection is refused, as the run would.
    finetune_from_bench(replace(cfg, max_trials=1), table, **kw)
    f = finetune_from_bench(cfg, table, dry_run=True, **kw)
    assert f["spent"]["trials"] == 1 and f["trials_affordable"] == 2
    with pytest.raises(Exception, match="Mixing them would rank cells of two selections together"):
        finetune_from_bench(cfg, table, dry_run=True, **{**kw, "dataset": "cifar100"})
