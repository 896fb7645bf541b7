"""Simulated search: run search strategies against the NAS-Bench-201 table, many times, in seconds.

Each *query* evaluates one architecture by looking it up: the strategy sees the table's search
metric (validation accuracy when the loaded file has it; otherwise test accuracy, which makes
the run a **test oracle**: the strategy is steered by the very numbers it is judged on, so the
results are optimistic, and every output says so). The best-so-far architecture is tracked by the
search metric, and what is reported is its **test** accuracy, as in the NAS-Bench-201 paper.

**Not NB201's exact protocol.** NB201's ``simulate_train_eval`` shows a strategy one random seed's
validation accuracy per query (noisy) and charges training plus one validation pass; here the
strategy sees the table's mean over seeds (noise-free, which makes the search easier) and is
charged training time alone; the default search metric is the 200-epoch validation accuracy, where
NB201's searches used the 12-epoch one (``*_12ep`` columns, where the file has them). Numbers are
comparable between strategies here, not with NB201's published baselines.

Choices, stated once:

* **Repeated queries count.** A strategy that proposes an architecture it already evaluated pays a
  query (and its training time) again, as in AutoDL's NB201 baselines, where every proposal is
  "trained" and charged. Local search avoids repeats by design; REA and REINFORCE do not.
* **Time budget** (``time_budget`` seconds, only where the table has training times): each query
  costs the architecture's training time; a run stops at the first query that would overrun
  the budget (that query is not counted, as in AutoDL's ``R_EA.py``) or after ``queries``
  queries, whichever comes first. A cell the file has no training time for costs the median time.
* **Cells without a result** (NaN in the file) cost a query and teach the strategy nothing (Optuna's
  samplers see a failed trial); they never become the best. Curves are indexed by query and hold the last value after a
  run stops.
* **Seeds**: repeat ``r`` of every strategy and dataset uses the seed
  ``SeedSequence([seed, r])``, so strategies share their random draws where they coincide (REA's
  and random's first 10 proposals are the same cells) and results do not depend on workers.
* **Engines**: strategies with a proposer (random, rea, reinforce, local) run directly on the
  table with no Optuna storage, drawing ``step_rng(run_seed, query)``; for rea, reinforce and
  local that is exactly what their Optuna sampler draws (a test checks both paths agree), while
  ``random`` as a train-based strategy is Optuna's ``RandomSampler`` (the same distribution,
  other draws). Optuna's own samplers (tpe, gp) run through an in-memory study with ask/tell.
  Repeats run in parallel processes.

Example::

    >>> from budgetnas.bench import load_nb201
    >>> table = load_nb201("../shared/data/nb201/nats_tss_200ep_test.csv")   # doctest: +SKIP
    >>> result = simulate(table, ["rea", "random"], dataset="cifar10", queries=50, repeats=10)  # doctest: +SKIP
    >>> print(result.format_table())                                          # doctest: +SKIP
"""

from __future__ import annotations

import argparse
import ast
import json
import math
import multiprocessing
import os
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from budgetnas.errors import ConfigError

DEFAULT_STRATEGIES = ("rea", "random", "reinforce", "tpe")
DEFAULT_DATASETS = ("cifar10", "cifar100", "ImageNet16-120")
CURVE_POINTS = (10, 25, 50, 100, 150, 200, 300, 500, 1000)
Z95 = 1.96  # the normal quantile of a two-sided 95 % confidence interval


