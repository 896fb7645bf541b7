"""Accounting and claims that a review found wrong (2026-12-02), each kept as a regression test."""

from __future__ import annotations

import hashlib
import json
import shutil
import time
import warnings
from pathlib import Path

import optuna
import pytest

import budgetnas.search.study as study_mod
from budgetnas.data import DataSplits, from_arrays
from budgetnas.errors import BudgetError
from budgetnas.search import Search, SearchConfig, open_study
from budgetnas.search.ledger import BudgetLedger
from budgetnas.search.pruning import BasePruner
from budgetnas.search.records import record_of, spent_of, status_of
from tests.search.test_search import TINY, _search, stop_trainings_after_3_steps

BAD = "|none~0|+|none~0|none~1|+|none~0|none~1|avg_pool_3x3~2|"  # a constant network


@pytest.fixture(scope="module")
def splits(digits) -> DataSplits:
    x, y = digits
    return DataSplits(train=from_arrays(x[:500], y[:500], name="digits"),
                      test=from_arrays(x[1500:1700], y[1500:1700], name="digits"))


def test_a_cut_off_final_training_is_billed(tmp_path: Path, splits: DataSplits, monkeypatch) -> None:
    """A final training stopped by a signal used to be billed nothing (only a finished one was),
    and its resumed part alone was billed after."""
    train = study_mod.train
    searches: list[Search] = []
    walls: list[float] = []

    def spy(*a, checkpoint=None, should_stop=None, **kw):
        final = checkpoint is not None and checkpoint.path.name.startswith("final-")
        if final and searches:
            steps = [0]

            def stop() -> bool:
                steps[0] += 1
                time.sleep(0.02)
                if steps[0] > 15:
                    searches[0].request_stop("test")
                    return True
                return False
            should_stop = stop
        start = time.perf_counter()
        try:
            return train(*a, checkpoint=checkpoint, should_stop=should_stop, **kw)
        finally:
            if final:
                walls.append(time.perf_counter() - start)

    monkeypatch.setattr(study_mod, "train", spy)
    cfg = SearchConfig(data="digits", run_dir=str(tmp_path / "run"), **{**TINY, "max_trials": 1, "final_epochs": 3})
    searches.append(Search(cfg, data=splits, data_name="digits", progress=False))
    assert "during the final training" in searches[0].run().stop_reason
    cut = open_study(tmp_path / "run").user_attrs["final_spent"]["device_seconds"]
    assert cut >= 0.3 > 0  # 15 steps of at least 0.02 s were paid
    searches.clear()
    _, result = _search(tmp_path, splits, max_trials=1, final_epochs=3)
    study = open_study(tmp_path / "run")
    paid = study.user_attrs["final_spent"]["device_seconds"]
    assert paid >= 0.9 * sum(walls) and paid > cut
    assert study.user_attrs["final"]["device_seconds"] == pytest.approx(paid)  # both sessions
    assert result.spent.device_seconds == pytest.approx(spent_of(study).device_seconds)


class _PruneAtEpoch1(BasePruner):
    def should_stop(self, trial_index, epoch, curve, others):
        return epoch == 1


def test_a_pruned_cell_is_not_trained_again(tmp_path: Path, splits: DataSplits, monkeypatch) -> None:
    """The cache served only complete trials, so a pruned cell proposed again was trained again
    at the same (cell, fidelity, seed)."""
    monkeypatch.setattr(study_mod, "create_pruner", lambda name, max_epochs: _PruneAtEpoch1())
    _search(tmp_path, splits, candidates=[BAD], max_trials=1, epochs=3, pruner="sha", final_training=False)
    study = open_study(tmp_path / "run")
    (pruned,) = study.get_trials()
    assert status_of(pruned) == "pruned" and record_of(pruned)["device_seconds"] > 0
    study.enqueue_trial(pruned.params)  # the strategy proposes it again
    _search(tmp_path, splits, max_trials=2, epochs=3, pruner="sha", final_training=False)
    again = open_study(tmp_path / "run").get_trials()[1]
    rec = record_of(again)
    assert rec["cache_key"] == record_of(pruned)["cache_key"]
    assert status_of(again) == "pruned" and rec["device_seconds"] == 0 and rec["cache_of"] == pruned.number


