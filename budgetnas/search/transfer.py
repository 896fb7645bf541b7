"""From the benchmark to your data: train the benchmark's top cells on your images and check
whether the benchmark's ranking held (Spearman's rho), or the reverse check across the range.

Example::

    table = load_nb201("nats_tss_200ep_test.csv")
    cfg = SearchConfig(data="fashion-mnist", run_dir="runs/transfer", max_trials=12)
    report = finetune_from_bench(cfg, table, k=12, dataset="cifar10", max_params=1e6)
    print(report.rho, report.best_arch)
"""

from __future__ import annotations

import itertools
import json
import math
import warnings
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from budgetnas._files import write_text_atomic
from budgetnas.bench import NB201Table, normalize_dataset
from budgetnas.bench.table import tie_float_noise
from budgetnas.data import DataSplits
from budgetnas.errors import ConfigError, user_stacklevel
from budgetnas.search.config import SearchConfig
from budgetnas.search.records import record_of, status_of, to_jsonable
from budgetnas.search.study import Search, SearchResult, named_selection, open_study


def rankdata(x: np.ndarray) -> np.ndarray:
    """Ranks 1..n, ties given their average rank (as scipy.stats.rankdata)."""
    x = np.asarray(x, dtype=float)
    order = np.argsort(x, kind="mergesort")
    ranks = np.empty(len(x))
    sorted_x = x[order]
    i = 0
    while i < len(x):
        j = i
        while j + 1 < len(x) and sorted_x[j + 1] == sorted_x[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def _centered_ranks(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray, float] | None:
    """The ranks of ``a`` and ``b`` less their means, and the product of their norms (Spearman's
    denominator); None below 3 pairs, where a value is not a number, or where one side is all ties
    (no ranking)."""
    if len(a) != len(b):
        raise ValueError("spearman needs two sequences of equal length")
    if len(a) < 3 or not (np.isfinite(np.asarray(a, dtype=float)).all()
                          and np.isfinite(np.asarray(b, dtype=float)).all()):
        return None  # (a NaN was ranked as the largest value, as a number: review F, 2026-12-07)
    ra, rb = rankdata(a), rankdata(b)
    ra -= ra.mean()
    rb -= rb.mean()
    denom = float(np.sqrt((ra**2).sum() * (rb**2).sum()))
    return (ra, rb, denom) if denom > 0 else None


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rank correlation (Pearson correlation of the ranks); NaN below 3 pairs or where a
    value is NaN or infinite."""
    centered = _centered_ranks(a, b)
    if centered is None:
        return float("nan")
    ra, rb, denom = centered
    return float((ra * rb).sum() / denom)


def permutation_p(a: np.ndarray, b: np.ndarray, *, draws: int = 20000, seed: int = 0) -> float:
    """Two-sided p-value of Spearman's rho between ``a`` and ``b`` under no association: the share
    of orderings of ``b`` whose |rho| is at least the observed one (ties kept as they are). Exact
    over all orderings up to 8 cells, else from ``draws`` seeded random ones; NaN below 3 pairs.

    With 3 cells even a perfect ranking (rho = 1) has p = 1/3: one ordering in 6 gives |rho| = 1
    by chance, each way."""
    centered = _centered_ranks(a, b)
    if centered is None:
        return float("nan")
    ra, rb, denom = centered
    rho = float((ra * rb).sum() / denom)
    n = len(rb)
    if n <= 8:
        rhos = (rb[np.array(list(itertools.permutations(range(n))))] @ ra) / denom
        return float(np.mean(np.abs(rhos) >= abs(rho) - 1e-12))
    orders = np.argsort(np.random.default_rng(seed).random((draws, n)), axis=1)
    rhos = (rb[orders] @ ra) / denom
    return float((np.sum(np.abs(rhos) >= abs(rho) - 1e-12) + 1) / (draws + 1))  # (never 0 from a sample)


@dataclass
class TransferRow:
    arch: str
    bench_index: int
    bench_value: float
    measured: float | None
    params: int | None
    status: str


@dataclass
class TransferReport:
    """The benchmark's ranking beside the one measured on your data."""

    mode: str  # "top-k" or "reverse"
    dataset: str
    bench_metric: str
    test_oracle: bool
    metric: str
    rows: list[TransferRow]
    rho: float
    best_arch: str | None
    test_metrics: dict[str, float]
    search: SearchResult
    searcher: Search | None = None
    num_classes: int | None = None  # of your data: where chance level lies
    # why a test oracle ranked the cells: the user's choice, or the table's want of validation results
    oracle_why: str = "the table has no validation accuracy"
    _p_value: float | None = field(default=None, init=False, repr=False, compare=False)

    # A cell whose measured score is under this many times chance level (1 / classes) learned
    # next to nothing in the search's proxy training: its rank is noise.
    NEAR_CHANCE = 1.5
    # Benchmark values this close (percent points) are within the spread of NB201's own results
    # over its seeds (a few tenths of a point for most cells): the benchmark does not rank them.
    BENCH_NOISE = 0.5

    def p_value(self) -> float:
        """The permutation p-value of ``rho`` (see :func:`permutation_p`), computed once: the table,
        its caveats and transfer.json all read it."""
        if self._p_value is None:
            done = [r for r in self.rows if r.measured is not None]
            self._p_value = permutation_p(tie_float_noise(np.array([r.bench_value for r in done])),
                                          np.array([r.measured for r in done]))
        return self._p_value

    def near_chance(self) -> list[TransferRow]:
        """The measured cells that scored near chance level (none when the classes are unknown)."""
        if not self.num_classes:
            return []
        return [r for r in self.rows if r.measured is not None and r.measured < self.NEAR_CHANCE / self.num_classes]

    def caveats(self) -> list[str]:
        """What makes this rho weak evidence, in words: few cells, cells that did not learn, and
        benchmark values too close for the benchmark itself to rank."""
        done = [r for r in self.rows if r.measured is not None]
        if len(done) < 3 or self.rho != self.rho:
            return []
        notes = []
        p = self.p_value()
        if p > 0.05:
            notes.append(f"with {len(done)} cells a rho this far from 0 arises by chance with probability "
                         f"{p:.2g} (permutation test): a hint, not evidence; train more cells (--k) for a ranking "
                         "that says something")
        low = self.near_chance()
        if low:
            notes.append(f"{len(low)} of the {len(done)} cells scored near chance level (under "
                         f"{100 * self.NEAR_CHANCE / self.num_classes:.3g} % with {self.num_classes} classes): they "
                         "learned next to nothing in the search's training, so their ranks are noise; train "
                         "longer (--epochs) or on more data (--subset)")
        pruned = [r for r in self.rows if r.status == "pruned"]
        if pruned:  # (left out of rho; not at random: each scored below the others at a rung)
            notes.append(f"{len(pruned)} of the {len(self.rows)} cells were pruned and are left out: rho ranks "
                         "only the cells that trained to the end, and the pruned ones scored below them when "
                         "stopped, so it can overstate the agreement; run without --pruner for a ranking of all")
        values = [r.bench_value for r in done]
        if max(values) - min(values) < self.BENCH_NOISE:
            notes.append(f"the benchmark's values of these cells span {max(values) - min(values):.2f} points, within "
                         "the spread of NB201's own results over its seeds: the benchmark itself does not rank them "
                         "(--reverse trains cells across its range instead)")
        return notes

    def table(self) -> str:
        lines = [f"{'bench rank':>10}  {'bench ' + self.bench_metric + ' %':>24}  {'your val ' + self.metric + ' %':>22}  "
                 f"{'your rank':>9}  {'final params':>12}  architecture"]
        measured = [r for r in self.rows if r.measured is not None]
        # Ranks as rho counts them: equal values share their mean rank (1.5, 1.5, 3, ...).
        your_rank = dict(zip(map(id, measured), rankdata(-np.array([r.measured for r in measured]))))
        rows = sorted(self.rows, key=lambda r: -r.bench_value)
        low = self.near_chance()
        bench_rank = rankdata(-tie_float_noise(np.array([r.bench_value for r in rows])))
        for br, r in zip(bench_rank, rows):
            m = "-" if r.measured is None else f"{100 * r.measured:.2f}"  # (the benchmark's unit)
            yr = f"{your_rank[id(r)]:g}" if id(r) in your_rank else "-"
            p = "-" if r.params is None else f"{r.params / 1e6:.3f}M"
            note = "" if r.status == "complete" else f" [{r.status}]"
            if r in low:
                note += " [near chance]"
            lines.append(f"{br:>10g}  {r.bench_value:>24.2f}  {m:>22}  {yr:>9}  {p:>12}  {r.arch}{note}")
        oracle = f" (TEST ORACLE: the benchmark's test accuracy, {self.oracle_why})" if self.test_oracle else ""
        if len(measured) < 3 or self.rho != self.rho:  # (nan: too few cells, or all scored alike)
            if len(measured) >= 3:
                why = "every cell scored the same on one side, so there is no ranking to compare"
            else:
                # Why the others have no result, and what gets one: running again with a larger
                # budget trains the cells not run, but not those that failed or were pruned.
                unmeasured = [r.status for r in self.rows if r.measured is None]
                advice = {"rejected": ("were over --max-params", "raise --max-params or pick cells under it"),
                          "failed": ("failed", ("`budgetnas show` gives the reasons: fix the cause and run "
                                                "again with a new --run-dir")),
                          "pruned": ("were pruned", "run without --pruner to train every cell fully"),
                          "not run": ("were not run",
                                      "run the same command again to train the rest" if self.search.preempted else
                                      "raise --max-trials or the budget and run again to train the rest")}
                seen = [s for s in advice if s in unmeasured]
                why = (f"only {len(measured)} cell(s) trained"
                       + "".join(f", {unmeasured.count(s)} {advice[s][0]}" for s in seen)
                       + "; a rank correlation needs at least 3"
                       + "".join(f"; {advice[s][1]}" for s in seen))
            lines.append(f"Spearman rho between the NB201 {self.dataset} ranking{oracle} and yours: "
                         f"not measured ({why})")
        else:
            lines.append(f"Spearman rho between the NB201 {self.dataset} ranking{oracle} and yours: "
                         f"{self.rho:.3f} over {len(measured)} cells (permutation p = {self.p_value():.2g})")
            lines.extend(f"  caution: {c}" for c in self.caveats())
        return "\n".join(lines)


def _pick_reverse(table: NB201Table, k: int, dataset: str, metric: str, seed: int,
                  allowed: np.ndarray | None = None) -> list[int]:
    """k cells at evenly spaced values from the worst to the best, leaving out the cells at the
    table's minimum (chance level: cells whose output is all zeros), one per canonical class (two
    cells computing the same function are one network: picked twice, it was trained once and
    counted twice in rho and its p-value); ties broken by ``seed``. ``allowed``: a mask of the
    cells that may be picked (e.g. those under a parameter limit)."""
    values = table.column(dataset, metric)
    ok = np.flatnonzero(np.isfinite(values) & (True if allowed is None else allowed))
    seen: set[str] = set()
    first = []
    for i in ok.tolist():  # (the first cell of each canonical class, in index order)
        canonical = table.canonical(i)
        if canonical not in seen:
            seen.add(canonical)
            first.append(i)
    ok = np.asarray(first, dtype=np.int64)
    rng = np.random.default_rng(seed)
    ok = ok[rng.permutation(len(ok))]
    # chance level: the table stores it with float noise (cifar100 has 340 cells at 1.0000000x %)
    floor = values[ok].min() if len(ok) else 0.0
    ok = ok[values[ok] > floor + 1e-6 * max(1.0, abs(floor))]
    if len(ok) < 3:
        raise ConfigError(f"only {len(ok)} distinct benchmark cell(s) within the limits given score above "
                          "chance level, and a rank correlation needs at least 3: raise --max-params")
    if len(ok) < k:
        # (as the top-k check does: those there are, said; it refused, a review found, 2026-12-07)
        warnings.warn(f"only {len(ok)} distinct benchmark cells within the limits given score above chance "
                      f"level: training those, not k={k}", stacklevel=user_stacklevel())
        k = len(ok)
    lo, hi = values[ok].min(), values[ok].max()
    chosen: list[int] = []
    for target in np.linspace(lo, hi, k):
        dist = np.abs(values[ok] - target)
        dist[np.isin(ok, chosen)] = np.inf
        chosen.append(int(ok[int(np.argmin(dist))]))
    return chosen


def _stored_cells(search: Search, mode: str, dataset: str, metric: str, k: int, max_params: float | None,
                  diverse: int) -> list[int] | None:
    """The cells a run being resumed picked, where it asked for this same selection: the rules
    that pick them have changed (a --reverse spread one per canonical class since 2026-12-06; the
    top-k order ties values apart by float noise alone by index since 2026-12-07), and a resumed run
    goes on with its own cells rather than be refused for another selection."""
    study = search._existing_study()
    saved = named_selection(study.user_attrs.get("selection")) if study is not None else None
    if not saved or saved.get("mode") != mode or not saved.get("cells"):
        return None
    if not (saved.get("dataset") == dataset and saved.get("metric") == metric and saved.get("k") == k
            and saved.get("max_params") == max_params and (saved.get("diverse") or 0) == (diverse or 0)):
        return None
    return [int(i) for i in saved["cells"]]


def _check_bench_metric(table: NB201Table, dataset: str, metric: str) -> None:
    """The benchmark metric that ranks the cells must be an accuracy: a training time ranked
    lowest first (top_k's order for it), and rho compared seconds with accuracy as if higher were
    better (a review, 2026-12-06)."""
    table.column(dataset, metric)  # (a metric the file lacks: its own message, naming what it has)
    if "accuracy" not in metric:
        raise ConfigError(f"--bench-metric ranks the cells by the benchmark's accuracy: valid_accuracy, "
                          f"test_accuracy or their _12ep versions, got {metric!r}")


def finetune_from_bench(config: SearchConfig, table: NB201Table, *, k: int = 12, dataset: str = "cifar10",
                        metric: str | None = None, max_params: float | None = None, diverse: int = 0,
                        reverse: bool = False, data: DataSplits | None = None, data_name: str | None = None,
                        progress: bool = True, dry_run: bool = False) -> TransferReport | dict[str, Any]:
    """Train the benchmark's top-``k`` cells (or, with ``reverse``, ``k`` cells spread over its range)
    on the user's data with the normal search machinery (budget, ledger, resume), then report
    Spearman's rho between the two rankings. The best measured cell gets the final training.

    ``dry_run=True`` trains nothing: it returns :meth:`Search.dry_run`'s forecast for these cells
    (one trial's seconds for the cheapest and costliest of them, how many the budget buys) with
    the selection under ``"cells"``."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 3:
        raise ConfigError(f"k must be a whole number of at least 3: a rank correlation needs three cells, "
                          f"got {k!r}")
    if config.max_trials is not None and (isinstance(config.max_trials, bool) or config.max_trials < 1):
        raise ConfigError(f"max_trials must be a positive integer (how many of the k cells to train now; "
                          f"default k), got {config.max_trials!r}")
    if reverse and diverse:
        raise ConfigError("--diverse applies to the top-k cells; --reverse spreads its k cells over the "
                          "benchmark's range instead: give one or the other")
    if max_params is None:  # (the run's own cap picks the cells too: with SearchConfig(max_params=...)
        # alone, cells over it were picked, rejected by the search and shown as "not run", the advice
        # to run again never training them: a review, 2026-12-07)
        max_params = config.max_params
    # (as the run keeps it: another spelling of the same dataset, CIFAR-10 for cifar10, resumes)
    dataset = normalize_dataset(dataset, table.datasets)
    metric = metric or table.search_metric(dataset)
    _check_bench_metric(table, dataset, metric)
    search = Search(replace(config, max_trials=config.max_trials or k), data=data, data_name=data_name,
                    progress=progress)
    search.candidates_only = True  # the benchmark's cells only: no strategy fills the budget up
    if config.max_trials is not None and config.max_trials < 3:
        # (a dry run said nothing, and the run trained its cells to report "rho not measured": a
        # review, 2026-12-06; not where earlier sessions trained 3 or more already, whose rho this
        # run reports: a review, 2026-12-07)
        study = search._existing_study()
        trained = 0 if study is None else sum(status_of(t) in ("complete", "cached") for t in study.get_trials(deepcopy=False))
        if trained < 3:
            warnings.warn(f"--max-trials {config.max_trials} trains fewer than the 3 cells a rank correlation needs: "
                          "no rho until a later session with a larger --max-trials trains more",
                          stacklevel=user_stacklevel())
    prepared = search._load()
    if reverse:
        allowed = None
        if max_params is not None:
            allowed = table.params(in_channels=prepared.in_channels, num_classes=prepared.num_classes,
                                   C=config.final_C, N=config.final_N) <= max_params
        indices = _stored_cells(search, "reverse", dataset, metric, k, max_params, 0) or \
            _pick_reverse(table, k, dataset, metric, config.seed, allowed)
    else:
        indices = _stored_cells(search, "top-k", dataset, metric, k, max_params, diverse) or [
            int(p["index"]) for p in table.top_k(k, dataset=dataset, metric=metric, max_params=max_params,
                                                 in_channels=prepared.in_channels, num_classes=prepared.num_classes,
                                                 C=config.final_C, N=config.final_N, resolution=prepared.resolution,
                                                 diverse=diverse)]
        if len(indices) < 3:
            raise ConfigError(f"only {len(indices)} distinct benchmark cell(s) meet the limits given, and a "
                              "rank correlation needs at least 3: raise --max-params or lower --diverse")
        if len(indices) < k:
            # (blamed "the limits given" where none was given: at most 5 cells differ on every edge)
            limits = "the limits given" + (f" and --diverse {diverse} (cells differing on that many edges)"
                                           if diverse else "")
            warnings.warn(f"only {len(indices)} distinct benchmark cells meet {limits}: training those, not k={k}"
                          + ("; lower --diverse for more" if diverse else ""), stacklevel=user_stacklevel())
    search.candidates = [table.arch_str(i) for i in indices]
    test_oracle = metric.startswith("test_")  # (ranked by a test accuracy, whatever else the file has)
    # (said "the table has no validation accuracy" where the user chose a test metric on one that
    # has: a review, 2026-12-07; `bench top` told them apart)
    oracle_why = table.test_oracle_reason(dataset)
    search.selection = to_jsonable({
        "mode": "reverse" if reverse else "top-k", "dataset": dataset, "metric": metric, "k": k,
        "max_params": max_params, "diverse": diverse, "cells": indices})
    if dry_run:
        if search.budget.max_trials is not None and search.budget.max_trials > len(indices):
            search.budget = replace(search.budget, max_trials=len(indices))  # (what it buys: these cells at most)
        forecast = search.dry_run()
        values = table.column(dataset, metric)
        forecast["bench_metric"] = metric
        forecast["test_oracle"] = test_oracle
        forecast["test_oracle_why"] = oracle_why
        forecast["cells"] = [{"index": i, "arch": a, "bench_value": float(values[i])}
                             for i, a in zip(indices, search.candidates)]
        return forecast
    result = search.run()
    study = open_study(search.run_dir, storage=config.storage, study_name=config.study_name)
    by_arch = {record_of(t).get("arch"): t for t in study.get_trials(deepcopy=False)
               if status_of(t) in ("complete", "cached", "pruned", "failed", "rejected")}
    bench_values = table.column(dataset, metric)
    rows = []
    for i in indices:
        arch = table.arch_str(i)
        t = by_arch.get(arch)
        measured = None
        if t is not None and status_of(t) in ("complete", "cached"):
            measured = float(t.values[0])
        rows.append(TransferRow(arch=arch, bench_index=i, bench_value=float(bench_values[i]), measured=measured,
                                params=record_of(t).get("params") if t is not None else None,
                                status=status_of(t) if t is not None else "not run"))
    done = [r for r in rows if r.measured is not None]
    rho = spearman(tie_float_noise(np.array([r.bench_value for r in done])),
                   np.array([r.measured for r in done]))
    report = TransferReport(mode="reverse" if reverse else "top-k", dataset=dataset, bench_metric=metric,
                            test_oracle=test_oracle, oracle_why=oracle_why,
                            metric=config.metric, rows=rows, rho=rho, best_arch=result.best_arch,
                            test_metrics=result.test_metrics, search=result, searcher=search,
                            num_classes=prepared.num_classes)
    write_text_atomic(Path(search.run_dir, "transfer.json"), json.dumps(to_jsonable({
        "mode": report.mode, "dataset": dataset, "bench_metric": metric, "test_oracle": report.test_oracle,
        "metric": report.metric, "rho": None if math.isnan(rho) else rho,  # (NaN is not JSON)
        "rho_p_value": None if math.isnan(rho) else report.p_value(), "caveats": report.caveats(),
        "num_classes": prepared.num_classes,
        # (each side in its own unit, as stored: the table's percent, budgetnas's fractions)
        "units": {"bench_value": "percent", "measured": "fraction (0 to 1)"},
        "best_arch": report.best_arch, "test_metrics": report.test_metrics,
        "rows": [asdict(r) for r in rows]}), indent=2) + "\n")
    return report


