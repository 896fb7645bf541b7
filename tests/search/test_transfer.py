"""The benchmark-to-your-data workflow: top-k from the table trained on real data, Spearman's rho."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import spearmanr

from budgetnas.data import DataSplits, from_arrays
from budgetnas.errors import ConfigError, ResumeError
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
    # (a NaN was ranked as the largest number: 0.8 where scipy says nan; review F, 2026-12-07)
    assert np.isnan(spearman(np.array([1.0, 2.0, np.nan, 4.0]), np.array([1.0, 2.0, 3.0, 4.0])))
    assert np.isnan(spearman(np.array([1.0, 2.0, 3.0, 4.0]), np.array([1.0, np.inf, 3.0, 4.0])))


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
    assert report.test_oracle and "TEST ORACLE" in report.table()
    assert report.best_arch == max(report.rows, key=lambda r: r.measured).arch
    saved = json.loads((tmp_path / "run" / "transfer.json").read_text())
    assert saved["rho"] == pytest.approx(report.rho) and len(saved["rows"]) == 3
    assert saved["units"] == {"bench_value": "percent", "measured": "fraction (0 to 1)"}
    assert all(1 < r["bench_value"] <= 100 and 0 <= r["measured"] <= 1 for r in saved["rows"])
    # (with 3 cells even |rho| = 1 comes by chance one time in 3)
    assert saved["rho_p_value"] == pytest.approx(report.p_value()) and report.p_value() >= 1 / 3
    assert saved["num_classes"] == 10
    assert any("with 3 cells a rho this far from 0 arises by chance" in c for c in saved["caveats"])
    # show says it was a finetune and what it found (it printed a plain search summary).
    from budgetnas.report import format_summary
    from budgetnas.report.summary import json_summary

    shown = format_summary(open_study(tmp_path / "run"), cfg, run_dir=tmp_path / "run")
    assert "finetune (top-k): 3 NB201 cells by cifar100 test_accuracy (TEST ORACLE: benchmark test accuracy), 3 trained" in shown
    assert f"Spearman rho {report.rho:.3f} over 3 cells (permutation p = {report.p_value():.2g})" in shown and "caution: with 3" in shown
    assert json_summary(open_study(tmp_path / "run"), cfg, tmp_path / "run")["transfer"]["rho"] == pytest.approx(report.rho)
    # Running it again resumes: nothing is trained twice.
    again = finetune_from_bench(cfg, table, k=3, dataset="cifar100", max_params=20_000, data=splits,
                                data_name="digits", progress=False)
    trials = open_study(tmp_path / "run").get_trials()
    assert len([t for t in trials if status_of(t) == "complete"]) == 3
    assert again.rho == pytest.approx(report.rho)
    # A lower --max-trials on that run: no "no rho" warning, as its 3 cells give one (a review, 2026-12-07).
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*rank correlation needs")
        fewer = finetune_from_bench(replace(cfg, max_trials=2), table, k=3, dataset="cifar100", max_params=20_000,
                                    data=splits, data_name="digits", progress=False)
    assert fewer.rho == pytest.approx(report.rho)


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


def test_a_trial_budget_too_small_for_a_rank_correlation_is_said_first(tmp_path: Path, table) -> None:
    """(a review, 2026-12-06) A dry run said nothing, and the run trained its cells to report "rho
    not measured"."""
    cfg = SearchConfig(data="digits", run_dir=str(tmp_path / "r"), max_trials=2, **TINY)
    with pytest.warns(UserWarning, match="--max-trials 2 trains fewer than the 3 cells a rank correlation needs"):
        finetune_from_bench(cfg, table, k=3, dry_run=True)


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
    # (with no limit given, the diversity rule was blamed as "the limits given": review F, 2026-12-07)
    with pytest.warns(UserWarning, match=r"only 5 distinct .* and --diverse 6 .*lower --diverse for more"):
        finetune_from_bench(replace(cfg, run_dir=str(tmp_path / "d")), table, k=8, diverse=6, data=splits,
                            data_name="digits", progress=False, dry_run=True)


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
    before = open_study(Path(other.run_dir)).user_attrs["config"]
    with pytest.raises(ResumeError, match="holds cells chosen otherwise"):
        finetune_from_bench(replace(other, max_trials=None, strategy="tpe"), table, k=3,
                            dataset="cifar10", max_params=20_000, **kw)
    # A refused session leaves the study as it was: it stored its settings (max_trials k, its own
    # strategy) first, which workers and `show` read: a worker then trained cells nobody paid for
    # (review A, 2026-12-07).
    assert open_study(Path(other.run_dir)).user_attrs["config"] == before