def test_a_pruned_cell_is_trained_when_proposed_under_another_pruning_rule(tmp_path: Path, splits: DataSplits,
                                                                           monkeypatch) -> None:
    """Pruned results were served whatever the pruner was now, even --pruner none, so a cell once
    pruned could never be trained out nor become the final model (a search-core review,
    2026-12-06). Now it is trained, and from then on its full result is what the cache serves."""
    monkeypatch.setattr(study_mod, "create_pruner", lambda name, max_epochs: _PruneAtEpoch1())
    _search(tmp_path, splits, candidates=[BAD], max_trials=1, epochs=3, pruner="sha", final_training=False)
    study = open_study(tmp_path / "run")
    (pruned,) = study.get_trials()
    assert status_of(pruned) == "pruned" and pruned.user_attrs["pruned_by"] == "_PruneAtEpoch1"
    monkeypatch.setattr(study_mod, "create_pruner", lambda name, max_epochs: BasePruner())
    study.enqueue_trial(pruned.params)
    _search(tmp_path, splits, max_trials=2, epochs=3, pruner="none", final_training=False)
    study = open_study(tmp_path / "run")
    full = study.get_trials()[1]
    assert status_of(full) == "complete" and "cache_of" not in full.user_attrs
    assert len(record_of(full)["curve"]) == 3 and record_of(full)["device_seconds"] > 0
    study.enqueue_trial(pruned.params)  # proposed once more: its full result, free
    _search(tmp_path, splits, max_trials=3, epochs=3, pruner="none", final_training=False)
    third = open_study(tmp_path / "run").get_trials()[2]
    assert status_of(third) == "cached" and record_of(third)["cache_of"] == full.number


class _PruneAtEpoch2(BasePruner):
    def should_stop(self, trial_index, epoch, curve, others):
        return epoch == 2


def test_a_cell_pruned_under_each_of_two_rules_is_trained_once_under_each(tmp_path: Path, splits: DataSplits,
                                                                          monkeypatch) -> None:
    """(diff review, 2026-12-06) The cache kept one entry per cell, the first: a cell pruned under a
    second rule was trained again at every proposal under it."""
    monkeypatch.setattr(study_mod, "create_pruner", lambda name, max_epochs: _PruneAtEpoch1())
    _search(tmp_path, splits, candidates=[BAD], max_trials=1, epochs=3, pruner="sha", final_training=False)
    (first,) = open_study(tmp_path / "run").get_trials()
    monkeypatch.setattr(study_mod, "create_pruner", lambda name, max_epochs: _PruneAtEpoch2())
    study = open_study(tmp_path / "run")
    for _ in range(3):
        study.enqueue_trial(first.params)
    _search(tmp_path, splits, max_trials=3, epochs=3, pruner="sha", final_training=False, only=True)
    trials = open_study(tmp_path / "run").get_trials()[1:4]
    assert [status_of(t) for t in trials] == ["pruned"] * 3
    assert [record_of(t).get("cache_of") for t in trials] == [None, trials[0].number, trials[0].number]
    assert len(record_of(trials[0])["curve"]) == 2 and record_of(trials[2])["device_seconds"] == 0


