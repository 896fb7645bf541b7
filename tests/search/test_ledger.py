"""The budget ledger on its own (SQLite here; the same SQL runs on PostgreSQL in
test_workers_postgres.py): atomic slots, exact limits, re-queued trials, one-off jobs."""

from __future__ import annotations

from pathlib import Path

import pytest

import sqlalchemy as sa

from budgetnas.search.ledger import SLOTS, BudgetLedger


def _ledger(tmp_path: Path) -> BudgetLedger:
    return BudgetLedger(f"sqlite:///{tmp_path / 'ledger.db'}", "s", heartbeat_interval=0.2)


def test_slots_enforce_the_trial_and_second_limits(tmp_path: Path) -> None:
    ledger = _ledger(tmp_path)
    a = ledger.reserve("a", "w", max_trials=2, seconds_limit=10.0, forecast=6.0)
    assert a is not None
    assert ledger.reserve("b", "w", max_trials=2, seconds_limit=10.0, forecast=6.0) is None  # 12 > 10 s
    b = ledger.reserve("b", "w", max_trials=2, seconds_limit=10.0, forecast=3.0)
    assert b is not None
    assert ledger.reserve("c", "w", max_trials=2, seconds_limit=None, forecast=0.0) is None  # 2 trials
    ledger.commit(a, 5.0)  # measured 5 s instead of the forecast 6
    assert ledger.usage() == (2, 8.0)
    ledger.release(b)  # never trained: the slot and its seconds come back
    assert ledger.usage() == (1, 5.0)
    ledger.close()


def test_a_slot_released_gives_back_what_it_holds_not_the_callers_copy(tmp_path: Path) -> None:
    """(review, 2026-12-08) release subtracted the caller's copy of the forecast; a slot extended
    meanwhile held more, which stayed reserved for good. A second release gives back nothing."""
    ledger = _ledger(tmp_path)
    a = ledger.reserve("a", "w", max_trials=None, seconds_limit=10.0, forecast=3.0)
    assert a is not None and ledger.extend(a, 4.0, seconds_limit=10.0, worker="w") is not None
    assert ledger.usage() == (1, 7.0)
    ledger.release(a)  # (the copy from before the extension: forecast 3)
    assert ledger.usage() == (0, 0.0)
    ledger.release(a)
    assert ledger.usage() == (0, 0.0)
    ledger.close()


def test_a_requeued_trial_reserves_its_seconds_again(tmp_path: Path) -> None:
    ledger = _ledger(tmp_path)
    cut = ledger.reserve("cut", "w", max_trials=None, seconds_limit=10.0, forecast=4.0)
    assert cut is not None
    ledger.commit(cut, 3.0, finished=False)  # stopped after 3 s; re-queued with the same key
    assert ledger.usage() == (1, 3.0)
    other = ledger.reserve("other", "w", max_trials=None, seconds_limit=10.0, forecast=5.0)
    assert other is not None  # 3 + 5 = 8 s of 10
    # The retry must fit under the limit like a new trial: 8 + 4 > 10, so it may not start yet.
    assert ledger.reserve("cut", "w", max_trials=None, seconds_limit=10.0, forecast=4.0) is None
    ledger.commit(other, 2.0)
    retry = ledger.reserve("cut", "w", max_trials=None, seconds_limit=10.0, forecast=4.0)
    assert retry is not None and retry.forecast == 4.0
    assert ledger.usage() == (2, 9.0)  # the retry kept its trial slot: still 2 trials, not 3
    ledger.close()


def test_a_one_off_job_is_claimed_once(tmp_path: Path) -> None:
    ledger = _ledger(tmp_path)
    assert ledger.claim_job("final:x", "w1", grace=60.0) == "claimed"
    assert ledger.claim_job("final:x", "w2", grace=60.0) == "running"
    ledger.finish_job("final:x")
    assert ledger.claim_job("final:x", "w2", grace=60.0) == "done"
    assert ledger.claim_job("final:y", "w1", grace=60.0) == "claimed"
    ledger.finish_job("final:y", done=False)  # handed back (stopped): someone may claim it again
    assert ledger.claim_job("final:y", "w2", grace=60.0) == "claimed"
    ledger.close()