# -- strategy specs ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class StrategySpec:
    """A strategy name with hyperparameters, written ``name`` or ``name:key=value:key=value``.

    Example::

        >>> StrategySpec.parse("reinforce:lr=0.5")
        StrategySpec(label='reinforce:lr=0.5', name='reinforce', params={'lr': 0.5})
    """

    label: str
    name: str
    params: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str) -> StrategySpec:
        parts = [p.strip() for p in str(text).strip().split(":")]
        name, params = parts[0], {}
        if not name:
            raise ConfigError(f"empty strategy name in {text!r}")
        for p in parts[1:]:
            key, sep, value = p.partition("=")
            if not sep or not key.strip():
                raise ConfigError(f"strategy parameter {p!r} in {text!r} must look like key=value, "
                                  "e.g. rea:population=20:sample_size=5")
            if key.strip() in ("seed", "space"):  # (the simulator passes them itself: a TypeError from
                # deep inside, or an int taken for the search space: a review, 2026-12-07)
                raise ConfigError(f"strategy parameter {key.strip()!r} in {text!r} is the simulator's own: the "
                                  "space is NAS-Bench-201's, and each repeat's seed comes from --seed")
            try:
                params[key.strip()] = ast.literal_eval(value.strip())
            except (ValueError, SyntaxError):
                params[key.strip()] = value.strip()
        return cls(label=str(text).strip(), name=name, params=params)


def _specs(strategies: Sequence[str | StrategySpec] | str) -> list[StrategySpec]:
    if isinstance(strategies, str):
        strategies = [s for s in strategies.split(",") if s.strip()]
    specs = [s if isinstance(s, StrategySpec) else StrategySpec.parse(s) for s in strategies]
    if not specs:
        raise ConfigError("no strategies given; e.g. --strategies rea,random,reinforce,tpe")
    labels = [s.label for s in specs]
    if len(set(labels)) != len(labels):
        raise ConfigError(f"strategy listed twice in {', '.join(labels)}")
    return specs