def test_pruning_rules_tell_hyperband_brackets_and_pruners_apart() -> None:
    from budgetnas.search.pruning import Hyperband, pruning_rule

    hb = Hyperband(max_epochs=9)
    rules = {b: pruning_rule(hb, hb.cycle.index(b), 9) for b in range(len(hb.brackets))}
    assert rules[0] == "Hyperband bracket 0: SuccessiveHalving eta 3, rungs at epochs [1, 3]"
    assert rules[1] == "Hyperband bracket 1: SuccessiveHalving eta 3, rungs at epochs [3]"
    assert rules[2] is None  # the bracket that never prunes
    sha = study_mod.create_pruner("sha", max_epochs=9)
    assert pruning_rule(sha, 5, 9) == "SuccessiveHalving eta 3, rungs at epochs [1, 3]"
    assert pruning_rule(sha, 5, 1) is None and pruning_rule(BasePruner(), 0, 9) is None


def test_an_oversize_cell_holds_no_slot_a_concurrent_candidate_needs(tmp_path: Path, splits: DataSplits,
                                                                     monkeypatch) -> None:
    """With two candidates at once, an oversize cell held the last trial slot while it was being
    rejected, and the other candidate took that for a spent budget and ended the search short."""
    big = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|"
    small = ["|none~0|+|skip_connect~0|none~1|+|skip_connect~0|none~1|nor_conv_1x1~2|",
             "|none~0|+|skip_connect~0|none~1|+|avg_pool_3x3~0|none~1|nor_conv_1x1~2|",
             "|skip_connect~0|+|skip_connect~0|none~1|+|skip_connect~0|none~1|nor_conv_1x1~2|",
             "|avg_pool_3x3~0|+|skip_connect~0|none~1|+|skip_connect~0|none~1|nor_conv_1x1~2|"]
    run_trial = Search._run_trial

    def slow_reject(self, study, trial, arch, p, *a, **kw):  # widens the race window
        if self._final_cost(arch).params > self.config.max_params:
            time.sleep(2.0)
        return run_trial(self, study, trial, arch, p, *a, **kw)

    monkeypatch.setattr(Search, "_run_trial", slow_reject)
    # (The small cells' final networks have 4,822-5,214 parameters, the big one's 23,302: the big one
    # is the first rejected; under a lower limit every cell slept, 50 s.)
    _, result = _search(tmp_path, splits, candidates=[small[0], small[1], big, small[2], small[3]], max_trials=3,
                        concurrent=2, final_training=False, max_params=6000, epochs=2)
    assert result.spent.trials == 3, result.stop_reason
    rejected = [t for t in open_study(tmp_path / "run").get_trials() if t.user_attrs.get("status") == "rejected"]
    assert rejected[0].user_attrs["reason"].startswith("23,302 parameters"), rejected[0].user_attrs


def test_the_ledger_limit_leaves_out_what_was_paid_outside_it(tmp_path: Path, splits: DataSplits,
                                                               monkeypatch) -> None:
    """The ledger holds trial seconds; its limit took off the probes but not a final training
    already paid, so concurrent candidates were admitted against seconds already spent."""
    _search(tmp_path, splits, max_trials=1, final_epochs=6)
    study = open_study(tmp_path / "run")
    final_paid = study.user_attrs["final_spent"]["device_seconds"]
    assert final_paid > 0
    limits: list[float] = []
    reserve = BudgetLedger.reserve

    def spy(self, *a, seconds_limit=None, **kw):
        limits.append(seconds_limit)
        return reserve(self, *a, seconds_limit=seconds_limit, **kw)

    # What the ledger does not hold: the probes and the final training (every trial is in it).
    outside = spent_of(study).device_seconds - sum(record_of(t)["device_seconds"] for t in study.get_trials())
    assert outside >= final_paid
    monkeypatch.setattr(BudgetLedger, "reserve", spy)
    budget = 3600.0
    _search(tmp_path, splits, max_trials=2, final_epochs=6, max_device_hours=budget / 3600)
    # The best cell's final training is done, so none is still to come: the limit is the rest.
    assert limits and limits[0] == pytest.approx(budget - outside, abs=1e-6)