def test_a_claimed_but_abandoned_slot_can_be_claimed_again(tmp_path: Path) -> None:
    ledger = _ledger(tmp_path)
    ledger.reserve("k", "w1", max_trials=None, seconds_limit=None, forecast=1.0)
    assert ledger.slot_keys() == {"k"}
    import time

    time.sleep(0.3)
    assert ledger.stale(0.2) == {"k"}
    assert ledger.claim_stale("k", "w2", 0.2)  # w2 takes the dead w1's trial...
    assert not ledger.claim_stale("k", "w3", 0.2)  # ...once: its claim is fresh
    time.sleep(0.3)  # ...and dies before re-queuing it: the re-queued slot goes stale in turn
    assert ledger.stale(0.2) == {"k"} and ledger.claim_stale("k", "w3", 0.2)
    ledger.close()


def test_a_dead_workers_forecast_is_given_back_when_its_trial_is_claimed(tmp_path: Path) -> None:
    # It stayed reserved for good: the retry reserved its own forecast on top, so every trial of
    # a dead worker shrank the study's seconds budget by its forecast until the search stopped
    # early with seconds left.
    import time

    ledger = _ledger(tmp_path)
    ledger.reserve("k", "w1", max_trials=None, seconds_limit=10.0, forecast=4.0)
    time.sleep(0.3)  # w1 was killed mid-trial: its heartbeat goes stale
    assert ledger.claim_stale("k", "w2", 0.2)
    assert ledger.usage() == (1, 0.0)  # the slot is kept (a retry), the dead attempt's 4 s are not
    retry = ledger.reserve("k", "w2", max_trials=None, seconds_limit=10.0, forecast=4.0)
    assert retry is not None and ledger.usage() == (1, 4.0)
    ledger.commit(retry, 3.0)
    assert ledger.usage() == (1, 3.0)
    assert ledger.reserve("n", "w2", max_trials=None, seconds_limit=10.0, forecast=7.0) is not None  # 3 + 7
    ledger.close()


