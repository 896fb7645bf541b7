"""Study-level user attributes that workers of one shared study read, modify and write: two
workers at once must not both take the study as new, nor lose each other's additions."""

from __future__ import annotations

import hashlib
import threading
import time
from dataclasses import replace
from pathlib import Path

import optuna
import pytest

from budgetnas.data import DataSplits, from_arrays
from budgetnas.errors import ResumeError
from budgetnas.search import Search, SearchConfig, open_study
from tests.search.test_search import TINY


@pytest.fixture(scope="module")
def splits(digits) -> DataSplits:
    x, y = digits
    return DataSplits(train=from_arrays(x[:300], y[:300], name="digits"), test=None)


def _cfg(tmp_path: Path, name: str, **kw) -> SearchConfig:
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    return SearchConfig(data="digits", storage=url, study_name="s", run_dir=str(tmp_path / name),
                        test_fraction=0.0, **{**TINY, "final_training": False, "heartbeat_interval": 0.5,
                                              "heartbeat_grace": 5.0, **kw})


def _run_both(searches: list[Search]) -> list[BaseException | None]:
    errors: list[BaseException | None] = [None] * len(searches)

    def go(i: int) -> None:
        try:
            searches[i].run()
        except BaseException as e:  # noqa: BLE001 (reported to the test)
            errors[i] = e

    threads = [threading.Thread(target=go, args=(i,), daemon=True) for i in range(len(searches))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not any(t.is_alive() for t in threads)
    return errors


def _errors_in_threads(fn, n: int) -> list[BaseException]:
    """Run ``fn`` in ``n`` threads at once; the errors they raised."""
    errors: list[BaseException] = []

    def go() -> None:
        try:
            fn()
        except BaseException as e:  # noqa: BLE001 (reported to the test)
            errors.append(e)

    threads = [threading.Thread(target=go) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return errors


def _take_over_the_running_trial(storage: str) -> str:
    """Do what another worker's _recover_interrupted does to the study's running trial once its
    worker's heartbeat has lapsed: claim its slot, close it as interrupted, queue its retry. Its key."""
    from budgetnas.search.ledger import BudgetLedger

    study = open_study(None, storage=storage, study_name="s")
    trial = next(t for t in study.get_trials() if t.state == optuna.trial.TrialState.RUNNING)
    key = trial.user_attrs["trial_key"]
    other = BudgetLedger(storage, "s")
    assert other.claim_stale(key, "elsewhere:1", grace=-1e9)  # (its heartbeat "lapsed")
    other.close()
    study._storage.set_trial_user_attr(trial._trial_id, "status", "interrupted")
    study.tell(trial.number, state=optuna.trial.TrialState.FAIL)
    study.enqueue_trial(trial.params, user_attrs={"retry_of": trial.number, "trial_key": key})
    return key


def _barrier_on_first(monkeypatch, target: object, name: str, parties: int = 2, timeout: float = 3.0) -> None:
    """Make the first call of ``target.name`` in each of ``parties`` threads wait for the others
    (on the old code, both read the study before either writes); a lock that serializes them
    makes the barrier time out instead, and the calls go on one after the other."""
    barrier = threading.Barrier(parties, timeout=timeout)
    seen: set[int] = set()
    original = getattr(target, name)

    def wrapped(*a, **kw):
        me = threading.get_ident()
        if me not in seen:
            seen.add(me)
            try:
                barrier.wait()
            except threading.BrokenBarrierError:
                pass
        return original(*a, **kw)

    monkeypatch.setattr(target, name, wrapped)


def test_two_workers_with_other_settings_starting_at_once_do_not_both_take_the_study(
        tmp_path: Path, splits: DataSplits, monkeypatch) -> None:
    # Both read the new study (no fingerprint), then both write theirs: each took the study for
    # its own, and trials measured under two settings were mixed in one study.
    a = Search(_cfg(tmp_path, "a", max_trials=1, seed=0), data=splits, data_name="digits", progress=False)
    b = Search(_cfg(tmp_path, "b", max_trials=1, seed=1), data=splits, data_name="digits", progress=False)
    open_study(None, ["maximize"], storage=a.config.storage, study_name="s")  # (its tables: see below)
    _barrier_on_first(monkeypatch, optuna.Study, "set_user_attr")
    errors = _run_both([a, b])
    refused = [e for e in errors if isinstance(e, ResumeError)]
    assert len(refused) == 1, errors  # exactly one of them took the study; the other was refused
    winner = a if errors[0] is None else b
    attrs = open_study(None, storage=winner.config.storage, study_name="s").user_attrs
    assert attrs["fingerprint_fields"]["seed"] == winner.config.seed
    assert attrs["config"]["seed"] == winner.config.seed


def test_two_workers_probing_at_once_both_pay_for_their_probes(tmp_path: Path, splits: DataSplits,
                                                               monkeypatch) -> None:
    # Both read the study's probe record (none yet), probe, and write theirs over the other's:
    # one worker's probe seconds were lost from the ledger.
    probed: dict[int, float] = {}
    probe = Search._probe

    def timed(self, *a, **kw):
        t0 = time.perf_counter()
        out = probe(self, *a, **kw)
        probed[threading.get_ident()] = probed.get(threading.get_ident(), 0.0) + time.perf_counter() - t0
        return out

    monkeypatch.setattr(Search, "_probe", timed)
    _barrier_on_first(monkeypatch, Search, "_probe")  # both read the record before either probed
    a = Search(_cfg(tmp_path, "a", max_trials=2), data=splits, data_name="digits", progress=False)
    b = Search(_cfg(tmp_path, "b", max_trials=2), data=splits, data_name="digits", progress=False)
    open_study(None, ["maximize"], storage=a.config.storage, study_name="s")
    assert _run_both([a, b]) == [None, None]
    assert len(probed) == 2
    recorded = open_study(None, storage=a.config.storage, study_name="s").user_attrs["probe"]["device_seconds"]
    assert recorded >= sum(probed.values())  # each worker's probes are on the ledger


def test_two_workers_creating_the_study_database_at_once_both_open_it(tmp_path: Path) -> None:
    # Both found no tables and created Optuna's: the second failed ("table studies already
    # exists") and its worker stopped with "cannot open the study database".
    for attempt in range(5):
        url = f"sqlite:///{tmp_path / f'fresh{attempt}.db'}"
        barrier = threading.Barrier(2)

        def go() -> None:
            barrier.wait()
            open_study(None, ["maximize"], storage=url, study_name="s")

        errors = _errors_in_threads(go, 2)
        assert not errors, errors


def test_a_worker_does_not_lower_the_wall_time_another_worker_recorded(tmp_path: Path, splits: DataSplits,
                                                                       monkeypatch) -> None:
    # Each worker wrote wall_seconds = (the value when it started) + its own session's time, over
    # what others wrote meanwhile: a worker that joined later, or read before another's last
    # write, set the study's wall time back, and the next session's max_time counted from there.
    concurrency = Search._concurrency

    def another_worker_records_its_time(self: Search, p):
        out = concurrency(self, p)  # (after this session read the wall time it starts from)
        open_study(None, storage=self.config.storage, study_name="s").set_user_attr("wall_seconds", 1e4)
        return out

    monkeypatch.setattr(Search, "_concurrency", another_worker_records_its_time)
    cfg = _cfg(tmp_path, "a", max_trials=1)
    Search(cfg, data=splits, data_name="digits", progress=False).run()
    assert open_study(None, storage=cfg.storage, study_name="s").user_attrs["wall_seconds"] >= 1e4


def test_two_final_trainings_at_once_both_pay_for_their_epochs(tmp_path: Path, splits: DataSplits,
                                                              monkeypatch) -> None:
    # Final settings are not fingerprinted: two workers with other --final-epochs claim two final
    # jobs and train both at once. Each billed final_spent as (the value it read) + its epoch,
    # over the other's bill.
    Search(_cfg(tmp_path, "first", max_trials=1), data=splits, data_name="digits", progress=False).run()
    barrier = threading.Barrier(2, timeout=3.0)
    seen: set[int] = set()
    finals: dict[int, float] = {}
    set_attr = optuna.Study.set_user_attr

    def racing(study, key, value):
        me = threading.get_ident()
        if key == "final_spent" and me not in seen:  # both read the bill before either writes
            seen.add(me)
            try:
                barrier.wait()
            except threading.BrokenBarrierError:
                pass
        if key == "final":
            finals[me] = value["device_seconds"]
        return set_attr(study, key, value)

    monkeypatch.setattr(optuna.Study, "set_user_attr", racing)
    a = Search(_cfg(tmp_path, "a", max_trials=1, final_training=True, final_epochs=1), data=splits,
               data_name="digits", progress=False)
    b = Search(_cfg(tmp_path, "b", max_trials=1, final_training=True, final_epochs=2), data=splits,
               data_name="digits", progress=False)
    assert _run_both([a, b]) == [None, None]
    assert len(finals) == 2  # both trained one
    paid = open_study(None, storage=a.config.storage, study_name="s").user_attrs["final_spent"]["device_seconds"]
    assert paid == pytest.approx(sum(finals.values()), rel=1e-6)


def test_the_workers_of_a_shared_study_train_the_final_model_of_one_cell(tmp_path: Path, splits) -> None:
    # Each worker saw the time budget from its own clock: one that looked a moment later could
    # find the best cell's final training no longer fitted, choose another, and both were trained.
    from budgetnas.search.budget import Budget, Spent
    from budgetnas.search.ledger import BudgetLedger

    a = Search(_cfg(tmp_path, "a", max_trials=3, final_training=True), data=splits, data_name="digits",
               progress=False)
    result = a.run()
    study = open_study(None, storage=a.config.storage, study_name="s")
    assert study.user_attrs["final_choice"]["trial"] == result.best_trial
    b = Search(_cfg(tmp_path, "b", max_trials=3, final_training=True), data=splits, data_name="digits",
               progress=False)
    b.ledger = BudgetLedger(a.config.storage, "s")
    try:
        b.budget = Budget(max_time=1.0)  # b's view: no time left for any final training
        rows = b._ranked_for_final(study)
        assert b._final_choice(study, Spent(wall_seconds=1.0))[0].number == rows[0].number  # (none fits: the best)
        assert b._agreed_final_choice(study, Spent(wall_seconds=1.0))[0].number == rows[0].number  # recorded
        # another worker with the same budget recorded another choice first: b takes it
        study.set_user_attr("final_choice", {**study.user_attrs["final_choice"], "trial": rows[-1].number})
        assert b._agreed_final_choice(study, Spent(wall_seconds=1.0))[0].number == rows[-1].number  # as recorded
        b.budget = Budget(max_time=1e6)  # the budget raised (the same trials): chosen afresh, not as recorded
        assert b._agreed_final_choice(study, Spent())[0].number == rows[0].number  # chosen afresh
        assert study.user_attrs["final_choice"]["trial"] == rows[0].number
    finally:
        b.ledger.close()


@pytest.mark.parametrize("noticed_by", ["heartbeat", "write"])
def test_a_trial_taken_over_while_its_worker_was_paused_is_dropped_not_a_crash(
        tmp_path: Path, splits: DataSplits, monkeypatch, noticed_by: str) -> None:
    """A review, 2026-12-06: a worker paused past the grace period (kill -STOP, a suspended VM) had
    its trial re-queued by another; woken up, it trained on and crashed the process with
    UpdateFinishedTrialError at its next write. It drops the trial now, found out by its refused
    heartbeat (or by the write, if that comes first), bills what it used, and goes on."""
    import budgetnas.search.study as study_mod
    from budgetnas.search.ledger import BudgetLedger
    from budgetnas.search.records import counts_as_trial, record_of, status_of
    from budgetnas.search.study import _worker_name

    cfg = _cfg(tmp_path, "paused", max_trials=1, epochs=3, heartbeat_interval=60.0, heartbeat_grace=120.0)
    search = Search(cfg, data=splits, data_name="digits", progress=False)
    train, taken = study_mod.train, []

    def take_over_in_epoch_two(*a, should_stop=None, on_epoch=None, **kw):
        if on_epoch is None:  # (the timing probes)
            return train(*a, should_stop=should_stop, **kw)

        def on_epoch_then_take(rec):
            if rec.epoch == 1 and not taken:  # another worker takes the trial over
                key = _take_over_the_running_trial(cfg.storage)
                taken.append(key)
                if noticed_by == "heartbeat":
                    search.ledger.beat()  # (the beat thread's next beat, without waiting for it)
                    assert search.ledger.lost(key)
                    return False  # (the next step's should_stop finds it lost)
            return on_epoch(rec)
        return train(*a, should_stop=should_stop, on_epoch=on_epoch_then_take, **kw)

    monkeypatch.setattr(study_mod, "train", take_over_in_epoch_two)
    result = search.run()  # no crash: the lost attempt is dropped, then the retry trains here
    study = open_study(None, storage=cfg.storage, study_name="s")
    same = [t for t in study.get_trials() if t.user_attrs.get("trial_key") == taken[0]]
    assert [status_of(t) for t in same] == ["interrupted", "complete"]
    assert len([t for t in study.get_trials() if counts_as_trial(t)]) == 1 and result.spent.trials == 1
    assert record_of(same[1])["worker"] == _worker_name()
    used, seconds = BudgetLedger(cfg.storage, "s").usage()
    assert used == 1 and seconds > record_of(same[1])["device_seconds"]  # the dropped attempt billed too


def test_two_workers_proposed_the_same_cell_at_once_train_it_once(tmp_path: Path, splits: DataSplits,
                                                                 monkeypatch) -> None:
    """A review, 2026-12-06: the evaluation cache saw only finished trials, so two workers that
    proposed one cell while neither had finished it both trained it (4 of 80 cells twice, with
    local search). The second now waits for the first's result and takes it as a cache hit."""
    import budgetnas.search.study as study_mod
    from budgetnas.search.records import counts_as_trial, record_of, status_of

    cell = "|nor_conv_3x3~0|+|skip_connect~0|nor_conv_1x1~1|+|avg_pool_3x3~0|none~1|nor_conv_3x3~2|"
    train, trained, saw_both = study_mod.train, [], []

    def first_trial_waits_for_the_other(*a, on_epoch=None, **kw):
        if on_epoch is not None:  # (a trial, not a timing probe)
            trained.append(threading.get_ident())
            if len(trained) == 1:  # hold the first until the other worker has its trial too, and then
                # some: time to start training it as well (the old code) or to wait for this one
                study = open_study(None, storage=f"sqlite:///{tmp_path / 'shared.db'}", study_name="s")
                deadline = time.time() + 60
                while time.time() < deadline and len(study.get_trials(
                        deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))) < 2:
                    time.sleep(0.1)
                saw_both.append(time.time() < deadline)  # (else the test proves nothing: said below)
                time.sleep(2.0)
        return train(*a, on_epoch=on_epoch, **kw)

    monkeypatch.setattr(study_mod, "train", first_trial_waits_for_the_other)
    a, b = (Search(_cfg(tmp_path, name, max_trials=2), data=splits, data_name="digits", progress=False)
            for name in ("a", "b"))
    # Both workers' strategies propose the cell first (queued twice: each asks one of them).
    study = open_study(None, ["maximize"], storage=a.config.storage, study_name="s")
    for key in ("k1", "k2"):  # (with their identities, as the search queues its own)
        study.enqueue_trial(a.space.to_decisions(a.space.parse(cell)), user_attrs={"trial_key": key},
                            skip_if_exists=False)
    assert _run_both([a, b]) == [None, None]
    trials = [t for t in open_study(None, storage=a.config.storage, study_name="s").get_trials()
              if record_of(t).get("arch") == cell]
    assert sorted(status_of(t) for t in trials) == ["cached", "complete"], [status_of(t) for t in trials]
    assert len([t for t in trials if counts_as_trial(t)]) == 1 and saw_both == [True]


def test_two_sessions_training_final_models_at_once_keep_both(tmp_path: Path, splits: DataSplits,
                                                               monkeypatch) -> None:
    """A review, 2026-12-06: two `search` processes of one shared study with other --final-epochs
    each trained their final model at the same time (their claims are keyed by the settings); the
    later one overwrote the first's in best/, paid for and not kept in best/earlier/ as the README
    promises. The model in the study when one is written is kept now, whoever trained it."""
    import budgetnas.search.study as study_mod

    train = study_mod.train
    both_in_final = threading.Barrier(2, timeout=60)

    def finals_wait_for_each_other(*a, checkpoint=None, **kw):
        if checkpoint is not None and checkpoint.path.name.startswith("final-"):
            both_in_final.wait()  # (neither writes its model before the other has started)
        return train(*a, checkpoint=checkpoint, **kw)

    monkeypatch.setattr(study_mod, "train", finals_wait_for_each_other)
    run = str(tmp_path / "shared-run")  # (one run directory on a disk both reach)
    a, b = (Search(replace(_cfg(tmp_path, "x", max_trials=2, final_training=True, final_epochs=e), run_dir=run),
                   data=splits, data_name="digits", progress=False) for e in (1, 2))
    assert _run_both([a, b]) == [None, None]
    final = open_study(None, storage=a.config.storage, study_name="s").user_attrs["final"]
    kept = final.get("earlier") or []
    assert len(kept) == 1 and {kept[0]["epochs"], final["epochs"]} == {1, 2}
    assert (Path(run) / kept[0]["dir"] / "model.pt").exists() and (Path(run) / "best" / "model.pt").exists()


def test_a_session_joining_live_ones_under_another_budget_is_told(tmp_path: Path, splits: DataSplits,
                                                                  caplog) -> None:
    first = Search(_cfg(tmp_path, "first", max_trials=1), data=splits, data_name="digits", progress=False)
    first.run()
    study = open_study(None, storage=first.config.storage, study_name="s")
    live = study.ask()  # (another session's trial in flight)
    live.set_user_attr("trial_key", "live")
    with caplog.at_level("WARNING", logger="budgetnas"):
        Search(_cfg(tmp_path, "second", max_trials=2), data=splits, data_name="digits", progress=False).run()
    assert "another session of this shared study is running with other settings (max_trials 1 there, 2 here)" \
        in caplog.text
    caplog.clear()
    study.tell(live, state=optuna.trial.TrialState.FAIL)  # (no session live: a raised budget is just that)
    with caplog.at_level("WARNING", logger="budgetnas"):
        Search(_cfg(tmp_path, "third", max_trials=3), data=splits, data_name="digits", progress=False).run()
    assert "another session" not in caplog.text


def test_workers_sharing_a_run_directory_check_it_writable_at_once(tmp_path: Path) -> None:
    """Each wrote and deleted one fixed-name probe file: one deleted the other's, which then found
    the directory "not writable" (seen in CI, 2026-12-06, two sessions on one shared run dir)."""
    from budgetnas.search.study import _check_writable

    def check() -> None:
        for _ in range(300):
            _check_writable(tmp_path / "shared-run")

    assert _errors_in_threads(check, 4) == []
    assert not list((tmp_path / "shared-run").iterdir())  # (no probe left behind)


@pytest.mark.parametrize("limit", ["device_hours", "wall_time"])
def test_a_trial_taken_over_that_wakes_past_its_grant_or_deadline_is_dropped_not_a_crash(
        tmp_path: Path, splits: DataSplits, monkeypatch, limit: str) -> None:
    """A diff review, 2026-12-06: the paused worker woke having used more than its reservation (or
    past its wall deadline) before its beat found the takeover; stopping as if the budget were
    spent, it saved a checkpoint over the new owner's and crashed writing to the closed trial."""
    import sqlalchemy as sa

    import budgetnas.search.study as study_mod
    from budgetnas.search.ledger import SLOTS
    from budgetnas.search.records import status_of

    budget = {"max_device_hours": 1.0} if limit == "device_hours" else {"max_time": 12.0}
    cfg = _cfg(tmp_path, "paused", max_trials=1, epochs=3, heartbeat_interval=60.0, heartbeat_grace=120.0, **budget)
    search = Search(cfg, data=splits, data_name="digits", progress=False)
    train, taken, saves = study_mod.train, [], []

    def pause_mid_epoch(*a, should_stop=None, on_epoch=None, checkpoint=None, **kw):
        if on_epoch is None:  # (the timing probes)
            return train(*a, should_stop=should_stop, checkpoint=checkpoint, **kw)
        calls = [0]
        save = checkpoint.save

        def counted_save(state):
            saves.append(state["step"])
            save(state)
        checkpoint.save = counted_save

        def paused_then_should_stop():
            calls[0] += 1
            if calls[0] == 3 and not taken:  # this worker pauses; another takes its trial over
                study = open_study(None, storage=cfg.storage, study_name="s")
                running = next(t for t in study.get_trials() if t.state == optuna.trial.TrialState.RUNNING)
                with sa.create_engine(cfg.storage).connect() as c:
                    forecast = c.execute(sa.select(SLOTS.c.forecast).where(
                        SLOTS.c.trial_key == running.user_attrs["trial_key"])).scalar_one()
                taken.append(_take_over_the_running_trial(cfg.storage))
                # (it wakes past its reservation, or past the session's 12 s of wall time)
                time.sleep(forecast + 0.5 if limit == "device_hours" else 12.5)
            return should_stop()
        return train(*a, should_stop=paused_then_should_stop, on_epoch=on_epoch, checkpoint=checkpoint, **kw)

    monkeypatch.setattr(study_mod, "train", pause_mid_epoch)
    search.run()  # no crash
    study = open_study(None, storage=cfg.storage, study_name="s")
    same = [t for t in study.get_trials() if t.user_attrs.get("trial_key") == taken[0]]
    assert status_of(same[0]) == "interrupted"  # (as the other worker closed it: not rewritten here)
    assert saves == [] or min(saves) > 2  # (no checkpoint of the dropped attempt, written at its 3rd step)


def test_a_final_model_written_to_another_run_directory_is_not_filed_as_this_ones(
        tmp_path: Path, splits: DataSplits, monkeypatch) -> None:
    """A diff review, 2026-12-06: a session moving its run directory's older final model to
    best/earlier/ took the study's latest record for it, which (written meanwhile by a session
    with another run directory) described another model: filed under that one's trial, epochs
    and test result. A record is taken for this directory's model only if it was written here."""
    import budgetnas.search.study as study_mod

    b_run = str(tmp_path / "b-run")
    first = Search(replace(_cfg(tmp_path, "x", max_trials=2, final_training=True, final_epochs=1), run_dir=b_run),
                   data=splits, data_name="digits", progress=False)
    first.run()  # b's run directory holds a final model of 1 epoch
    train = study_mod.train
    both_in_final = threading.Barrier(2, timeout=60)

    def finals_wait_for_each_other(*a, checkpoint=None, **kw):
        if checkpoint is None or not checkpoint.path.name.startswith("final-"):
            return train(*a, checkpoint=checkpoint, **kw)
        both_in_final.wait()
        result = train(*a, checkpoint=checkpoint, **kw)
        if a[5].epochs == 3:  # b writes its model once a has written its own (to its run directory)
            study = open_study(None, storage=f"sqlite:///{tmp_path / 'shared.db'}", study_name="s")
            deadline = time.time() + 60
            while (study.user_attrs.get("final") or {}).get("epochs") != 2 and time.time() < deadline:
                time.sleep(0.1)
        return result

    monkeypatch.setattr(study_mod, "train", finals_wait_for_each_other)
    a, b = (Search(replace(_cfg(tmp_path, "x", max_trials=2, final_training=True, final_epochs=e), run_dir=run),
                   data=splits, data_name="digits", progress=False)
            for e, run in ((2, str(tmp_path / "a-run")), (3, b_run)))
    assert _run_both([a, b]) == [None, None]
    import json

    kept = json.loads((Path(b_run) / "best" / "metrics.json").read_text())["earlier"]
    assert [k["epochs"] for k in kept] == [1]  # b's own earlier model, as it was: not a's of 2 epochs
    assert (Path(b_run) / kept[0]["dir"] / "model.pt").exists()
    assert not (Path(tmp_path / "a-run") / "best" / "earlier").exists()  # (a's directory had no model before)


def test_a_worker_waiting_for_a_cell_another_trains_stops_waiting_at_its_time_limit(
        tmp_path: Path, splits: DataSplits) -> None:
    """(A diff review, 2026-12-06) The wait for another worker's result checked only for a stop
    signal: with --max-time, a worker waited past its limit for another's long trial."""
    from budgetnas.search.ledger import CELL_PREFIX, BudgetLedger
    from budgetnas.search.records import status_of

    cell = "|nor_conv_3x3~0|+|skip_connect~0|nor_conv_1x1~1|+|avg_pool_3x3~0|none~1|nor_conv_3x3~2|"
    cfg = _cfg(tmp_path, "w", max_trials=2, max_time=8.0, heartbeat_grace=600.0)
    search = Search(cfg, data=splits, data_name="digits", progress=False)
    study = open_study(None, ["maximize"], storage=cfg.storage, study_name="s")
    study.enqueue_trial(search.space.to_decisions(search.space.parse(cell)), user_attrs={"trial_key": "k1"})
    # Another worker, alive (its claim fresh, the grace 10 minutes), is training the cell.
    other = BudgetLedger(cfg.storage, "s", heartbeat_interval=1.0)
    key = search._cache_key(search.space.canonical(search.space.parse(cell)), search._load())
    assert other.claim_job(CELL_PREFIX + hashlib.blake2b(key.encode(), digest_size=16).hexdigest(),
                           "elsewhere:1", 600.0) == "claimed"
    t0 = time.time()
    search.run()
    other.close()
    assert time.time() - t0 < 60  # (not the 10 minutes until the other's claim goes stale)
    mine = [t for t in open_study(None, storage=cfg.storage, study_name="s").get_trials()
            if t.user_attrs.get("trial_key") == "k1"]
    assert status_of(mine[0]) == "interrupted"  # cut at its time limit, queued again for a later session