def test_the_final_reserve_is_for_the_cell_the_final_training_trains(tmp_path: Path, splits: DataSplits) -> None:
    """Multi-objective: the final training takes the Pareto front's best, the reserve took the
    best by accuracy alone (another cell on ties), so a done final was still reserved for."""
    a = "|none~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|none~1|none~2|"
    b = "|none~0|+|nor_conv_3x3~0|none~1|+|nor_conv_3x3~0|none~1|none~2|"  # the same function, fewer params
    s, _ = _search(tmp_path, splits, candidates=[a, b], max_trials=2, objectives=["accuracy", "params"])
    study = open_study(tmp_path / "run")
    best = s._ranked_for_final(study)[0]
    assert best.arch == study.user_attrs["final"]["arch"] and s._final_done(study, best.arch)


def test_a_shared_final_claimed_by_a_dead_worker_is_taken_over(tmp_path: Path, splits: DataSplits) -> None:
    """A rerun while a killed worker's claim on the final training was fresh skipped the final
    and ended with no tested model; now it waits until the claim goes stale, then trains it."""
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    kw = dict(storage=url, study_name="s", heartbeat_interval=0.5, heartbeat_grace=3.0, **TINY)
    s, r = _search(tmp_path, splits, name="a", max_trials=1, final_training=False, **kw)
    job = "final:" + hashlib.blake2b(json.dumps([r.best_arch, s._final_settings()]).encode(),
                                     digest_size=8).hexdigest()
    ghost = BudgetLedger(url, "s")
    assert ghost.claim_job(job, "deadhost:999999", 3.0) == "claimed"  # ... then that process is killed
    ghost.close()
    start = time.perf_counter()
    _, r2 = _search(tmp_path, splits, name="a", max_trials=1, final_training=True, **kw)
    assert r2.test_metrics and time.perf_counter() - start >= 2.0  # waited for the claim to go stale


def test_a_retry_takes_its_trials_place_among_the_pruning_peers(tmp_path: Path, splits: DataSplits,
                                                                monkeypatch) -> None:
    """A retry of a cut-off trial was compared with the cut-off attempt's own partial curve (the
    same cell twice) and fell into another Hyperband bracket (its trial number differs)."""
    searches: list[Search] = []
    calls: list[tuple[int, list[int]]] = []

    class Recording(BasePruner):
        def should_stop(self, trial_index, epoch, curve, others):
            calls.append((trial_index, sorted(others)))
            if searches and trial_index == 1 and epoch == 1:
                searches[0].request_stop("test")  # cut trial 1 after its first epoch
            return False

    monkeypatch.setattr(study_mod, "create_pruner", lambda name, max_epochs: Recording())
    good = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"
    cfg = SearchConfig(data="digits", run_dir=str(tmp_path / "run"), **{**TINY, "epochs": 3, "max_trials": 2,
                                                                        "final_training": False})
    searches.append(Search(cfg, data=splits, data_name="digits", progress=False, candidates=[good, BAD]))
    searches[0].run()
    study = open_study(tmp_path / "run")
    assert [status_of(t) for t in study.get_trials()][:2] == ["complete", "interrupted"]
    searches.clear()
    calls.clear()
    Search(cfg, data=splits, data_name="digits", progress=False, candidates=[good, BAD]).run()
    retry = open_study(tmp_path / "run").get_trials()[-1]
    assert retry.user_attrs["retry_of"] == 1 and status_of(retry) == "complete"
    assert calls and all(index == 1 and peers == [0] for index, peers in calls)