def test_a_study_lock_is_held_by_one_worker_at_a_time(tmp_path: Path) -> None:
    import threading
    import time

    ledger, other = _ledger(tmp_path), _ledger(tmp_path)
    inside: list[str] = []
    overlap: list[bool] = []

    def critical(lg: BudgetLedger, name: str) -> None:
        for _ in range(5):
            with lg.hold("attrs", name, grace=30.0):
                overlap.append(bool(inside))
                inside.append(name)
                time.sleep(0.01)
                inside.remove(name)

    threads = [threading.Thread(target=critical, args=(lg, n)) for lg, n in ((ledger, "a"), (other, "b"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(overlap) == 10 and not any(overlap)
    with ledger.hold("attrs", "a", grace=30.0):
        assert ledger.open_slots() == []  # a lock is no trial slot (a session start would release it)
    assert ledger.slot_keys() == set()  # released at the end of the block
    # A holder that died (no heartbeat for the grace period) is taken over.
    assert ledger.claim_job("lock:attrs", "deadhost:1", 0.5) == "claimed"
    ledger.stop_beating("lock:attrs")
    start = time.perf_counter()
    with other.hold("attrs", "b", grace=0.5):
        assert time.perf_counter() - start >= 0.4
    ledger.close()
    other.close()


def test_a_trial_outrunning_its_forecast_extends_its_reservation_only_as_far_as_the_limit(tmp_path: Path) -> None:
    # Two workers' trials both outrun their forecasts near the end of a 10 s budget: between them
    # they may take the seconds left, not each the seconds left (which would overshoot).
    ledger, other = _ledger(tmp_path), _ledger(tmp_path)
    a = ledger.reserve("a", "w1", max_trials=None, seconds_limit=10.0, forecast=4.0)
    b = other.reserve("b", "w2", max_trials=None, seconds_limit=10.0, forecast=4.0)
    assert a is not None and b is not None
    a = ledger.extend(a, 1.5, seconds_limit=10.0, worker="w1")
    assert a is not None and a.forecast == 5.5 and ledger.usage() == (2, 9.5)
    b = other.extend(b, 1.5, seconds_limit=10.0, worker="w2")  # only 0.5 s are left: it gets those
    assert b is not None and b.forecast == 4.5 and ledger.usage() == (2, 10.0)
    assert ledger.extend(a, 1.5, seconds_limit=10.0, worker="w1") is None  # spent: the trial must stop
    ledger.commit(a, 5.2, finished=False)  # cut after 5.2 s: the whole extended reservation comes off
    assert ledger.usage() == (2, 9.7)
    # each slot records what it holds (a dead worker's is given back from there); the cut one, none
    assert {s.trial_key: s.forecast for s in other.open_slots()} == {"a": 0.0, "b": 4.5}
    other.commit(b, 4.5)
    assert ledger.usage() == (2, 9.7)
    ledger.close()
    other.close()


def test_a_slot_taken_over_by_another_worker_is_not_extended(tmp_path: Path) -> None:
    # (Review, 2026-12-06) a live worker whose heartbeat lapsed had its slot claimed by another;
    # extending it then put the released seconds back and overwrote the retry's reservation.
    import time

    ledger = _ledger(tmp_path)
    a = ledger.reserve("a", "w1", max_trials=None, seconds_limit=10.0, forecast=4.0)
    time.sleep(0.3)
    assert ledger.claim_stale("a", "w2", 0.2)  # w2 re-queues it: the 4 s are given back
    assert ledger.extend(a, 1.0, seconds_limit=10.0, worker="w1") is None  # w1 must stop
    assert ledger.usage() == (1, 0.0)
    ledger.close()


def extend_together(url: str, study: str) -> None:
    """Eight workers' trials outrun their forecasts at once and keep asking for more: the ledger at
    ``url`` must hand out the seconds left exactly once (also run on PostgreSQL)."""
    import threading

    limit = 20.0
    got: list[float] = []
    started = threading.Barrier(8)

    def worker(i: int) -> None:
        ledger = BudgetLedger(url, study)
        slot = ledger.reserve(f"t{i}", f"w{i}", max_trials=None, seconds_limit=limit, forecast=1.0)
        assert slot is not None
        started.wait(30)  # all eight are training: then they all outrun their forecasts
        while (more := ledger.extend(slot, 0.3, seconds_limit=limit, worker=f"w{i}")) is not None:
            slot = more
        got.append(slot.forecast)
        ledger.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    ledger = BudgetLedger(url, study)
    assert len(got) == 8 and ledger.usage() == (8, pytest.approx(limit))
    assert sum(got) == pytest.approx(limit)  # what each slot holds adds up to the ledger's total
    ledger.close()


def test_trials_outrunning_their_forecasts_together_never_hold_more_than_the_limit(tmp_path: Path) -> None:
    extend_together(f"sqlite:///{tmp_path / 'ledger.db'}", "s")


def test_a_worker_whose_slot_was_taken_over_finds_its_beat_refused_and_the_trial_lost(tmp_path: Path) -> None:
    """A review, 2026-12-06: a worker paused past the grace period (a suspended VM) had its trial
    taken over, then woke and trained on beside the new worker (its beats, by trial key alone,
    even kept the taken slot fresh) until a write to the finished trial crashed it. Beats are
    fenced now: only the slot's worker, while it is running, may beat it; refused, it is lost."""
    import time

    ledger = BudgetLedger(f"sqlite:///{tmp_path / 'ledger.db'}", "s", heartbeat_interval=60.0)  # (beat by hand)
    mine = ledger.reserve("a", "w1", max_trials=None, seconds_limit=10.0, forecast=4.0)
    done = ledger.reserve("b", "w1", max_trials=None, seconds_limit=10.0, forecast=1.0)
    assert mine is not None and done is not None
    ledger.start_beating("a", "w1")
    ledger.start_beating("b", "w1")
    ledger.commit(done, 1.0)  # closed normally: not beaten any more, and not lost
    ledger.beat()
    assert not ledger.lost("a") and not ledger.lost("b") and ledger.stale(60.0) == set()
    time.sleep(0.3)  # w1 paused: its heartbeat lapses, and w2 takes its trial over
    other = _ledger(tmp_path)
    assert other.claim_stale("a", "w2", 0.2)
    ledger.beat()  # w1 wakes up
    assert ledger.lost("a")
    before = ledger.usage()
    ledger.bill(2.5)  # what w1's dropped attempt used is billed all the same
    assert ledger.usage() == (before[0], pytest.approx(before[1] + 2.5))
    ledger.start_beating("a", "w1")  # the same key taken up again later (a retry): not lost
    assert not ledger.lost("a")
    other.close()
    ledger.close()


def test_heartbeats_go_by_the_databases_clock_not_each_workers(tmp_path: Path, monkeypatch) -> None:
    """A review, 2026-12-06: a worker whose clock ran 120 s ahead saw every other worker's
    heartbeat as older than the grace period, and took their live trials. Heartbeats are written
    and compared by the database's clock now, and a worker can tell how far off its own is."""
    import time

    ledger = _ledger(tmp_path)
    assert ledger.reserve("live", "w1", max_trials=None, seconds_limit=None, forecast=1.0) is not None
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() + 120.0)  # this machine's clock runs ahead
    ahead = _ledger(tmp_path)
    assert ahead.stale(60.0) == set() and not ahead.claim_stale("live", "w2", 60.0)
    assert ahead.clock_offset() == pytest.approx(-120.0, abs=5.0)
    ahead.close()
    ledger.close()


def test_a_slot_closed_and_taken_up_again_by_its_worker_during_a_beat_is_not_lost(tmp_path: Path) -> None:
    """A diff review, 2026-12-06: between a beat's read of the slots it beats and its check of a
    refused one, the main thread closed the slot (a trial cut, re-queued) and took it up again (its
    retry, by the same worker): judged by worker name, the live slot was marked lost and no longer
    beaten. Each beating has a token of its own now."""
    ledger = BudgetLedger(f"sqlite:///{tmp_path / 'ledger.db'}", "s", heartbeat_interval=60.0)
    slot = ledger.reserve("a", "w1", max_trials=None, seconds_limit=None, forecast=1.0)
    assert slot is not None
    ledger.start_beating("a", "w1")
    begin = ledger.engine.begin

    class Interleaved:  # the beat's transaction runs between the main thread's steps
        def __getattr__(self, name):
            return getattr(ledger.engine_real, name)

        def begin(self):
            import contextlib

            @contextlib.contextmanager
            def between():
                ledger.engine = ledger.engine_real
                ledger.commit(slot, 0.5, finished=False)  # main: the trial is cut, its slot re-queued
                with begin() as c:  # beat: its update is refused (the slot is re-queued)
                    yield c
                assert ledger.reserve("a", "w1", max_trials=None, seconds_limit=None, forecast=1.0)  # main: retry
                ledger.start_beating("a", "w1")
            return between()

    ledger.engine_real = ledger.engine
    ledger.engine = Interleaved()
    ledger.beat()
    assert not ledger.lost("a")
    ledger.beat()  # (and it is still beaten: a live slot, this worker's)
    assert ledger.stale(60.0) == set() and not ledger.lost("a")
    ledger.close()


def test_requeued_trials_resume_only_while_the_trial_budget_has_room(tmp_path: Path) -> None:
    # A search of 4 slots (2 done, 2 cut off and re-queued) resumed with max_trials=3: one of the
    # re-queued trials may run, not both (both did with two candidates at once: 4 counted of 3).
    ledger = _ledger(tmp_path)
    slots = {key: ledger.reserve(key, "w", max_trials=4, seconds_limit=None, forecast=1.0) for key in "abcd"}
    ledger.commit(slots["a"], 1.0)
    ledger.commit(slots["b"], 1.0)
    # c was stopped by a signal (re-queued); d's process was killed (its slot still says running,
    # until the next local session marks it re-queued: claim_stale without a grace)
    ledger.commit(slots["c"], 0.5, finished=False)
    assert not ledger.claim_stale("d", "w2", 60.0)  # (a live worker's heartbeat: not taken over)
    assert ledger.claim_stale("d", "w2", None) and ledger.usage() == (4, 2.5)
    c = ledger.reserve("c", "w2", max_trials=3, seconds_limit=None, forecast=1.0)
    assert c is not None
    assert ledger.reserve("d", "w2", max_trials=3, seconds_limit=None, forecast=1.0) is None  # 2 done + c
    assert ledger.reserve("d", "w2", max_trials=4, seconds_limit=None, forecast=1.0) is not None
    ledger.close()


def test_claims_left_open_by_an_ended_session_are_taken_back_at_once_by_its_own_process_only(
        tmp_path: Path) -> None:
    """A session whose database went away mid-trial ends with its slot and job claims open and
    their heartbeats fresh; `--db-wait` runs the next session in the same process, which waited a
    whole heartbeat grace for its own dead claims (a minute by default) before it could resume
    them. They are this process's own now: taken back at once, by the same worker name only, and
    only while the slot is still that worker's."""
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    first = BudgetLedger(url, "ended", heartbeat_interval=0.2)
    dead = first.reserve("dead", "me", max_trials=None, seconds_limit=None, forecast=4.0)
    other = first.reserve("other", "me", max_trials=None, seconds_limit=None, forecast=1.0)
    assert dead is not None and other is not None and first.claim_job("job:final", "me", grace=60.0) == "claimed"
    first.start_beating("dead", "me")
    first.stop_beating("other")  # (not beaten when the session ended: not this session's to leave)
    first.close()  # the session ends with "dead" and the job still beaten
    second = BudgetLedger(url, "ended", heartbeat_interval=0.2)
    assert second.stale(grace=60.0) == {"dead", "job:final"}  # fresh heartbeats, yet known dead
    assert not second.claim_stale("dead", "someone else", grace=60.0)  # others wait the grace
    assert second.claim_job("job:final", "someone else", grace=60.0) == "running"
    assert second.claim_stale("dead", "me", grace=60.0)  # its own process: at once
    assert second.claim_job("job:final", "me", grace=60.0) == "claimed"
    assert second.usage() == (2, 1.0)  # the dead attempt's forecast given back
    # Taken back, they are live claims again: not stale, not taken back twice.
    assert second.stale(grace=60.0) == set() and not second.claim_stale("dead", "me", grace=60.0)
    second.finish_job("job:final")
    second.abandon("dead")  # (not beaten: nothing to leave)
    second.start_beating("dead", "me")
    second.abandon("dead")  # an attempt that raised: left to the next session
    assert second.stale(grace=60.0) == {"dead"}
    second.close()
    # A claim another worker took over meanwhile (after the grace) is not taken back from it.
    third = BudgetLedger(url, "ended", heartbeat_interval=0.2)
    taken = third.reserve("taken", "me", max_trials=None, seconds_limit=None, forecast=2.0)
    assert taken is not None
    third.start_beating("taken", "me")
    third.close()
    fourth = BudgetLedger(url, "ended", heartbeat_interval=0.2)
    with fourth.engine.begin() as c:  # (another process took it over after its grace: not this one's)
        c.execute(sa.update(SLOTS).where(SLOTS.c.trial_key == "taken").values(worker="another"))
    assert "taken" not in fourth.stale(grace=60.0) and not fourth.claim_stale("taken", "me", grace=60.0)
    with fourth.engine.begin() as c:
        c.execute(sa.update(SLOTS).where(SLOTS.c.trial_key == "taken").values(worker="me"))
    assert fourth.claim_stale("taken", "another", grace=0.0)  # (its grace passed)
    assert fourth.reserve("taken", "another", max_trials=None, seconds_limit=None, forecast=2.0) is not None
    assert "taken" not in fourth.stale(grace=60.0) and not fourth.claim_stale("taken", "me", grace=60.0)
    fourth.close()


def test_a_slot_is_committed_once_even_by_a_worker_that_wakes_after_its_repair(tmp_path: Path) -> None:
    """A worker paused past the grace between recording its trial and committing its slot had the
    slot committed by another worker's repair (the orphan repair: trial closed, slot stale); when it
    woke, its own commit gave the forecast back a second time and counted the seconds twice (a
    leftover of a workers review, 2026-12-07). The second commit now changes nothing."""
    ledger = _ledger(tmp_path)
    slot = ledger.reserve("paused", "w1", max_trials=None, seconds_limit=10.0, forecast=4.0)
    other = ledger.reserve("other", "w1", max_trials=None, seconds_limit=10.0, forecast=2.0)
    assert slot is not None and other is not None and ledger.usage() == (2, 6.0)
    assert ledger.claim_stale("paused", "w2", grace=0.0)  # w2 repairs it: forecast given back
    assert ledger.commit(type(slot)("paused", 0.0), 3.0)  # ... and the recorded seconds committed
    assert ledger.usage() == (2, 5.0)
    assert not ledger.commit(slot, 3.0, worker="w1")  # w1 wakes: nothing more
    assert ledger.usage() == (2, 5.0)
    assert not ledger.commit(type(slot)("paused", 0.0), 3.0)  # closed: once, whoever commits
    assert not ledger.commit(other, 1.0, worker="w2")  # another worker's slot
    assert ledger.commit(other, 1.0, worker="w1") and ledger.usage() == (2, 4.0)
    ledger.close()


def test_an_extension_adds_to_what_the_slot_holds_not_to_the_callers_copy(tmp_path: Path) -> None:
    """An extension whose commit went through while its answer was lost (the worker kept its old
    copy of the slot) was overwritten by the next one, written from that copy: the first grant
    stayed reserved in the totals for good (a review, 2026-12-07)."""
    ledger = _ledger(tmp_path)
    slot = ledger.reserve("a", "w", max_trials=None, seconds_limit=10.0, forecast=2.0)
    assert slot is not None
    assert ledger.extend(slot, 1.0, seconds_limit=10.0, worker="w") is not None  # (its answer lost)
    extended = ledger.extend(slot, 1.5, seconds_limit=10.0, worker="w")  # from the old copy
    assert extended is not None and extended.forecast == 4.5  # what the slot holds: 2 + 1 + 1.5
    assert ledger.commit(extended, 3.0, worker="w")
    assert ledger.usage() == (1, 3.0)  # nothing left reserved
    ledger.close()


def test_postgresql_connections_are_bounded_unless_the_url_sets_its_own() -> None:
    """(review, 2026-12-07) No connect timeout and no keepalives: a worker whose database host
    vanished while it waited for an answer waited for ever. Set for libpq's drivers only (another
    driver spells them its own way), and never over what the user's URL says."""
    from budgetnas.search.ledger import CONNECT_TIMEOUT, connect_args

    assert connect_args("sqlite:///run/study.db") == {"timeout": 60}
    for url in ("postgresql://nas:pw@db/nas", "postgresql+psycopg2://nas@db:5433/nas"):
        got = connect_args(url)
        assert got["connect_timeout"] == CONNECT_TIMEOUT and got["keepalives"] == 1
        assert got["keepalives_idle"] * 1 + got["keepalives_interval"] * got["keepalives_count"] <= 90
    own = connect_args("postgresql://nas@db/nas?connect_timeout=30&keepalives_idle=5")
    assert "connect_timeout" not in own and "keepalives_idle" not in own and own["keepalives"] == 1
    assert connect_args("postgresql+pg8000://nas@db/nas") == {}
    assert connect_args("mysql+pymysql://nas@db/nas") == {}
    assert connect_args("not a url") == {}