# -- the result ------------------------------------------------------------------------------------
@dataclass
class SimulationResult:
    """Best-so-far traces of every run, with summaries, a printable table and JSON.

    ``best_test[(label, dataset)]`` and ``best_search[...]`` are ``(repeats, queries)`` arrays:
    the test accuracy and the search metric of the best-so-far cell (by the search metric) after
    each query.
    """

    strategies: list[str]
    datasets: list[str]
    queries: int
    repeats: int
    seed: int
    time_budget: float | None
    search_metric: dict[str, str]
    test_oracle: dict[str, bool]
    best_test: dict[tuple[str, str], np.ndarray]
    best_search: dict[tuple[str, str], np.ndarray]
    n_queries: dict[tuple[str, str], np.ndarray]
    sim_seconds: dict[tuple[str, str], np.ndarray]
    optimum: dict[str, tuple[float, float]]   # dataset -> (best search metric, its test accuracy)
    params: dict[str, dict[str, Any]]
    wall_seconds: float = 0.0
    workers: int = 1
    table_name: str = ""

    @property
    def any_test_oracle(self) -> bool:
        return any(self.test_oracle.values())

    def final(self, strategy: str, dataset: str) -> tuple[float, float]:
        """Mean and sample standard deviation of the final test accuracy over the runs that found a
        cell (NaN where no run did; the deviation is NaN from one run, which has no spread to show)."""
        x = self.best_test[(strategy, dataset)][:, -1]
        x = x[np.isfinite(x)]
        if not len(x):
            return math.nan, math.nan
        return float(x.mean()), float(x.std(ddof=1)) if len(x) > 1 else math.nan

    def found(self, strategy: str, dataset: str) -> int:
        """How many runs found a cell (under a time budget, a run whose first query was dearer than
        the budget found none, and is left out of :meth:`final`'s mean)."""
        return int(np.isfinite(self.best_test[(strategy, dataset)][:, -1]).sum())

    def curve(self, strategy: str, dataset: str, which: str = "test") -> np.ndarray:
        """Mean best-so-far per query index (``which``: "test" or "search")."""
        arr = (self.best_test if which == "test" else self.best_search)[(strategy, dataset)]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns before a first query
            return np.nanmean(arr, axis=0)

    def beats(self, a: str, b: str, dataset: str) -> bool:
        """Whether ``a``'s mean final test accuracy is higher than ``b``'s on ``dataset``."""
        return self.final(a, dataset)[0] > self.final(b, dataset)[0]

    def difference(self, a: str, b: str, dataset: str) -> tuple[float, float]:
        """``a``'s mean final test accuracy minus ``b``'s, and the half-width of its 95 % confidence
        interval (Welch's, normal approximation: the runs are independent): a higher mean alone may
        be noise, as with a few repeats (NaN half-width where either has under two runs)."""
        x, y = (self.best_test[(s, dataset)][:, -1] for s in (a, b))
        x, y = x[np.isfinite(x)], y[np.isfinite(y)]
        if not len(x) or not len(y):
            return math.nan, math.nan
        diff = float(x.mean() - y.mean())
        if len(x) < 2 or len(y) < 2:
            return diff, math.nan
        return diff, Z95 * math.sqrt(x.var(ddof=1) / len(x) + y.var(ddof=1) / len(y))

    def oracle_note(self) -> str:
        """The one-line warning every output carries when a dataset was searched on test accuracy."""
        oracle = [d for d in self.datasets if self.test_oracle[d]]
        if not oracle:
            return ("searched on validation accuracy; reported: test accuracy of the best cell by "
                    "validation accuracy, as the NAS-Bench-201 paper reports it; the strategies saw the mean over "
                    "seeds (noise-free) and paid training time only, so the numbers compare strategies here, not "
                    "with NB201's published baselines")
        return (f"TEST ORACLE on {', '.join(oracle)}: the strategies ranked cells by test accuracy "
                "(no validation accuracy used), the same numbers that are reported, so the results are "
                "optimistic and not comparable with NB201's published ones, which searched on "
                "validation accuracy; load an official NB201/NATS file to search on validation accuracy")

    def _col(self, d: str) -> str:
        return f"{d} (TEST ORACLE)" if self.test_oracle[d] else d

    def format_table(self) -> str:
        """A markdown table: final test accuracy mean ± std per strategy and dataset, plus curves."""
        budget = (f", time budget {self.time_budget:g} simulated s" if self.time_budget is not None else "")
        lines = [
            f"Simulated search on {self.table_name or 'NAS-Bench-201'}: {self.queries} queries x "
            f"{self.repeats} repeats per strategy and dataset{budget}, seed {self.seed}",
            f"NOTE: {self.oracle_note()}.",
            "",
            "Final test accuracy (%) of the best cell found, by the search metric "
            f"(mean ± std over {self.repeats} runs):",
            "",
            "| strategy | " + " | ".join(self._col(d) for d in self.datasets) + " |",
            "| --- | " + " | ".join("---:" for _ in self.datasets) + " |",
        ]
        short = False
        for s in self.strategies:
            cells = []
            for d in self.datasets:
                m, sd = self.final(s, d)
                # (one run has no spread: "± 0.00" would claim one; no run found a cell: nothing to show)
                cell = "-" if math.isnan(m) else f"{m:.2f}" if math.isnan(sd) else f"{m:.2f} ± {sd:.2f}"
                if self.time_budget is not None:
                    cell += f" ({np.mean(self.n_queries[(s, d)]):.0f} q)"
                if self.found(s, d) < self.repeats:
                    cell += f" [{self.found(s, d)}/{self.repeats} runs]"
                    short = True
                cells.append(cell)
            lines.append(f"| {s} | " + " | ".join(cells) + " |")
        lines.append("| *table optimum (best by search metric)* | "
                     + " | ".join(f"{self.optimum[d][1]:.2f}" for d in self.datasets) + " |")
        if short:
            why = ("within the time budget (their first query cost more than it in the others, or their "
                   "queries found only cells the file has no result for); the mean and std are over those k, so "
                   "they flatter the strategy: raise --time-budget" if self.time_budget is not None else
                   "that the file has a result for (the others queried only cells without one); the mean and std "
                   "are over those k: raise --queries")
            lines += ["", f"[k/{self.repeats} runs]: only k runs found a cell {why}"]
        points = [q for q in CURVE_POINTS if q < self.queries] + [self.queries]
        lines += ["", "Best-so-far test accuracy (%), mean over runs, after q queries:", "",
                  "| dataset | strategy | " + " | ".join(f"q={q}" for q in points) + " |",
                  "| --- | --- | " + " | ".join("---:" for _ in points) + " |"]
        for d in self.datasets:
            for s in self.strategies:
                c = self.curve(s, d)
                lines.append(f"| {self._col(d)} | {s} | " + " | ".join(f"{c[q - 1]:.2f}" for q in points) + " |")
        return "\n".join(lines)

    def summary(self) -> list[dict[str, Any]]:
        """One row per strategy and dataset (what the table shows), for JSON."""
        rows = []
        for d in self.datasets:
            for s in self.strategies:
                m, sd = self.final(s, d)
                rows.append({"strategy": s, "dataset": d, "search_metric": self.search_metric[d],
                             "test_oracle": self.test_oracle[d], "final_test_mean": m, "final_test_std": sd,
                             "final_test_ci95": Z95 * sd / math.sqrt(self.found(s, d)) if self.found(s, d) > 1 else math.nan,
                             "final_search_mean": _mean_found(self.best_search[(s, d)][:, -1]),
                             "queries_mean": float(np.mean(self.n_queries[(s, d)])),
                             "sim_seconds_mean": float(np.mean(self.sim_seconds[(s, d)])),
                             "runs": self.repeats, "runs_with_result": self.found(s, d)})
        return rows

    def to_json(self) -> dict[str, Any]:
        """Everything but the per-run traces: settings, labels, summary, mean curves."""
        return {
            "kind": "budgetnas.search.simulate", "version": 1,
            "note": self.oracle_note(), "test_oracle": self.test_oracle, "search_metric": self.search_metric,
            "table": self.table_name, "strategies": self.strategies, "params": self.params,
            "datasets": self.datasets, "queries": self.queries, "repeats": self.repeats, "seed": self.seed,
            "time_budget": self.time_budget, "workers": self.workers, "wall_seconds": self.wall_seconds,
            "optimum": {d: {"search": o[0], "test": o[1]} for d, o in self.optimum.items()},
            "summary": [{k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in row.items()}
                        for row in self.summary()],  # (no result: null, as JSON has no NaN)
            "curves": [{"strategy": s, "dataset": d, "test_oracle": self.test_oracle[d],
                        "mean_best_test": _floats(self.curve(s, d, "test")),
                        "mean_best_search": _floats(self.curve(s, d, "search"))}
                       for d in self.datasets for s in self.strategies],
        }

    def write_curves_csv(self, path: str | Path) -> None:
        """Mean best-so-far curves, one row per (strategy, dataset, query)."""
        with open(path, "w") as f:
            f.write("strategy,dataset,search_metric,test_oracle,query,mean_best_search,mean_best_test\n")
            for d in self.datasets:
                for s in self.strategies:
                    cs, ct = self.curve(s, d, "search"), self.curve(s, d, "test")
                    for q in range(self.queries):
                        f.write(f"{s},{d},{self.search_metric[d]},{self.test_oracle[d]},{q + 1},"
                                f"{cs[q]:.6f},{ct[q]:.6f}\n")