def test_slots_left_open_by_a_kill_are_closed_at_the_next_session(tmp_path: Path, splits: DataSplits) -> None:
    """A kill between a trial's end and its slot's commit left the slot's forecast reserved for
    good (later reservations were refused early); one between closing a trial and re-queuing it
    lost the cell. A local run's next session reconciles both."""
    import sqlalchemy as sa

    from budgetnas.search.ledger import BUDGET, SLOTS

    _search(tmp_path, splits, max_trials=2, final_training=False)
    study = open_study(tmp_path / "run")
    t0, t1 = study.get_trials()
    ledger = BudgetLedger(f"sqlite:///{tmp_path / 'run' / 'study.db'}", "budgetnas")
    with ledger.engine.begin() as c:  # as if killed right after trial 0 ended, before its commit
        c.execute(sa.update(SLOTS).where(SLOTS.c.trial_key == t0.user_attrs["trial_key"])
                  .values(state="running", forecast=50.0))
        c.execute(sa.update(BUDGET).values(seconds_reserved=BUDGET.c.seconds_reserved + 50.0,
                                           seconds_committed=BUDGET.c.seconds_committed
                                           - record_of(t0)["device_seconds"] - record_of(t1)["device_seconds"]))
        c.execute(sa.update(SLOTS).where(SLOTS.c.trial_key == t1.user_attrs["trial_key"])
                  .values(state="running"))
    # ... and as if killed while trial 1 was closed as interrupted, before its retry was queued
    with ledger.engine.begin() as c:
        c.execute(sa.text("update trial_user_attributes set value_json = :v where trial_id = :t and key = 'status'"),
                  {"v": json.dumps("interrupted"), "t": t1._trial_id})
    _search(tmp_path, splits, max_trials=2, final_training=False)
    trials = open_study(tmp_path / "run").get_trials()
    assert any(t.user_attrs.get("retry_of") == 1 and status_of(t) == "complete" for t in trials)
    assert not ledger.open_slots()
    used, seconds = ledger.usage()
    paid = sum(record_of(t)["device_seconds"] for t in trials if status_of(t) != "interrupted")
    assert used == 2 and seconds == pytest.approx(paid, abs=1e-6)  # no forecast left reserved
    ledger.close()


def test_a_cache_hit_takes_no_trial_of_the_budget_even_after_waiting_for_its_cell(tmp_path, splits) -> None:
    """Two candidates at once proposed the same cell: the second waits for the first's training
    and is then served by the cache. It used to keep the trial slot it had reserved (and count
    as a trial); now a served cell gives its slot back, and the ledger agrees with the records."""
    # Two strings, one function (node 1 is all-zero in the first, so its conv from node 1 is dead).
    a = "|none~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|none~1|none~2|"
    b = "|none~0|+|nor_conv_3x3~0|none~1|+|nor_conv_3x3~0|none~1|none~2|"
    search, result = _search(tmp_path, splits, candidates=[a, b], only=True, concurrent=2,
                             max_trials=5, epochs=3, final_training=False)
    trials = open_study(search.run_dir).get_trials()
    assert sorted(status_of(t) for t in trials) == ["cached", "complete"]
    assert result.spent.trials == 1 and spent_of(open_study(search.run_dir)).trials == 1
    used, _ = BudgetLedger(f"sqlite:///{search.run_dir / 'study.db'}", "budgetnas").usage()
    assert used == 1


@pytest.mark.parametrize("strategy", ["random", "tpe"])
def test_workers_starting_together_on_a_shared_study_draw_different_cells(
        tmp_path: Path, splits: DataSplits, monkeypatch, strategy: str) -> None:
    """Optuna's own samplers were seeded with the seed plus the study's trial count: workers started
    together on one shared study (the same count, 0) got the same seed, so each proposed the very
    cells the other was training (RandomSampler: the same sequence; TPE: its random start-up)."""
    samplers = []

    def capture(self, study, p):  # stop before any trial: both workers see the study empty
        samplers.append(study.sampler)
        return "captured"

    monkeypatch.setattr(Search, "_search", capture)
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    for i in range(2):
        monkeypatch.setattr(study_mod, "_worker_name", lambda i=i: f"host:{100 + i}")
        cfg = SearchConfig(data="digits", storage=url, study_name="s", run_dir=str(tmp_path / f"w{i}"),
                           max_trials=4, **{**TINY, "strategy": strategy, "final_training": False})
        Search(cfg, data=splits, data_name="digits", progress=False).run()
    from budgetnas.spaces.nb201 import NB201Space

    # Both workers ask on one shared study at once (each trial still running when the other asks).
    space, cells = NB201Space(), [[], []]
    storage = optuna.storages.InMemoryStorage()
    studies = [optuna.create_study(direction="maximize", sampler=s, storage=storage, study_name="x",
                                   load_if_exists=True) for s in samplers]
    for _ in range(4):
        asked = [study.ask() for study in studies]
        for drawn, t in zip(cells, asked):
            drawn.append(tuple(t.suggest_categorical(n, list(c)) for n, c in space.decisions()))
        for study, t in zip(studies, asked):
            study.tell(t, 0.0)
    assert not set(cells[0]) & set(cells[1])


