"""A search process killed with SIGKILL resumes with no finished trial lost or repeated."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from budgetnas.search import open_study
from budgetnas.search.records import counts_as_trial, record_of, status_of

MAX_TRIALS = 7


def _command(run_dir: Path) -> list[str]:
    return [sys.executable, "-m", "budgetnas", "search", "--data", "digits", "--run-dir", str(run_dir),
            "--max-trials", str(MAX_TRIALS), "--strategy", "random", "--epochs", "3", "-C", "4", "-N", "1",
            "--final-C", "4", "--final-N", "1", "--final-epochs", "1", "--quiet"]


def _progress(db: Path) -> tuple[int, int]:
    """(finished trials, running trials that have recorded at least one epoch)."""
    if not db.exists():
        return 0, 0
    try:
        with sqlite3.connect(db, timeout=5) as con:
            done = con.execute("select count(*) from trials where state = 'COMPLETE'").fetchone()[0]
            mid = con.execute(
                "select count(*) from trials t join trial_user_attributes a on a.trial_id = t.trial_id "
                "where t.state = 'RUNNING' and a.key = 'progress'").fetchone()[0]
            return done, mid
    except sqlite3.OperationalError:  # tables not created yet
        return 0, 0


def _kill_mid_trial(command: list[str], env: dict[str, str], run: Path, *, finished: int) -> None:
    """Run ``command`` and SIGKILL it once ``finished`` trials are complete and a running one has
    recorded an epoch."""
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while True:
        done, mid = _progress(run / "study.db")
        if done >= finished and mid:
            break
        assert proc.poll() is None, proc.stderr.read().decode()
        assert time.time() < deadline, f"the run did not finish {finished} trial(s) and start another in time"
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL


def test_sigkill_mid_search_then_rerun_resumes_exactly(tmp_path: Path) -> None:
    run = tmp_path / "run"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    # killed after 3 finished trials, inside a trial that has done 1 of its 3 epochs
    _kill_mid_trial(_command(run), env, run, finished=3)

    study = open_study(run)
    # The killed session's wall time counts up to its last epoch: it recorded its wall time only
    # when a trial ended, and a kill lost the running trial's (a user review, 2026-12-06: up to a
    # trial a kill, over --max-time). On one CPU, wall time is at least the device time it paid.
    from budgetnas.search.records import spent_of

    spent = spent_of(study)
    assert spent.wall_seconds >= spent.device_seconds > 0, spent
    assert spent.wall_seconds > float(study.user_attrs.get("wall_seconds", 0.0)), (spent, study.user_attrs)
    before = {t.number: (t.params, t.values, record_of(t)["curve"]) for t in study.get_trials()
              if status_of(t) == "complete"}
    assert len(before) >= 3
    assert len(before) < MAX_TRIALS

    done = subprocess.run(_command(run), env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr

    trials = open_study(run).get_trials()
    after = {t.number: (t.params, t.values, record_of(t)["curve"]) for t in trials if status_of(t) == "complete"}
    for number, record in before.items():  # nothing finished was lost or changed
        assert after[number] == record
    counted = [t for t in trials if counts_as_trial(t)]
    assert len(counted) == MAX_TRIALS  # exact trial budget, over both processes
    keys = [record_of(t)["cache_key"] for t in trials if status_of(t) == "complete"]
    assert len(keys) == len(set(keys))  # no architecture trained twice at the same fidelity
    for t in trials:  # a trial the kill cut off was re-queued with the same cell and then finished
        if status_of(t) == "interrupted":
            retries = [r for r in trials if record_of(r).get("retry_of") == t.number]
            assert len(retries) == 1 and retries[0].params == t.params
            assert counts_as_trial(retries[0])
    assert (run / "best" / "model.pt").exists()
    assert "trial budget reached" in done.stdout
    assert any(status_of(t) == "interrupted" for t in trials), [status_of(t) for t in trials]


def test_a_killed_finetune_resumes_its_interrupted_cell_before_the_cells_queued_behind_it(tmp_path: Path) -> None:
    """(found 2026-12-07) The interrupted cell was queued again behind the finetune's unstarted
    cells while its slot stayed reserved: rerun with room for one more cell, the search refused the
    next queued cell and stopped, training nothing, at every rerun."""
    from tests.conftest import NB201_CSV

    if not NB201_CSV.exists():
        pytest.skip("shared NB201 table not present")
    run = tmp_path / "run"
    command = [sys.executable, "-m", "budgetnas", "finetune", "--data", "digits", "--run-dir", str(run),
               "--from-bench", str(NB201_CSV), "--k", "4", "--epochs", "4", "-C", "4", "-N", "1",
               "--final-C", "4", "--final-N", "1", "--no-final", "--quiet"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    _kill_mid_trial(command, env, run, finished=1)  # inside the second cell's trial, after an epoch
    killed = {t.number: t for t in open_study(run).get_trials()}
    assert [status_of(t) for t in killed.values()][:2] == ["complete", "running"]
    second = killed[1].params

    resumed = subprocess.run(command + ["--max-trials", "2"], env=env, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    trials = open_study(run).get_trials()
    trained = [t for t in trials if status_of(t) == "complete"]
    assert len(trained) == 2, [(t.number, status_of(t)) for t in trials]
    assert trained[1].params == second and record_of(trained[1]).get("retry_of") == 1
    assert "trial budget reached (2/2 trials)" in resumed.stderr
    # The cells not reached wait, unstarted and in their order, for a run with a larger budget.
    assert [status_of(t) for t in trials if t.number > 1 and t is not trained[1]] == ["waiting"] * 2


def test_queued_cells_are_taken_retries_first_then_by_rank_then_as_queued() -> None:
    import optuna

    from budgetnas.search.study import _ask_in_order

    study = optuna.create_study()
    study.enqueue_trial({"x": 0.0}, user_attrs={"rank": 2})
    study.enqueue_trial({"x": 1.0}, user_attrs={"rank": 0})  # (handed back: queued again behind the rest)
    study.enqueue_trial({"x": 2.0}, user_attrs={"retry_of": 7})
    study.enqueue_trial({"x": 3.0}, user_attrs={"rank": 1})
    study.enqueue_trial({"x": 4.0}, user_attrs={"rank": 1})
    taken = []
    for _ in range(5):
        trial = _ask_in_order(study, lambda t: t.user_attrs.get("rank", 9))
        taken.append(trial.suggest_float("x", 0, 10))
        study.tell(trial, 0.0)
    assert taken == [2.0, 1.0, 3.0, 4.0, 0.0]
    trial = _ask_in_order(study)  # none queued: a new trial, as study.ask() gives
    assert trial.number == 5 and trial.params == {}
    # Without a rank, retries first and the rest as queued.
    for x in (0.0, 1.0, 2.0):
        study.enqueue_trial({"x": x}, user_attrs={"retry_of": 1} if x == 2.0 else {})
    assert [_ask_in_order(study).suggest_float("x", 0, 10) for _ in range(3)] == [2.0, 0.0, 1.0]