def _mean_found(x: np.ndarray) -> float:
    """The mean of the runs that found a cell; NaN (null in JSON) when none did."""
    x = x[np.isfinite(x)]
    return float(x.mean()) if len(x) else math.nan


def _table_name(table: Any) -> str:
    path, source = getattr(table, "path", ""), getattr(table, "source", "")
    return f"NAS-Bench-201 table {Path(path).name} ({source})" if path else "NAS-Bench-201 table"


def _floats(a: np.ndarray) -> list[float | None]:
    return [None if not math.isfinite(x) else round(float(x), 6) for x in a]


# -- running ---------------------------------------------------------------------------------------
# Per-process state: set by _init (in workers) or directly (in-process), never pickled per task.
_STATE: dict[str, Any] = {}


def _payload(table: Any, datasets: list[str], metrics: dict[str, str], time_budget: float | None) -> dict[str, Any]:
    """What every worker needs, read from the table once: columns as lists, arch -> row index."""
    cols = {}
    for d in datasets:
        cols[d] = {
            "search": np.asarray(table.column(d, metrics[d]), dtype=float).tolist(),
            "test": np.asarray(table.column(d, "test_accuracy"), dtype=float).tolist(),
            "time": _times(table, d, metrics[d]) if time_budget is not None else None,
        }
    index_of = {tuple(table.arch(i)): i for i in range(len(table))}
    return {"cols": cols, "index_of": index_of}