def _cells(run_dir: Path) -> list[tuple[str, float]]:
    """(cell, score) of the trials that trained or reused a result, in trial order."""
    return [(record_of(t)["arch"], t.values[0] if t.values else None)
            for t in sorted(open_study(run_dir).get_trials(), key=lambda t: t.number)
            if status_of(t) in ("complete", "cached", "pruned")]


@pytest.mark.parametrize("strategy", ["tpe", "random"])
def test_a_search_continued_in_two_sessions_proposes_what_one_session_would(
        tmp_path: Path, splits: DataSplits, strategy: str) -> None:
    """Optuna's samplers were seeded once per session (seed + 7919 x trials): a search run to 4
    trials and then to 10 drew other cells from the 5th on than one run to 10 (a review, 2026-12-06)."""
    straight, _ = _search(tmp_path, splits, name="straight", max_trials=10, strategy=strategy, final_training=False)
    _search(tmp_path, splits, name="split", max_trials=4, strategy=strategy, final_training=False)
    split, _ = _search(tmp_path, splits, name="split", max_trials=10, strategy=strategy, final_training=False)
    assert len(_cells(straight.run_dir)) == 10
    assert _cells(split.run_dir) == _cells(straight.run_dir)


@pytest.mark.parametrize("strategy", ["rea", "tpe"])
def test_a_search_killed_mid_trial_and_resumed_proposes_what_one_run_would(
        tmp_path: Path, splits: DataSplits, monkeypatch, strategy: str) -> None:
    """The interrupted trial's retry is a new, queued trial: proposals used to be drawn from the
    trial number, so every later proposal shifted by one (a review saw REINFORCE skip the cell that
    was its second best, 2026-12-06). They are drawn from the proposal index, retries left out."""
    straight, _ = _search(tmp_path, splits, name="straight", max_trials=5, epochs=2, strategy=strategy,
                          final_training=False)
    searches: list[Search] = []
    calls = [0]

    def third_trial(path: Path) -> bool:
        if path.name.startswith("final-"):
            return False
        calls[0] += 1
        return calls[0] == 3

    stop_trainings_after_3_steps(monkeypatch, searches, third_trial)
    cfg = SearchConfig(data="digits", run_dir=str(tmp_path / "killed"), max_trials=5,
                       **{**TINY, "epochs": 2, "strategy": strategy, "final_training": False})
    searches.append(Search(cfg, data=splits, data_name="digits", progress=False))
    searches[0].run()
    searches.clear()
    study = open_study(tmp_path / "killed")
    assert [status_of(t) for t in study.get_trials()][2] == "interrupted"
    resumed, _ = _search(tmp_path, splits, name="killed", max_trials=5, epochs=2, strategy=strategy,
                         final_training=False)
    assert _cells(resumed.run_dir) == _cells(straight.run_dir)