def test_reverse_honours_the_parameter_limit(table) -> None:
    """--reverse ignored --max-params, and the oversize cells then stood in the report as not run."""
    small = table.params(in_channels=1, num_classes=10, C=4, N=1) <= 5_000
    picks = _pick_reverse(table, 5, "cifar10", "test_accuracy", seed=0, allowed=small)
    assert len(picks) == 5 and small[picks].all()
    with pytest.raises(ConfigError, match="only 0 distinct benchmark cell.* a rank correlation needs at least 3"):
        _pick_reverse(table, 5, "cifar10", "test_accuracy", seed=0, allowed=np.zeros(len(table), bool))
    # Fewer cells than k fit: those there are, said, as the top-k check does (it refused: a review,
    # 2026-12-07), each once and spread over the range as before.
    n = int(small.sum())
    with pytest.warns(UserWarning, match=r"only \d+ distinct benchmark cells .* training those, not k=5000") as seen:
        every = _pick_reverse(table, 5000, "cifar10", "test_accuracy", seed=0, allowed=small)
    assert 3 <= len(every) < n and len(set(every)) == len(every) and small[every].all()
    assert seen[0].filename == __file__


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
    with pytest.raises(ResumeError, match="Mixing them would rank cells of two selections together"):
        finetune_from_bench(cfg, table, dry_run=True, **{**kw, "dataset": "cifar100"})


def test_ties_are_ranked_as_rho_counts_them() -> None:
    """The table printed ranks 1, 2 for cells tied on one side (the benchmark's top two CIFAR-10
    cells are both 94.3733 %; validation accuracies on small data tie often), while rho gave them
    1.5 each; and accuracies the benchmark stores with float noise (70.29333333333333 and
    70.29333326822916: equal) were ranked apart."""
    from budgetnas.search.budget import Spent
    from budgetnas.search.study import SearchResult
    from budgetnas.search.transfer import TransferReport, TransferRow, tie_float_noise

    noisy = np.array([70.29333333333333, 70.29333326822916, 70.1, 69.5])
    assert list(rankdata(tie_float_noise(noisy))) == [3.5, 3.5, 2.0, 1.0]
    measured = np.array([0.5, 0.6, 0.4, 0.3])
    assert spearman(tie_float_noise(noisy), measured) == pytest.approx(spearmanr(noisy.round(4), measured).statistic)
    assert list(tie_float_noise(np.array([10.0, 11.0, 12.0]))) == [10.0, 11.0, 12.0]  # real gaps stay
    rows = [TransferRow("a", 0, 94.37333333333333, 0.25, 1000, "complete"),
            TransferRow("b", 1, 94.37333333333333, 0.25, 1000, "complete"),
            TransferRow("c", 2, 94.36, 0.5, 1000, "complete")]
    result = SearchResult(run_dir=Path("."), best_arch="c", best_trial=2, best_metrics={}, test_metrics={},
                          spent=Spent(trials=3, device_seconds=1.0, cost=0.0, wall_seconds=1.0), stop_reason="x")
    report = TransferReport(mode="top-k", dataset="cifar10", bench_metric="test_accuracy", test_oracle=True,
                            metric="accuracy", rows=rows, rho=spearman(np.array([94.37333333333333] * 2 + [94.36]),
                                                                       np.array([0.25, 0.25, 0.5])),
                            best_arch="c", test_metrics={}, search=result)
    ranks = [line.split()[0::3][:2] for line in report.table().splitlines()[1:4]]  # bench rank, your rank
    assert ranks == [["1.5", "2.5"], ["1.5", "2.5"], ["3", "1"]]
    assert "-1.000 over 3 cells" in report.table()