def _times(table: Any, dataset: str, metric: str) -> list[float]:
    """Training seconds per cell; a cell the file has no time for is charged the median time (a
    NaN would never reach the budget, and a free query would favour such cells)."""
    t = np.asarray(table.column(dataset, _cost_metric(metric)), dtype=float)
    bad = ~np.isfinite(t) | (t < 0)
    if bad.any():
        t = t.copy()
        t[bad] = float(np.median(t[~bad]))
    return t.tolist()


def _cost_metric(search_metric: str) -> str:
    """The training time that pays for one evaluation of ``search_metric`` (12-epoch or 200-epoch)."""
    return "train_time_12ep" if search_metric.endswith("_12ep") else "train_time"


def _init(payload: dict[str, Any], single_thread: bool) -> None:
    _STATE.clear()
    _STATE.update(payload)
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    if single_thread:  # a pool worker
        import signal

        import torch

        torch.set_num_threads(1)
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's: no worker tracebacks


def _run_seed(seed: int, repeat: int) -> int:
    return int(np.random.SeedSequence([seed % 2**64, repeat]).generate_state(1)[0])


def run_once(spec: StrategySpec, dataset: str, *, queries: int, run_seed: int,
             time_budget: float | None = None, engine: str = "auto") -> tuple[np.ndarray, np.ndarray, int, float]:
    """One search on the table loaded in this process: best-so-far (search, test) per query.

    ``engine``: "proposer" (direct, needs a proposer), "optuna" (any strategy, through an
    in-memory study), or "auto" (proposer when there is one). Returns the two traces, the number
    of queries made and the simulated seconds spent.
    """
    from budgetnas.spaces.nb201 import NB201Space
    from budgetnas.strategies import create_proposer, create_strategy, list_proposers, step_rng

    cols, index_of = _STATE["cols"][dataset], _STATE["index_of"]
    search, test, times = cols["search"], cols["test"], cols["time"]
    budget = math.inf if time_budget is None else float(time_budget)
    space = NB201Space()
    best_s, best_t = np.full(queries, np.nan), np.full(queries, np.nan)
    bs, bt, spent, n = -math.inf, math.nan, 0.0, 0

    def record(i: int) -> None:
        nonlocal bs, bt
        if search[i] > bs:  # strict: the first of equal cells stays best
            bs, bt = search[i], test[i]
        # (NaN until a queried cell has a result, as the test trace: -inf made the mean curve -inf)
        best_s[n], best_t[n] = (bs if math.isfinite(bs) else math.nan), bt

    use_proposer = engine == "proposer" or (engine == "auto" and spec.name in list_proposers())
    if use_proposer:
        proposer = create_proposer(spec.name, **spec.params)
        history: list[tuple[Any, float]] = []
        while n < queries:
            arch = proposer.propose(space, history, step_rng(run_seed, n))
            i = index_of[arch]
            if times is not None:
                if spent + times[i] > budget:
                    break
                spent += times[i]
            if math.isfinite(search[i]):  # a cell without a result teaches nothing (Optuna: FAIL)
                history.append((arch, search[i]))
            elif proposer.observes_failures:  # as the sampler shows it a FAIL: tried, at -inf
                history.append((arch, -math.inf))
            record(i)
            n += 1
    else:
        import optuna
        from optuna.distributions import CategoricalDistribution

        sampler = create_strategy(spec.name, seed=run_seed, space=space, **spec.params)
        study = optuna.create_study(direction="maximize", sampler=sampler,
                                    storage=optuna.storages.InMemoryStorage())
        fixed = {name: CategoricalDistribution(list(c)) for name, c in space.decisions()}
        while n < queries:
            trial = study.ask(fixed)
            i = index_of[space.from_decisions(trial.params)]
            if times is not None:
                if spent + times[i] > budget:
                    break
                spent += times[i]
            if math.isfinite(search[i]):
                study.tell(trial, search[i])
            else:  # no result in the file: failed, as an untrainable cell would be (Optuna skips it)
                study.tell(trial, state=optuna.trial.TrialState.FAIL)
            record(i)
            n += 1
    if 0 < n < queries:  # stopped by the time budget: the best stays what it was
        best_s[n:], best_t[n:] = best_s[n - 1], best_t[n - 1]
    return best_s, best_t, n, spent