def test_time_lost_between_trials_does_not_slide_the_reserve_to_a_worse_cell(
        tmp_path: Path, splits: DataSplits, monkeypatch) -> None:
    """Under --max-time, wall time lost outside the trials' forecasts (a busy machine, a slow disk)
    made the reserve the best cell whose final training still fitted: ever cheaper, worse cells,
    while more trials ran; the best cell, found early, was not the final model (a review,
    2026-12-06). The reserve is the best cell's: the search stops when it and a trial no longer fit."""
    import itertools

    run_trial = Search._run_trial

    def slow(self, *a, **kw):
        out = run_trial(self, *a, **kw)
        time.sleep(1.0)
        return out

    monkeypatch.setattr(Search, "_run_trial", slow)
    good = "|nor_conv_3x3~0|+|skip_connect~0|nor_conv_3x3~1|+|skip_connect~0|skip_connect~1|nor_conv_3x3~2|"
    # cells whose output node takes nothing: constant networks (one trained, the others cache hits),
    # whose final trainings are far cheaper than the good cell's
    bad = [f"|{a}~0|+|{b}~0|{c}~1|+|none~0|none~1|none~2|"
           for a, b, c in itertools.product(["none", "avg_pool_3x3", "skip_connect"], repeat=3)][:20]
    try:
        s, _ = _search(tmp_path, splits, candidates=[good, *bad], only=True, max_time=25.0, epochs=2,
                       final_epochs=4, C=8, final_C=8, final_N=2)
    except BudgetError as e:  # (probes on a machine busy with other jobs forecast 100x slower)
        pytest.skip(f"this machine is too loaded for the 25 s budget the test needs: {e}")
    study = open_study(s.run_dir)
    assert s._ranked_for_final(study)[0].arch == good
    final = study.user_attrs["final"]
    # Its reserve was not eaten away: at most shortened a little where the machine ran slower than
    # probed (another job on it), not to half its epochs by the time lost after the last trial.
    assert final["arch"] == good and (final.get("shortened") or {}).get("epochs", 4) >= 3, final


def test_a_resumed_search_prunes_the_cells_an_uninterrupted_one_prunes(tmp_path: Path, splits: DataSplits,
                                                                      monkeypatch) -> None:
    """Hyperband placed a trial in a bracket by its trial number: the retry of an interrupted trial
    took a number, so every later trial changed bracket and a resumed search pruned other cells
    (and its strategy learnt from other scores) than one run straight through (a strategies
    review, 2026-12-06). Brackets go by the candidate's place (study._places), retries left out."""
    kw = dict(max_trials=9, epochs=3, strategy="rea", pruner="hyperband", final_training=False)
    straight, _ = _search(tmp_path, splits, name="straight", **kw)
    searches: list[Search] = []
    calls = [0]

    def third_trial(path: Path) -> bool:
        calls[0] += 1
        return calls[0] == 3

    stop_trainings_after_3_steps(monkeypatch, searches, third_trial)
    cfg = SearchConfig(data="digits", run_dir=str(tmp_path / "killed"), **{**TINY, **kw})
    searches.append(Search(cfg, data=splits, data_name="digits", progress=False))
    searches[0].run()
    searches.clear()
    resumed, _ = _search(tmp_path, splits, name="killed", **kw)

    def outcome(run: Path) -> list[tuple[str, str]]:
        return [(record_of(t)["arch"], status_of(t)) for t in open_study(run).get_trials()
                if status_of(t) in ("complete", "pruned")]
    assert any(s == "pruned" for _, s in outcome(straight.run_dir))  # (the pruner had cells to cut)
    assert outcome(resumed.run_dir) == outcome(straight.run_dir)
    from budgetnas.search.study import _places

    trials = open_study(resumed.run_dir).get_trials()
    retry = next(t for t in trials if "retry_of" in t.user_attrs)
    assert _places(trials)[retry.number] == _places(trials)[retry.user_attrs["retry_of"]] == 2


