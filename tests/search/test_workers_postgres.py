"""Three worker processes on one study in a real PostgreSQL server: the trial budget is exact,
no trial is lost or run twice, and a worker killed mid-trial has its trial re-queued by the others."""

from __future__ import annotations

import argparse
import contextlib
import glob
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from budgetnas.search import open_study
from budgetnas.search.records import counts_as_trial, record_of, status_of


def _pg_bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return candidates[-1] if candidates else None


@contextlib.contextmanager
def _server() -> Iterator[tuple[str, Callable[[str], None]]]:
    """A real PostgreSQL server (Debian's package) on a private socket and port: its URL, and a
    function that runs ``pg_ctl`` ``start`` or ``stop`` on it (to take it away and bring it back)."""
    pytest.importorskip("psycopg2")
    initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
    if not initdb or not pg_ctl:
        pytest.skip("PostgreSQL server binaries not installed (apt-get install postgresql)")
    # Outside pytest's own temporary root, which is private to this user (0700).
    root = Path(tempfile.mkdtemp(prefix="budgetnas-pg-"))
    os.chmod(root, 0o755)
    data, sock = root / "data", root / "sock"
    sock.mkdir()
    as_user: list[str] = []
    if os.geteuid() == 0:  # the server refuses to run as root
        as_user = ["runuser", "-u", "postgres", "--"]
        shutil.chown(root, "postgres")
        shutil.chown(sock, "postgres")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    subprocess.run([*as_user, initdb, "-D", str(data), "-U", "postgres", "-A", "trust"], check=True,
                   capture_output=True)

    def ctl(action: str) -> None:
        extra = ["-m", "fast"] if action == "stop" else []
        subprocess.run([*as_user, pg_ctl, "-D", str(data), "-w", "-l", str(root / "log"), "-o",
                        f"-p {port} -k {sock} -c listen_addresses=127.0.0.1 -c max_connections=100",
                        *extra, action], check=True, capture_output=True)

    ctl("start")
    try:
        yield f"postgresql+psycopg2://postgres@127.0.0.1:{port}/postgres", ctl
    finally:
        subprocess.run([*as_user, pg_ctl, "-D", str(data), "-m", "immediate", "stop"], capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def postgres() -> Iterator[str]:
    """A real PostgreSQL server started for these tests, on a unix socket."""
    with _server() as (url, _):
        yield url


def _search_cmd(url: str, run: Path, trials: int, name: str) -> list[str]:
    return [sys.executable, "-m", "budgetnas", "search", "--data", "digits", "--run-dir", str(run),
            "--storage", url, "--study-name", name, "--max-trials", str(trials), "--strategy", "random",
            "--epochs", "2", "-C", "4", "-N", "1", "--final-C", "4", "--final-N", "1", "--final-epochs", "1",
            "--quiet"]


def _worker_cmd(url: str, name: str, run: Path) -> list[str]:
    return [sys.executable, "-m", "budgetnas", "worker", "--storage", url, "--study-name", name,
            "--run-dir", str(run), "--quiet"]


def _wait_until(found: Callable[[], object], proc: subprocess.Popen) -> object:
    """Poll ``found`` until it returns something true (an error, as while the study is being
    created, counts as not yet), and return it; ``proc`` must stay alive meanwhile."""
    deadline = time.time() + 120
    while True:
        try:
            if result := found():
                return result
        except Exception:
            pass
        assert proc.poll() is None, proc.communicate()[1]
        assert time.time() < deadline
        time.sleep(0.2)


def _wait_for_study(url: str, name: str, creator: subprocess.Popen) -> None:
    """Until the study ``name`` exists with its configuration (``creator`` must stay alive)."""
    _wait_until(lambda: open_study(None, storage=url, study_name=name).user_attrs.get("config"), creator)


def test_three_workers_share_one_exact_budget(postgres: str, tmp_path: Path) -> None:
    trials = 9
    run = tmp_path / "shared-run"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    # The first process creates the study (with --no-final it only searches), then two workers join.
    first = subprocess.Popen([*_search_cmd(postgres, run, trials, "three"), "--no-final"], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _wait_for_study(postgres, "three", first)
    workers = [subprocess.Popen(_worker_cmd(postgres, "three", tmp_path / f"w{i}"), env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(2)]
    outs = [p.communicate(timeout=300) for p in [first, *workers]]
    for p, (out, err) in zip([first, *workers], outs):
        assert p.returncode == 0, err
    study = open_study(None, storage=postgres, study_name="three")
    all_trials = study.get_trials()
    counted = [t for t in all_trials if counts_as_trial(t)]
    assert len(counted) == trials  # exact, not up to trials + 2
    keys = [record_of(t)["trial_key"] for t in counted]
    assert len(set(keys)) == trials  # no trial run twice
    workers_seen = {record_of(t)["worker"] for t in counted}
    assert len(workers_seen) >= 2  # the work really was shared
    assert not [t for t in all_trials if status_of(t) in ("running", "waiting")]  # nothing left behind
    # Then the search command again trains and tests the best cell.
    final = subprocess.run(_search_cmd(postgres, run, trials, "three"), env=env, capture_output=True,
                           text=True, timeout=300)
    assert final.returncode == 0, final.stderr
    assert (run / "best" / "model.pt").exists()
    # Any machine can summarise the shared study without the run directory.
    show = subprocess.run([sys.executable, "-m", "budgetnas", "show", "--storage", postgres,
                           "--study-name", "three"], capture_output=True, text=True, timeout=120)
    assert show.returncode == 0, show.stderr
    assert f"{trials}" in show.stdout and "test" in show.stdout.lower()


def test_two_search_commands_on_one_study_train_the_final_model_once(postgres: str, tmp_path: Path) -> None:
    run = tmp_path / "run"  # one run directory on a path both reach (a shared disk in real use)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    cmd = _search_cmd(postgres, run, 4, "twice")
    cmd.insert(cmd.index("search"), "--verbose")
    cmd[cmd.index("--epochs") + 1] = "1"
    first = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _wait_for_study(postgres, "twice", first)  # the second joins once the first has created it
    second = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    outs = [p.communicate(timeout=300) for p in (first, second)]
    assert [p.returncode for p in (first, second)] == [0, 0], [e for _, e in outs]
    logs = "".join(err for _, err in outs)
    assert len(re.findall(r"final training of \S+ for \d+ epochs?", logs)) == 1, logs  # once, not per process
    assert "by another worker" in logs
    study = open_study(None, storage=postgres, study_name="twice")
    assert study.user_attrs["final_spent"]["device_seconds"] > 0
    assert len([t for t in study.get_trials() if counts_as_trial(t)]) == 4


def test_a_killed_workers_trial_is_requeued_by_heartbeat(postgres: str, tmp_path: Path) -> None:
    run = tmp_path / "run"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    cmd = [*_search_cmd(postgres, run, 1, "heartbeat"), "--no-final"]
    cmd[cmd.index("--epochs") + 1] = "20"  # a long trial, so the kill lands inside it
    victim = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    # (an epoch recorded and its checkpoint saved: the epoch's record comes first, so a kill landing
    # between the two, as one CI run's did, 2026-12-06, left nothing to resume from)
    running = _wait_until(lambda: [t for t in open_study(None, storage=postgres, study_name="heartbeat").get_trials()
                                    if status_of(t) == "running" and record_of(t).get("curve") and (
                                        run / "checkpoints" / f"{record_of(t)['trial_key']}.ckpt").exists()], victim)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    victim_key = record_of(running[0])["trial_key"]
    # A new worker with a short grace period notices the silent trial and re-queues it.
    from budgetnas.search import Search, SearchConfig

    saved = open_study(None, storage=postgres, study_name="heartbeat").user_attrs["config"]
    config = SearchConfig.from_dict({**saved, "storage": postgres, "study_name": "heartbeat",
                                     "final_training": False, "run_dir": str(tmp_path / "w"),
                                     "heartbeat_interval": 0.5, "heartbeat_grace": 2.0})
    time.sleep(2.5)
    result = Search(config, progress=False).run()
    trials = open_study(None, storage=postgres, study_name="heartbeat").get_trials()
    cut = [t for t in trials if record_of(t).get("trial_key") == victim_key]
    assert [status_of(t) for t in cut] == ["interrupted", "complete"]  # same identity, finished once
    assert record_of(cut[1]).get("resumed_from_epoch", 1) > 1  # it continued from its checkpoint
    assert result.spent.trials == 1  # the trial budget of one was not exceeded by the retry


def test_trials_outrunning_their_forecasts_together_never_hold_more_than_the_limit(postgres: str) -> None:
    # Here under PostgreSQL's row locks (the ledger's SQL locks the slot row, then the budget's).
    from tests.search.test_ledger import extend_together

    extend_together(postgres, "extend")


def test_two_requeued_trials_cannot_both_resume_past_a_lowered_trial_budget(postgres: str) -> None:
    """(a workers review, 2026-12-07) Under PostgreSQL a reservation blocked by another re-checked
    only the budget's row: its count of the slots taken kept the old snapshot, and both retries
    resumed past --max-trials 3 (SQLite's write lock kept it: test_ledger.py)."""
    import threading

    import sqlalchemy as sa

    from budgetnas.search.ledger import SLOTS, BudgetLedger

    ledger = BudgetLedger(postgres, "lowered")
    for key in ("d1", "d2", "r1", "r2"):  # two trials done, two cut off and re-queued
        slot = ledger.reserve(key, "w0", max_trials=None, seconds_limit=None, forecast=1.0)
        ledger.commit(slot, 1.0, finished=key.startswith("d"))
    a, b = BudgetLedger(postgres, "lowered"), BudgetLedger(postgres, "lowered")

    taken = threading.Event()  # (A has its slot, uncommitted: B starts then, not after a guessed
    # sleep, which a loaded machine could outlast: a review, 2026-12-08)

    @sa.event.listens_for(a.engine, "after_execute")
    def slow(conn, clause, *args):  # worker A is slow to commit once it has taken its slot
        if str(clause).startswith("UPDATE budgetnas_slots"):
            taken.set()
            time.sleep(1.5)

    got: dict[str, object] = {}
    first = threading.Thread(target=lambda: got.__setitem__("a", a.reserve(
        "r1", "wA", max_trials=3, seconds_limit=None, forecast=1.0)))
    first.start()
    assert taken.wait(60)
    got["b"] = b.reserve("r2", "wB", max_trials=3, seconds_limit=None, forecast=1.0)
    first.join()
    assert got["a"] is not None and got["b"] is None
    with a.engine.connect() as c:
        states = [r.state for r in c.execute(sa.select(SLOTS.c.state).where(SLOTS.c.study == "lowered"))]
    assert sorted(states) == ["done", "done", "requeued", "running"]
    for each in (a, b, ledger):
        each.close()


def test_a_retry_reserved_while_a_repair_commits_its_dead_attempt_does_not_deadlock(postgres: str) -> None:
    """(review, 2026-12-07) reserve locked the budget's row, then the slot's; commit the slot's,
    then the budget's. Together on one re-queued slot, PostgreSQL found a deadlock and aborted one
    of them: a database error, read as an outage. (No caller does this today: a repair commits only
    slots no retry waits for; the ledger's calls must not deadlock however workers interleave
    them.) Both lock the slot's row first now: the second waits for the first."""
    import threading

    import sqlalchemy as sa

    from budgetnas.search.ledger import SLOTS, BudgetLedger, Slot

    ledger = BudgetLedger(postgres, "lock-order")
    slot = ledger.reserve("k", "w0", max_trials=None, seconds_limit=None, forecast=1.0)
    ledger.commit(slot, 0.5, finished=False)  # cut off: re-queued, its retry to come
    a, b = BudgetLedger(postgres, "lock-order"), BudgetLedger(postgres, "lock-order")

    locked = threading.Event()  # (A holds its lock: the interleaving this test is for, every time)

    @sa.event.listens_for(a.engine, "after_execute")
    def slow(conn, clause, *args):  # worker A holds what it has locked a while
        if str(clause).startswith("SELECT") and "FOR UPDATE" in str(clause):
            locked.set()
            time.sleep(1.5)

    got: dict[str, object] = {}

    def reserve() -> None:
        try:
            got["a"] = a.reserve("k", "wA", max_trials=5, seconds_limit=100.0, forecast=2.0)
        except Exception as e:  # noqa: BLE001 (the deadlock's error, asserted on below)
            got["a"] = e
    first = threading.Thread(target=reserve)
    first.start()
    assert locked.wait(60)
    try:
        got["b"] = b.commit(Slot("k", 0.0), 0.25, finished=False)  # the repair's commit
    except Exception as e:  # noqa: BLE001
        got["b"] = e
    first.join()
    assert not isinstance(got["a"], Exception) and not isinstance(got["b"], Exception), got
    with a.engine.connect() as c:
        forecast = c.execute(sa.select(SLOTS.c.forecast).where(SLOTS.c.study == "lock-order")).scalar_one()
    # Whichever went first, the totals hold what the slot does: nothing reserved twice or lost.
    assert ledger.usage()[1] == pytest.approx(0.5 + forecast + (0.25 if got["b"] else 0.0))
    for each in (a, b, ledger):
        each.close()


def test_heartbeats_go_by_the_servers_clock_and_a_taken_slots_beat_is_refused(postgres: str, monkeypatch) -> None:
    # (test_ledger.py checks both on SQLite; here PostgreSQL's clock and its row updates)
    from budgetnas.search.ledger import BudgetLedger

    ledger = BudgetLedger(postgres, "clock", heartbeat_interval=60.0)  # (beaten by hand below)
    assert abs(ledger.clock_offset()) < 5.0
    assert ledger.reserve("live", "w1", max_trials=None, seconds_limit=None, forecast=1.0) is not None
    ledger.start_beating("live", "w1")
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() + 120.0)  # a worker whose clock runs 2 minutes ahead
    ahead = BudgetLedger(postgres, "clock")
    assert ahead.stale(60.0) == set() and not ahead.claim_stale("live", "w2", 60.0)
    assert ahead.clock_offset() == pytest.approx(-120.0, abs=5.0)
    monkeypatch.undo()
    assert ahead.claim_stale("live", "w2", -1e9)  # (taken over, as after a lapse of w1's heartbeat)
    ledger.beat()
    assert ledger.lost("live")
    ahead.close()
    ledger.close()


def test_a_database_that_goes_away_mid_trial_stops_the_worker_cleanly_and_nothing_is_lost(tmp_path: Path) -> None:
    """A review, 2026-12-06: a database restart (or a failover, a network blip) stopped every worker
    with sqlalchemy's traceback and exit status 1. It is one line now and, once the server has
    stayed away for --db-wait, exit status 75 (EX_TEMPFAIL: a supervisor may retry); the running
    trial is not recorded as the cell's failure, and the same command, run again once the server is
    back, resumes it from its checkpoint."""
    with _server() as (url, ctl):
        run = tmp_path / "run"
        cmd = [*_search_cmd(url, run, 1, "gone"), "--no-final", "--db-wait", "3s"]
        cmd[cmd.index("--epochs") + 1] = "30"  # a long trial, so the server goes away inside it
        proc = subprocess.Popen(cmd, env={**os.environ, "PYTHONUNBUFFERED": "1"}, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        _wait_until(lambda: any(len(record_of(t).get("curve") or []) >= 2 for t in open_study(
            None, storage=url, study_name="gone").get_trials() if status_of(t) == "running"), proc)
        ctl("stop")
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 75, err
        assert "error: the study's database could not be reached or written" in err and "Traceback" not in err
        assert "waiting up to 3.0 s for it (--db-wait)" in err and "answers again" not in err
        ctl("start")
        # Run again (with a short heartbeat grace, not to wait the default minute for it).
        from budgetnas.search import Search, SearchConfig

        saved = open_study(None, storage=url, study_name="gone").user_attrs["config"]
        config = SearchConfig.from_dict({**saved, "storage": url, "study_name": "gone", "run_dir": str(run),
                                         "final_training": False, "heartbeat_interval": 0.5,
                                         "heartbeat_grace": 2.0})
        time.sleep(2.5)
        assert Search(config, progress=False).run().spent.trials == 1
        trials = open_study(None, storage=url, study_name="gone").get_trials()
        assert [status_of(t) for t in trials] == ["interrupted", "complete"]  # not "failed": no fault of the cell
        assert record_of(trials[1]).get("resumed_from_epoch", 1) > 2  # from its checkpoint


def test_a_database_restarted_mid_trial_is_waited_for_and_its_trial_resumed_by_the_same_process(
        tmp_path: Path, monkeypatch, capsys) -> None:
    """A server restart stopped every worker (exit 75), each to be restarted by hand or by a
    supervisor, and the new process then waited a heartbeat grace before it could resume the trial
    it had been training. With --db-wait the command waits for the server and goes on in the same
    process, which takes its own dead trial back at once (the grace here is an hour: waited for,
    the trial would still be running and the trial budget of one spent)."""
    import dataclasses
    import threading

    from budgetnas import cli

    with _server() as (url, ctl):
        run = tmp_path / "run"
        argv = [*_search_cmd(url, run, 1, "blip")[3:], "--no-final", "--db-wait", "2m"]
        argv[argv.index("--epochs") + 1] = "30"  # a long trial, so the server goes away inside it
        config = cli._config
        monkeypatch.setattr(cli, "_config", lambda a: dataclasses.replace(config(a), heartbeat_grace=3600.0))
        restarted: list[bool] = []

        def restart_mid_trial() -> None:
            deadline = time.time() + 120
            while time.time() < deadline and not any(
                    len(record_of(t).get("curve") or []) >= 2 for t in _trials_or_none(url, "blip")
                    if status_of(t) == "running"):
                time.sleep(0.2)
            ctl("stop")
            time.sleep(3)
            ctl("start")
            restarted.append(True)

        blip = threading.Thread(target=restart_mid_trial, daemon=True)
        blip.start()
        code = cli.main(argv)
        blip.join(timeout=60)
        err = capsys.readouterr().err
        assert restarted and code == 0, err
        assert "for it (--db-wait)" in err and "the study's database answers again" in err and "Traceback" not in err
        trials = open_study(None, storage=url, study_name="blip").get_trials()
        assert [status_of(t) for t in trials] == ["interrupted", "complete"]  # not "failed": no fault of the cell
        assert record_of(trials[1]).get("resumed_from_epoch", 1) > 2  # from its checkpoint


def test_a_search_started_before_its_database_server_waits_for_it_and_a_wrong_host_is_said_at_once(
        tmp_path: Path) -> None:
    """A worker started beside its database (a compose file, a cluster job) met a server still down
    and exited 2 at once, "check the URL", --db-wait or not (a session-30 leftover). A server that
    does not answer is waited for at the first start too; a host name that does not resolve is a
    mistake, said at once."""
    with _server() as (url, ctl):
        ctl("stop")
        run = tmp_path / "run"
        cmd = [*_search_cmd(url, run, 1, "early"), "--no-final", "--db-wait", "2m"]
        proc = subprocess.Popen(cmd, env={**os.environ, "PYTHONUNBUFFERED": "1"}, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        lines: list[str] = []
        reader = threading.Thread(target=lambda: lines.extend(iter(proc.stderr.readline, "")), daemon=True)
        reader.start()
        deadline = time.monotonic() + 120
        while not any("waiting up to" in line for line in lines) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(1.5)
        assert proc.poll() is None, "".join(lines)  # (waiting, not gone with exit status 2)
        ctl("start")
        proc.wait(timeout=180)
        reader.join(timeout=30)
        err = "".join(lines)
        assert proc.returncode == 0, err
        assert "waiting up to" in err and "then this search starts" in err and "check its host and port" in err
        assert "the study's database answers again" in err and "Traceback" not in err
        assert [status_of(t) for t in open_study(None, storage=url, study_name="early").get_trials()] == ["complete"]
    wrong = url.replace("127.0.0.1", "no-such-host.invalid")
    started = time.monotonic()
    done = subprocess.run([*_search_cmd(wrong, tmp_path / "wrong", 1, "early"), "--db-wait", "2m"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and time.monotonic() - started < 60, done.stderr
    assert "check the URL" in done.stderr and "waiting up to" not in done.stderr


def _trials_or_none(url: str, name: str) -> list:
    """The study's trials, or none while it is being created (or the server is away)."""
    try:
        return open_study(None, storage=url, study_name=name).get_trials()
    except Exception:
        return []


def test_a_postgres_url_spelled_as_heroku_does_opens_the_study(postgres: str) -> None:
    # (postgres://, which SQLAlchemy does not load: "Can't load plugin: sqlalchemy.dialects:postgres")
    heroku = "postgres://" + postgres.split("://", 1)[1]
    study = open_study(None, ["maximize"], storage=heroku, study_name="spelling")
    assert open_study(None, storage=postgres, study_name="spelling")._study_id == study._study_id


def _db_wait_args(url: str, seconds: float) -> argparse.Namespace:
    return argparse.Namespace(command="worker", storage=url, run_dir=None, db_wait=seconds)


def _server_gone() -> Exception:
    import sqlalchemy as sa

    return sa.exc.OperationalError("SELECT 1", {}, Exception("server closed the connection unexpectedly"))


def test_db_wait_runs_sessions_again_at_growing_intervals_for_no_longer_than_it_allows(
        postgres: str, capsys) -> None:
    """A review of --db-wait (2026-12-07): a database error that lasts while the server answers (a
    read-only standby after a failover, say) ran the session again in a tight loop, 31 sessions in
    half a second, as only the time spent probing the server counted against --db-wait. The wait
    runs from the outage's start, sessions included, and sessions are run again at growing
    intervals."""
    from budgetnas import cli

    starts: list[float] = []

    def failing() -> None:
        starts.append(time.monotonic())
        raise _server_gone()

    with pytest.raises(Exception, match="server closed the connection"):
        cli._riding_out_outages(_db_wait_args(postgres, 4.0), failing)
    assert len(starts) == 3, starts  # at 0, 1 and 3 s (not at 7 s: past the 4 s allowed)
    assert all(b - a >= 0.9 for a, b in zip(starts, starts[1:])), starts
    err = capsys.readouterr().err
    assert err.count("for it (--db-wait)") == 3 and err.count("answers again") == 2


def test_db_wait_does_not_run_a_session_stopped_by_a_signal_again(postgres: str) -> None:
    """A session stopped by SIGTERM while the server was away failed writing its stop; --db-wait
    ran it again, as if no signal had come (a review, 2026-12-07)."""
    from budgetnas import cli
    from budgetnas.search import study as study_mod

    runs: list[int] = []

    def stopped_then_failed() -> None:
        runs.append(1)
        study_mod._SIGNALS.append("SIGTERM")  # (what a search's signal handler records)
        raise _server_gone()

    with pytest.raises(Exception, match="server closed the connection"):
        cli._riding_out_outages(_db_wait_args(postgres, 60.0), stopped_then_failed)
    assert runs == [1]


def test_db_wait_is_left_at_once_on_sigterm_with_the_exit_status_of_a_signal(capsys) -> None:
    """SIGTERM while waiting for the database (a machine shut down): it stops at once with
    128 + 15 and says how to resume, instead of dying silently on the default action."""
    import threading

    from budgetnas import cli

    pytest.importorskip("psycopg2")
    with socket.socket() as s:  # a port no server listens on: connection refused, every time
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    failed = threading.Event()

    def failing() -> None:
        failed.set()
        raise _server_gone()

    def terminate() -> None:
        failed.wait(30)
        time.sleep(1.5)  # (well inside the wait, whose handler is set right after the warning)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=terminate, daemon=True).start()
    with pytest.raises(SystemExit) as stopped:
        cli._riding_out_outages(_db_wait_args(f"postgresql+psycopg2://postgres@127.0.0.1:{port}/x", 60.0), failing)
    assert stopped.value.code == 128 + signal.SIGTERM
    assert "SIGTERM: stopped while waiting for the study's database" in capsys.readouterr().err


def test_db_wait_gives_up_with_the_databases_error_not_the_config_error_of_a_reruns_start(postgres: str) -> None:
    """A session run again that met the server gone at its start reported it as a setting that
    does not work ("check the URL", ConfigError); when --db-wait ran out on such a session, that
    was the error the command ended with (exit 2), not the database's (exit 75: try later)."""
    import sqlalchemy as sa

    from budgetnas import cli
    from budgetnas.errors import ConfigError

    calls: list[int] = []

    def session() -> None:
        calls.append(1)
        if len(calls) == 1:
            raise _server_gone()
        try:
            raise _server_gone()
        except Exception:  # (as open_study and the ledger's start report it)
            raise ConfigError("cannot open the study database: the server is gone; check the URL") from None

    with pytest.raises(sa.exc.OperationalError):
        cli._riding_out_outages(_db_wait_args(postgres, 2.5), session)
    assert len(calls) >= 2


def test_a_server_that_refuses_writes_for_a_while_is_a_database_outage(postgres: str) -> None:
    """A read-only standby after a failover refuses writes with SQLSTATE 25006, which SQLAlchemy
    raises as an InternalError: it was not taken for the database failing, so --db-wait did not
    wait for it and the command ended with a traceback (a review, 2026-12-07)."""
    import sqlalchemy as sa

    from budgetnas.search.ledger import BudgetLedger, database_failed

    admin = sa.create_engine(postgres, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(sa.text("CREATE DATABASE standby"))
        c.execute(sa.text("ALTER DATABASE standby SET default_transaction_read_only = on"))
    admin.dispose()
    with pytest.raises(sa.exc.DBAPIError) as refused:
        BudgetLedger(postgres.rsplit("/", 1)[0] + "/standby", "s")
    assert database_failed(refused.value), repr(refused.value)


def test_a_database_server_that_never_answers_is_given_up_on_not_waited_for_for_ever(monkeypatch) -> None:
    """(review, 2026-12-07) A host that takes the connection and then says nothing (gone silent
    mid-handshake, a proxy in front of a dead server) held the worker for good: no connect timeout.
    Now each opening of the study's database fails as an outage (which --db-wait waits out)."""
    pytest.importorskip("psycopg2")
    import threading

    from budgetnas.search import ledger as ledger_mod
    from budgetnas.errors import ConfigError

    monkeypatch.setattr(ledger_mod, "CONNECT_TIMEOUT", 2, raising=False)
    held: list[socket.socket] = []
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        server.settimeout(0.2)
        stop = threading.Event()

        def take_and_say_nothing() -> None:
            while not stop.is_set():
                with contextlib.suppress(OSError):
                    held.append(server.accept()[0])
        silent = threading.Thread(target=take_and_say_nothing, daemon=True)
        silent.start()
        url = f"postgresql+psycopg2://nas@127.0.0.1:{server.getsockname()[1]}/nas"
        got: dict[str, BaseException | None] = {}

        def attempt(name: str, call: Callable[[], object]) -> None:
            try:
                call()
                got[name] = None
            except BaseException as e:  # noqa: BLE001 (asserted on below)
                got[name] = e
        calls = {"ledger": lambda: ledger_mod.BudgetLedger(url, "s"),
                 "study": lambda: open_study(None, storage=url, study_name="s")}
        threads = [threading.Thread(target=attempt, args=item, daemon=True) for item in calls.items()]
        start = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=30)
        stop.set()
        silent.join()
    for s in held:
        s.close()
    assert set(got) == {"ledger", "study"}, f"still waiting after {time.monotonic() - start:.0f} s: {got}"
    assert ledger_mod.database_failed(got["ledger"]), got
    assert isinstance(got["study"], ConfigError) and "timeout" in str(got["study"]).lower(), got


def test_the_studys_connections_carry_keepalives(postgres: str) -> None:
    # (what the kernel does with them cannot be shown without cutting a live connection off)
    from budgetnas.search.ledger import BudgetLedger

    ledger = BudgetLedger(postgres, "keepalive")
    raw = ledger.engine.raw_connection()
    try:
        params = raw.dbapi_connection.get_dsn_parameters()
    finally:
        raw.close()
    assert params.get("keepalives") == "1" and params.get("keepalives_idle") == "30", params
    assert params.get("connect_timeout") == "10", params
    study = open_study(None, storage=postgres, study_name="keepalive-study", directions=["maximize"])
    raw = study._storage._backend.engine.raw_connection() if hasattr(study._storage, "_backend") \
        else study._storage.engine.raw_connection()
    try:
        assert raw.dbapi_connection.get_dsn_parameters().get("keepalives_idle") == "30"
    finally:
        raw.close()
    ledger.close()


_SILENT_HOST = r'''
import json, subprocess, sys, threading, time
import sqlalchemy as sa
subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
from budgetnas.search import ledger as ledger_mod
from tests.search.test_workers_postgres import _server
ledger_mod.TCP_USER_TIMEOUT_MS = 2000  # (a minute, and 30 s + 3 x 10 s of keepalives, in use)
getattr(ledger_mod, "_PG_OPTIONS", {}).update(keepalives_idle=1, keepalives_interval=1, keepalives_count=2)
out = {}
with _server() as (url, _):
    ledger = ledger_mod.BudgetLedger(url, "silent")
    assert ledger.reserve("k", "w", max_trials=None, seconds_limit=None, forecast=1.0) is not None
    waiting = ledger_mod.BudgetLedger(url, "silent")

    def answer_never_comes():  # a query sent and taken in; then the host goes silent
        t = time.monotonic()
        try:
            with waiting.engine.connect() as c:
                c.execute(sa.text("select pg_sleep(120)"))
            out["waiting"] = ["answered", time.monotonic() - t]
        except Exception as e:
            out["waiting"] = [type(e).__name__, time.monotonic() - t, ledger_mod.database_failed(e)]
    th = threading.Thread(target=answer_never_comes, daemon=True)
    th.start()
    time.sleep(1.0)
    subprocess.run(["ip", "link", "set", "lo", "down"], check=True)  # the host goes silent
    t = time.monotonic()
    try:
        ledger.usage()  # a query on the pooled connection: sent, never acknowledged
        out["sending"] = ["answered", time.monotonic() - t]
    except Exception as e:
        out["sending"] = [type(e).__name__, time.monotonic() - t, ledger_mod.database_failed(e)]
    th.join(timeout=40)
    print(json.dumps(out), flush=True)
'''


def test_a_database_host_gone_silent_mid_session_is_an_outage_within_the_keepalive_bounds(tmp_path: Path) -> None:
    """(review, 2026-12-07) A host gone silent (no reset sent: a spot instance reclaimed, a
    partition) held a worker for good: a query waiting for its answer waits for ever without
    keepalives, and one whose sending is not acknowledged for about 15 minutes (the kernel's
    retries). Here a private network namespace whose loopback is taken down under a live server,
    with the bounds shortened to seconds: both end as a database outage."""
    if _pg_bin("initdb") is None or shutil.which("ip") is None or shutil.which("unshare") is None or \
            subprocess.run(["unshare", "-n", "true"], capture_output=True).returncode != 0:
        pytest.skip("needs PostgreSQL's server and a private network namespace (root: unshare -n)")
    pytest.importorskip("psycopg2")
    script = tmp_path / "silent.py"
    script.write_text(_SILENT_HOST)
    root = str(Path(__file__).resolve().parents[2])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run(["unshare", "-n", sys.executable, str(script)], capture_output=True, text=True,
                          timeout=120, env=env, cwd=root)
    assert done.returncode == 0, done.stderr[-3000:]
    import json

    out = json.loads(done.stdout.strip().splitlines()[-1])
    for case in ("sending", "waiting"):
        name, seconds, outage = out[case]
        assert outage and seconds < 20, (case, out)