def _task(args: tuple[StrategySpec, str, list[int], int, int, float | None, str]) -> tuple[
        str, str, list[int], np.ndarray, np.ndarray, list[int], list[float]]:
    spec, dataset, repeats, seed, queries, time_budget, engine = args
    bs, bt, nq, secs = [], [], [], []
    for r in repeats:
        s, t, n, spent = run_once(spec, dataset, queries=queries, run_seed=_run_seed(seed, r),
                                  time_budget=time_budget, engine=engine)
        bs.append(s), bt.append(t), nq.append(n), secs.append(spent)
    return spec.label, dataset, repeats, np.array(bs), np.array(bt), nq, secs


def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ConfigError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def simulate(table: Any, strategies: Sequence[str | StrategySpec] | str = DEFAULT_STRATEGIES, *,
             dataset: str | Sequence[str] = DEFAULT_DATASETS, queries: int = 150, repeats: int = 100,
             seed: int = 0, time_budget: float | None = None, workers: int | None = None,
             search_metric: str | None = None, engine: str = "auto") -> SimulationResult:
    """Run each strategy ``repeats`` times for ``queries`` table lookups on each dataset.

    ``strategies``: names from :func:`budgetnas.strategies.list_strategies`, optionally with
    hyperparameters (``"rea:population=20"``). ``dataset``: one name or several. ``workers``:
    processes (default ``os.cpu_count()``; 1 runs in this process). ``search_metric``: what the
    strategies see (default ``table.search_metric``: validation accuracy where the file has it,
    else test accuracy; NB201's paper searched on ``valid_accuracy_12ep`` with
    ``train_time_12ep`` as cost, which the official files have). Searching any ``test_*`` metric
    is a test oracle run, labelled so. ``engine="optuna"`` drives every strategy through an
    in-memory Optuna study (slower; rea, reinforce and local give the same results either way,
    random then draws with Optuna's RandomSampler).

    Example::

        >>> result = simulate(table, ["rea", "random"], dataset="cifar10", queries=50, repeats=10)  # doctest: +SKIP
        >>> result.final("rea", "cifar10")                                                            # doctest: +SKIP
        (93.6..., 0.3...)
    """
    from budgetnas.strategies import create_strategy

    specs = _specs(strategies)
    datasets = [dataset] if isinstance(dataset, str) else list(dataset)
    if not datasets:
        raise ConfigError("no datasets given; e.g. --datasets cifar10,cifar100,ImageNet16-120")
    from budgetnas.bench.table import normalize_dataset

    datasets = [normalize_dataset(d, table.datasets) for d in datasets]
    if len(set(datasets)) != len(datasets):
        raise ConfigError(f"dataset listed twice in {', '.join(datasets)}")
    if search_metric is not None and "accuracy" not in str(search_metric):
        raise ConfigError(f"the search metric is what strategies maximise: an accuracy such as "
                          f"valid_accuracy, valid_accuracy_12ep or test_accuracy, got {search_metric!r}"
                          + ("; training time is what a query costs (see --time-budget)"
                             if "time" in str(search_metric) else ""))
    metrics = {d: search_metric or table.search_metric(d) for d in datasets}
    for d, m in metrics.items():
        if not table.has(d, m):
            raise ConfigError(f"the loaded table has no {m!r} for {d}; it has "
                              f"{', '.join(table.metrics(d))}")
    if engine not in ("auto", "optuna"):
        raise ConfigError(f"engine must be 'auto' or 'optuna', got {engine!r}")
    queries = _positive_int("queries", queries)
    repeats = _positive_int("repeats", repeats)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ConfigError(f"seed must be an integer, got {seed!r}")
    if time_budget is not None:
        if not isinstance(time_budget, (int, float)) or not time_budget > 0:
            raise ConfigError(f"time_budget must be a positive number of seconds, got {time_budget!r}")
        lacking = [d for d in datasets if not table.has(d, _cost_metric(metrics[d]))]
        if lacking:
            raise ConfigError(
                f"a time budget needs training times ({_cost_metric(metrics[lacking[0]])}), and the "
                f"loaded table has none for {', '.join(lacking)} (the compact CSV has test accuracy "
                "only); load the official NAS-Bench-201 or NATS-Bench file, or budget by --queries"
            )
    workers = (os.cpu_count() or 1) if workers is None else _positive_int("workers", workers)
    from budgetnas.strategies import create_proposer, list_proposers

    params: dict[str, dict[str, Any]] = {}
    for spec in specs:  # fail on a bad name or hyperparameter before starting anything
        sampler = create_strategy(spec.name, seed=0, **spec.params)
        if engine == "auto" and spec.name in list_proposers():
            proposer = create_proposer(spec.name, **spec.params)
            params[spec.label] = {"engine": f"proposer {type(proposer).__name__}", **proposer.params()}
        else:
            inner = getattr(sampler, "proposer", None)
            params[spec.label] = {"engine": f"optuna {type(sampler).__name__}",
                                  **(inner.params() if inner is not None else spec.params)}

    t0 = time.perf_counter()
    payload = _payload(table, datasets, metrics, time_budget)
    optimum = {}
    for d in datasets:
        s, t = np.asarray(payload["cols"][d]["search"]), np.asarray(payload["cols"][d]["test"])
        i = int(np.nanargmax(s))  # (argmax returns the first NaN: a cell without a result)
        optimum[d] = (float(s[i]), float(t[i]))

    # Slow (Optuna-driven) strategies first, in chunks, so both processes finish together.
    slow = [s for s in specs if engine == "optuna" or s.name not in list_proposers()]
    fast = [s for s in specs if s not in slow]
    n_chunks = min(repeats, 4 * workers) if workers > 1 else 1
    chunks = [[int(r) for r in c] for c in np.array_split(np.arange(repeats), n_chunks)]
    tasks = [(spec, d, c, int(seed), queries, time_budget, engine)
             for spec in slow + fast for d in datasets for c in chunks]

    shape = (repeats, queries)
    best_s = {(s.label, d): np.full(shape, np.nan) for s in specs for d in datasets}
    best_t = {k: np.full(shape, np.nan) for k in best_s}
    nq = {k: np.zeros(repeats, dtype=int) for k in best_s}
    secs = {k: np.zeros(repeats) for k in best_s}

    def collect(out: tuple[Any, ...]) -> None:
        label, d, rs, s, t, n, sp = out
        best_s[(label, d)][rs], best_t[(label, d)][rs] = s, t
        nq[(label, d)][rs], secs[(label, d)][rs] = n, sp

    workers = min(workers, len(tasks))
    if workers == 1:
        import optuna

        saved, verbosity = dict(_STATE), optuna.logging.get_verbosity()
        try:
            with warnings.catch_warnings():
                _init(payload, single_thread=False)
                for task in tasks:
                    collect(_task(task))
        finally:
            optuna.logging.set_verbosity(verbosity)
            _STATE.clear()
            _STATE.update(saved)
    else:
        method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
        ctx = multiprocessing.get_context(method)
        with ctx.Pool(workers, initializer=_init, initargs=(payload, True)) as pool:
            for out in pool.imap_unordered(_task, tasks):
                collect(out)

    return SimulationResult(
        strategies=[s.label for s in specs], datasets=datasets, queries=queries, repeats=repeats,
        seed=int(seed), time_budget=None if time_budget is None else float(time_budget),
        search_metric=metrics, test_oracle={d: metrics[d].startswith("test_") for d in datasets},
        best_test=best_t, best_search=best_s, n_queries=nq, sim_seconds=secs, optimum=optimum,
        params=params, wall_seconds=time.perf_counter() - t0, workers=workers,
        table_name=_table_name(table),
    )