def test_a_final_model_overtaken_by_a_later_no_final_session_is_said_so_by_show_and_export(
        tmp_path: Path, splits: DataSplits, capsys) -> None:
    """(review, 2026-12-07) After a session with --no-final found a better cell, `show` and its JSON
    named the old final model's cell as the best (with its test result), and `export` exported it,
    unsaid."""
    from budgetnas.cli import main
    from budgetnas.report.summary import format_summary, json_summary
    from budgetnas.search import saved_config

    weak = "|none~0|+|none~0|none~1|+|none~0|none~1|avg_pool_3x3~2|"  # (a constant network: chance level)
    good = "|nor_conv_3x3~0|+|skip_connect~0|nor_conv_3x3~1|+|skip_connect~0|skip_connect~1|nor_conv_3x3~2|"
    _search(tmp_path, splits, candidates=[weak], only=True, max_trials=1, epochs=2)
    s, _ = _search(tmp_path, splits, candidates=[weak, good], only=True, max_trials=2, epochs=2,
                   final_training=False)
    study = open_study(s.run_dir)
    config = saved_config(s.run_dir)
    final = study.user_attrs["final"]
    assert final["arch"] == weak and final["latest_trial"] == 0
    trials = {record_of(t)["arch"]: t for t in study.get_trials()}
    assert trials[good].values[0] > trials[weak].values[0]
    text = format_summary(study, config, run_dir=s.run_dir)
    assert f"note: trial #{trials[good].number} (accuracy " in text and "now ranks above the final model's cell " \
        "(trial #0)" in text and "without --no-final" in text
    (s.run_dir / "summary.json").unlink()  # (as after a kill: the study alone says what is best)
    js = json_summary(study, config, s.run_dir)
    assert js["best_arch"] == good and js["test_metrics"] == {}
    capsys.readouterr()
    with pytest.warns(UserWarning, match=rf"^trial #{trials[good].number} \(accuracy "):  # (stderr: "warning: trial ...")
        assert main(["export", str(s.run_dir), str(tmp_path / "m.onnx")]) == 0
    # load_model says so too (it gave the older cell's model unsaid), of the run's best/model.pt and
    # best/ too (they loaded unwarned: a review, 2026-12-08), and not of a model file copied elsewhere
    from budgetnas import load_model

    for path in (s.run_dir, s.run_dir / "best" / "model.pt", s.run_dir / "best"):
        with pytest.warns(UserWarning, match=rf"trial #{trials[good].number} .*now ranks above .*final_training=True"):
            assert load_model(path).arch == weak
    shutil.copy(s.run_dir / "best" / "model.pt", tmp_path / "model.pt")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_model(tmp_path / "model.pt")
    with pytest.warns(UserWarning, match=rf"^trial #{trials[good].number} \(accuracy "):
        assert main(["export", str(s.run_dir / "best" / "model.pt"), str(tmp_path / "m2.onnx")]) == 0
    # The final training of the better cell: nothing to say any more.
    _search(tmp_path, splits, candidates=[weak, good], only=True, max_trials=2, epochs=2)
    study = open_study(s.run_dir)
    assert study.user_attrs["final"]["arch"] == good and "note: trial" not in format_summary(study, config)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert load_model(s.run_dir).arch == good


def test_a_strategy_changed_on_resume_is_said(tmp_path: Path, splits: DataSplits, caplog) -> None:
    """(review A, 2026-12-07) --strategy and --pruner may change between sessions; it was unsaid,
    and the README listed neither among what may change."""
    import logging

    _search(tmp_path, splits, max_trials=1, final_training=False)  # (TINY: strategy random)
    with caplog.at_level(logging.INFO, logger="budgetnas"):
        _search(tmp_path, splits, max_trials=2, final_training=False, strategy="rea", pruner="sha")
    assert ("another strategy and pruner than the last (--strategy random before, rea now; --pruner none before, "
            "sha now)") in caplog.text
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="budgetnas"):
        _search(tmp_path, splits, max_trials=3, final_training=False, strategy="rea", pruner="sha")
    assert "than the last" not in caplog.text
