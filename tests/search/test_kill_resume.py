"""A search process killed with SIGKILL resumes with no finished trial lost or repeated."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

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


def test_sigkill_mid_search_then_rerun_resumes_exactly(tmp_path: Path) -> None:
    run = tmp_path / "run"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(_command(run), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while True:  # kill after 3 finished trials, inside a trial that has done 1 of its 3 epochs
        done, mid = _progress(run / "study.db")
        if done >= 3 and mid:
            break
        assert proc.poll() is None, proc.stderr.read().decode()
        assert time.time() < deadline, "the search did not finish 3 trials in time"
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL

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