# -- command line ----------------------------------------------------------------------------------
def _csv_list(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def add_simulate_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of ``budgetnas bench simulate``."""
    parser.add_argument("--strategies", type=_csv_list, default=list(DEFAULT_STRATEGIES),
                        help="comma-separated: random, rea, reinforce, tpe, gp, local; hyperparameters "
                             "as name:key=value, e.g. rea:population=20:sample_size=5 "
                             "(default rea,random,reinforce,tpe). gp fits a Gaussian process per query "
                             "(~0.1-0.2 s each on a CPU): use it with few --repeats")
    parser.add_argument("--queries", type=int, default=150, help="table lookups per run (150)")
    parser.add_argument("--repeats", type=int, default=100, help="runs per strategy and dataset (100)")
    parser.add_argument("--datasets", type=_csv_list, default=list(DEFAULT_DATASETS),
                        help="comma-separated (default cifar10,cifar100,ImageNet16-120)")
    parser.add_argument("--seed", type=int, default=0, help="base seed; run r uses SeedSequence([seed, r]) (0)")
    parser.add_argument("--workers", type=int, default=None,
                        help=f"processes (default: all CPU cores, here {os.cpu_count()})")
    parser.add_argument("--time-budget", type=float, default=None, metavar="SECONDS",
                        help="simulated training-time budget per run, where the table has training "
                             "times (the compact CSV has none)")
    parser.add_argument("--search-metric", default=None, metavar="METRIC",
                        help="what strategies rank by (default: valid_accuracy where the table has it, "
                             "else test_accuracy, a TEST ORACLE run); valid_accuracy_12ep is NB201's choice")
    parser.add_argument("--table", default=None, metavar="PATH",
                        help="NAS-Bench-201 / NATS-Bench file or compact CSV (default: see `budgetnas bench`)")
    parser.add_argument("--trust-pickle", action="store_true",
                        help="allow the official pickle files to load arbitrary objects (runs code; only "
                             "for files you downloaded yourself)")
    parser.add_argument("--json", nargs="?", const="-", default=None, metavar="FILE",
                        help="the summary and mean curves as JSON: printed instead of the table, or "
                             "written to FILE")
    parser.add_argument("--curves-out", default=None, metavar="FILE",
                        help="write the mean best-so-far curves as CSV")


def _check_writable(flag: str, out: str) -> None:
    """Refuse an output path that cannot be written before minutes of simulation, not after."""
    path = Path(out).expanduser().absolute()
    if path.is_dir():
        raise ConfigError(f"{flag} {out} is a folder; give a file name, e.g. {Path(out) / 'simulate.json'}")
    if not path.parent.is_dir():
        raise ConfigError(f"{flag} {out}: the folder {path.parent} does not exist; create it or give another path")
    if not os.access(path if path.exists() else path.parent, os.W_OK):
        raise ConfigError(f"{flag} {out}: cannot write there (permission denied); give another path")


def simulate_command(args: argparse.Namespace) -> int:
    """``budgetnas bench simulate``: run, print the table (labelled when a test oracle), save JSON/CSV."""
    from budgetnas.bench import load_nb201

    for flag, out in (("--json", args.json if args.json != "-" else None), ("--curves-out", args.curves_out)):
        if out is not None:
            _check_writable(flag, out)
    table = load_nb201(args.table, trust_pickle=getattr(args, "trust_pickle", False))
    result = simulate(table, args.strategies, dataset=args.datasets, queries=args.queries,
                      repeats=args.repeats, seed=args.seed, time_budget=args.time_budget,
                      workers=args.workers, search_metric=args.search_metric)
    if args.curves_out:
        result.write_curves_csv(args.curves_out)
    if args.json == "-":   # JSON only on stdout; it carries the test-oracle note and flags
        print(json.dumps(result.to_json(), indent=1))
        return 0
    print(result.format_table())
    print(f"\n{len(result.strategies)} strategies x {len(result.datasets)} datasets x {result.repeats} runs "
          f"in {result.wall_seconds:.1f} s on {result.workers} process(es)")
    if args.json:
        Path(args.json).write_text(json.dumps(result.to_json(), indent=1) + "\n")
        print(f"wrote {args.json}")
    if args.curves_out:
        print(f"wrote {args.curves_out}")
    if result.any_test_oracle:
        print(f"NOTE: {result.oracle_note()}.")
    return 0