def test_transfer_json_is_valid_json_when_rho_is_not_measured(tmp_path: Path, table, digits) -> None:
    """Below 3 cells trained rho is NaN, and transfer.json held `"rho": NaN`, which JSON readers
    other than Python's (jq, JavaScript, strict parsers) refuse: it is null now."""
    x, y = digits
    splits = DataSplits(train=from_arrays(x[:200], y[:200]), test=from_arrays(x[1600:1650], y[1600:1650]))
    cfg = SearchConfig(data="digits", run_dir=str(tmp_path / "run"), max_trials=2, final_training=False, **TINY)
    report = finetune_from_bench(cfg, table, k=3, data=splits, data_name="digits", progress=False)
    assert np.isnan(report.rho) and "not measured (only 2 cell(s) trained" in report.table()

    def refuse(constant: str) -> None:
        raise ValueError(f"not JSON: {constant}")

    saved = json.loads((tmp_path / "run" / "transfer.json").read_text(), parse_constant=refuse)
    assert saved["rho"] is None and [r["status"] for r in saved["rows"]].count("not run") == 1


def test_finetune_in_which_every_cell_failed_exits_non_zero(tmp_path: Path, table, monkeypatch,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    from budgetnas.cli import main

    monkeypatch.setenv("BUDGETNAS_INJECT_FAULTS", "0:nan,1:nan,2:nan")
    run = tmp_path / "run"
    assert main(["finetune", "--from-bench", str(NB201_CSV), "--k", "3", "--data", "digits", "-C", "4", "-N", "1",
                 "--final-C", "4", "--final-N", "1", "--epochs", "1", "--quiet", "--run-dir", str(run)]) == 1
    captured = capsys.readouterr()
    assert captured.out.count("[failed]") == 3 and "not measured" in captured.out
    assert "error: every trial failed (3 failed)" in captured.err and (run / "transfer.json").exists()
    # One cell failed: rho is not measured because of it, and more --max-trials would not help (the
    # message said "raise --max-trials or the budget and run again to train the rest", which then
    # trains nothing: "every given cell was evaluated").
    monkeypatch.setenv("BUDGETNAS_INJECT_FAULTS", "0:nan")
    args = ["finetune", "--from-bench", str(NB201_CSV), "--k", "3", "--data", "digits", "-C", "4", "-N", "1",
            "--final-C", "4", "--final-N", "1", "--epochs", "1", "--quiet", "--no-final", "--max-trials", "2",
            "--run-dir", str(tmp_path / "one")]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert ("not measured (only 1 cell(s) trained, 1 failed, 1 were not run; a rank correlation needs at least "
            "3; `budgetnas show` gives the reasons: fix the cause and run again with a new --run-dir; raise "
            "--max-trials or the budget and run again to train the rest)") in out


def test_a_rho_from_few_cells_near_chance_or_benchmark_ties_comes_with_its_caveats() -> None:
    """(review 2026-12-06) "0.949 over 4 cells" was printed bare for four cells whose benchmark
    values span 0.03 points, one of which scored 9 % on 10 classes (below chance)."""
    import itertools

    from budgetnas.search.budget import Spent
    from budgetnas.search.study import SearchResult
    from budgetnas.search.transfer import TransferReport, TransferRow, permutation_p

    # The p-value against brute force: all orderings of 5 cells, and a perfect ranking of 3 (1 in 3).
    a, b = np.array([1.0, 2, 3, 4, 5]), np.array([0.2, 0.1, 0.4, 0.3, 0.5])
    rho = spearman(a, b)
    hits = sum(abs(spearman(a, b[list(order)])) >= abs(rho) - 1e-12 for order in itertools.permutations(range(5)))
    assert permutation_p(a, b) == pytest.approx(hits / 120)
    assert permutation_p(a[:3], a[:3]) == pytest.approx(1 / 3)
    assert permutation_p(np.arange(12.0), np.arange(12.0)) < 1e-3  # (sampled: never 0)

    def report(values, measured, classes=10):
        rows = [TransferRow(f"a{i}", i, v, m, 1000, "complete") for i, (v, m) in enumerate(zip(values, measured))]
        result = SearchResult(run_dir=Path("."), best_arch="a0", best_trial=0, best_metrics={}, test_metrics={},
                              spent=Spent(trials=len(rows)), stop_reason="x")
        rho = spearman(np.array(values), np.array(measured))
        return TransferReport(mode="top-k", dataset="cifar10", bench_metric="test_accuracy", test_oracle=True,
                              metric="accuracy", rows=rows, rho=rho, best_arch="a0", test_metrics={},
                              search=result, num_classes=classes)

    weak = report([94.37, 94.37, 94.36, 94.34], [0.1672, 0.1324, 0.1150, 0.0906])
    text = weak.table()
    assert "0.949 over 4 cells (permutation p = " in text
    assert "caution: with 4 cells a rho this far from 0 arises by chance" in text
    assert "caution: 3 of the 4 cells scored near chance level (under 15 % with 10 classes)" in text
    assert text.count("[near chance]") == 3
    assert "caution: the benchmark's values of these cells span 0.03 points" in text
    strong = report(list(np.linspace(60, 94, 10)), list(np.linspace(0.5, 0.9, 10)))
    assert strong.caveats() == [] and "caution" not in strong.table()
    # (review, 2026-12-07) Pruned cells are left out of rho, and not at random: said so.
    pruned = report(list(np.linspace(60, 94, 10)), list(np.linspace(0.5, 0.9, 10)))
    for r in pruned.rows[:4]:
        r.measured, r.status = None, "pruned"
    assert "caution: 4 of the 10 cells were pruned and are left out: rho ranks only the cells that trained to " \
        "the end" in pruned.table()


def test_an_interrupted_finetune_says_to_run_the_same_command_again() -> None:
    """(review 2026-12-06) After Ctrl-C the cells not run were met with "raise --max-trials or the
    budget", though the same command resumes them."""
    from budgetnas.search.budget import Spent
    from budgetnas.search.study import SearchResult
    from budgetnas.search.transfer import TransferReport, TransferRow

    rows = [TransferRow("a", 0, 94.0, 0.5, 1000, "complete"), TransferRow("b", 1, 93.0, None, None, "not run"),
            TransferRow("c", 2, 92.0, None, None, "not run")]
    for preempted, advice in ((True, "run the same command again to train the rest"),
                              (False, "raise --max-trials or the budget and run again")):
        result = SearchResult(run_dir=Path("."), best_arch="a", best_trial=0, best_metrics={}, test_metrics={},
                              spent=Spent(trials=1), stop_reason="x", preempted=preempted)
        report = TransferReport(mode="top-k", dataset="cifar10", bench_metric="test_accuracy", test_oracle=True,
                                metric="accuracy", rows=rows, rho=float("nan"), best_arch="a", test_metrics={},
                                search=result, num_classes=10)
        assert advice in report.table()


def test_reverse_picks_one_cell_per_canonical_class(table) -> None:
    # Two cells computing one function were picked both: trained once ("cached") and counted twice
    # in rho and its permutation p-value (a review, 2026-12-06: 8 such pairs at k=50 on cifar10).
    for dataset, k in (("cifar10", 50), ("cifar100", 30)):
        picks = _pick_reverse(table, k, dataset, "test_accuracy", seed=0)
        assert len({table.canonical(i) for i in picks}) == k == len(picks)


def test_finetune_ranks_by_an_accuracy_says_test_oracle_by_its_metric_and_reads_dataset_spellings(
        tmp_path: Path, table, digits) -> None:
    from budgetnas.bench import load_nb201
    from budgetnas.errors import DataError
    from tests.bench.test_bench_formats import write_nats_file

    x, y = digits
    splits = DataSplits(train=from_arrays(x[:300], y[:300]), test=from_arrays(x[1600:1650], y[1600:1650]))
    cfg = SearchConfig(data="digits", run_dir=str(tmp_path / "run"), strategy="random", **TINY)
    kw = dict(k=3, data=splits, data_name="digits", progress=False, dry_run=True)
    nats = load_nb201(write_nats_file(tmp_path))  # (an official file: validation accuracy and times too)
    with pytest.raises(ConfigError, match="ranks the cells by the benchmark's accuracy.*got 'train_time'"):
        finetune_from_bench(cfg, nats, metric="train_time", **kw)  # (it took the fastest cells as the best)
    with pytest.raises(DataError, match="no_such"):
        finetune_from_bench(cfg, table, metric="no_such", **kw)
    oracle = finetune_from_bench(cfg, nats, metric="test_accuracy", **kw)
    assert oracle["test_oracle"] is True  # (was False)
    # (review, 2026-12-07: it said "the table has no validation accuracy" of a table that has)
    assert oracle["test_oracle_why"] == "you chose a test metric"
    assert finetune_from_bench(cfg, table, **kw)["test_oracle_why"] == "the table has no validation accuracy"
    assert finetune_from_bench(cfg, nats, **kw)["test_oracle"] is False  # (valid_accuracy)
    # A run made with --bench-dataset cifar10 resumes as CIFAR-10 (refused as another selection).
    finetune_from_bench(replace(cfg, max_trials=1), table, **{**kw, "dry_run": False})
    assert finetune_from_bench(cfg, table, **{**kw, "dataset": "CIFAR-10"})["spent"]["trials"] == 1


@pytest.mark.parametrize("reverse", [True, False])
def test_a_run_from_before_the_rule_changed_resumes_with_its_own_cells(tmp_path: Path, table, digits,
                                                                       reverse: bool) -> None:
    # (the diff review, 2026-12-06) --reverse now spreads one cell per canonical class, so an older
    # run's picks differed from today's and every older --reverse run was refused as "another
    # selection"; so was one that kept its dataset as spelled ("CIFAR-10"). Both resume now. So does
    # a top-k run from before ties by float noise were ordered by index (2026-12-07).
    x, y = digits
    splits = DataSplits(train=from_arrays(x[:300], y[:300]), test=from_arrays(x[1600:1650], y[1600:1650]))
    cfg = SearchConfig(data="digits", run_dir=str(tmp_path / "run"), strategy="random", **TINY)
    kw = dict(k=3, reverse=reverse, data=splits, data_name="digits", progress=False)
    finetune_from_bench(replace(cfg, max_trials=1), table, **kw)
    study = open_study(tmp_path / "run")
    sel = study.user_attrs["selection"]
    from budgetnas.search.records import record_of

    trained = table.index(record_of(study.get_trials()[0])["arch"])
    old_cells = [trained, *[i for i in (6111, 9930, 13714, 3731, 4418) if i not in sel["cells"]][:2]]
    study.set_user_attr("selection", {**sel, "dataset": "CIFAR-10", "cells": old_cells})  # as an older run kept it
    f = finetune_from_bench(cfg, table, dry_run=True, **kw)
    assert [c["index"] for c in f["cells"]] == old_cells and f["spent"]["trials"] == 1
    # (a dry run changes nothing: it respelled the stored selection, 2026-12-07)
    assert open_study(tmp_path / "run").user_attrs["selection"]["dataset"] == "CIFAR-10"
    with pytest.raises(ResumeError, match="Mixing them would rank cells of two selections together"):
        finetune_from_bench(cfg, table, dry_run=True, **{**kw, "k": 4})  # (another spread: refused still)


def test_the_runs_own_parameter_cap_picks_the_cells(tmp_path: Path, table, digits) -> None:
    """(review, 2026-12-07) With SearchConfig(max_params=...) and no max_params keyword, the top-k
    took cells over the cap, which the search rejected: "not run", and running again never trained
    them."""
    x, y = digits
    splits = DataSplits(train=from_arrays(x[:300], y[:300]), test=from_arrays(x[1600:1650], y[1600:1650]))
    cap = 18_000
    cfg = SearchConfig(data="digits", run_dir=str(tmp_path / "run"), max_params=cap, **TINY)
    got = finetune_from_bench(cfg, table, k=3, dataset="cifar10", data=splits, data_name="digits",
                              progress=False, dry_run=True)
    want = table.top_k(3, dataset="cifar10", max_params=cap, in_channels=1, num_classes=10, C=4, N=1,
                       resolution=8)
    assert [c["index"] for c in got["cells"]] == [int(p["index"]) for p in want]
    assert [c["index"] for c in got["cells"]] != [int(p["index"]) for p in table.top_k(
        3, dataset="cifar10", in_channels=1, num_classes=10, C=4, N=1, resolution=8)]  # (the cap matters here)
