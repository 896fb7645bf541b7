"""Corners of resuming that the kill-and-resume fuzz (benchmarks/kill_resume_fuzz.py) found,
each reduced to a deterministic case."""

from __future__ import annotations

import pytest

from budgetnas.data import DataSplits, from_arrays
from budgetnas.search import Search, open_study
from budgetnas.search.budget import CostModel
from budgetnas.search.records import counts_as_trial
from tests.search.test_search import _search


@pytest.fixture(scope="module")
def splits(digits) -> DataSplits:
    x, y = digits
    return DataSplits(train=from_arrays(x[:500], y[:500], name="digits"),
                      test=from_arrays(x[1500:1700], y[1500:1700], name="digits"))


def test_the_time_a_final_training_took_stays_on_the_time_budget(tmp_path, splits, monkeypatch) -> None:
    # The search reserves the final training inside --max-time; once that training is done, the
    # time it took must count instead of the reserve. It counted nothing: the same command run
    # again on the finished run found the reserve free and trained more trials past the budget.
    _search(tmp_path, splits, max_trials=2, max_time=3600, final_epochs=3)
    attrs = open_study(tmp_path / "run").user_attrs
    wall, final_s = attrs["wall_seconds"], attrs["final_spent"]["device_seconds"]
    assert final_s > 0
    # Any next trial forecast as nearly free: only the final training's time can stop the search.
    monkeypatch.setattr(CostModel, "forecast", lambda self, samples, macs: 1e-3)
    _, result = _search(tmp_path, splits, max_trials=3, max_time=wall + final_s / 2, final_epochs=3)
    assert result.stop_reason.startswith("time budget"), result.stop_reason
    assert sum(counts_as_trial(t) for t in open_study(tmp_path / "run").get_trials()) == 2


def test_a_session_stopped_before_its_first_trial_is_not_probed_again(tmp_path, splits, monkeypatch) -> None:
    # The first forecast comes from timed probe steps of the costliest cell. A session stopped
    # (spot preemption, Ctrl-C, a kill) after its probe but before a trial finished left the
    # resumed one nothing to forecast from, so every such session paid for the probe again: with
    # a dollar budget a few preemptions made a feasible run refuse to start ("cannot pay for one
    # trial").
    probed: list[str] = []
    probe = Search._probe

    def stop_after_probing(self, arch, space, *a, **kw):
        probed.append("search" if space is self.space else "final")
        seconds = probe(self, arch, space, *a, **kw)
        if stop_first[0]:
            self.request_stop("SIGTERM")  # as a signal during the probe does
        return seconds

    stop_first = [True]
    monkeypatch.setattr(Search, "_probe", stop_after_probing)
    _, result = _search(tmp_path, splits, max_trials=1)
    # The stop interrupts the final network's probes (seconds each on a CPU) instead of waiting
    # for them; the search probe taken before it is kept, and what was used is paid.
    assert result.preempted and probed == ["search", "final"]
    assert "during the timing probes" in result.stop_reason
    record = open_study(tmp_path / "run").user_attrs["probe"]
    assert "search_seconds_per_sample" in record and "final_seconds_per_sample" not in record
    paid = record["device_seconds"]
    assert paid > 0
    stop_first[0] = False
    probed.clear()
    _, result = _search(tmp_path, splits, max_trials=1)
    assert result.test_metrics and "search" not in probed  # forecast from the first session's probe
    assert probed.count("final") == 5  # the final network's probes, one per op, not taken before
    assert open_study(tmp_path / "run").user_attrs["probe"]["device_seconds"] > paid


def test_the_final_networks_probes_an_interrupted_session_took_are_not_taken_again(tmp_path, splits,
                                                                                  monkeypatch) -> None:
    """Ctrl-C during the final network's probes (one per op, seconds each on a CPU), then the same
    command: every probe was taken again, and paid again (a user review, 2026-12-06)."""
    probed: list[float] = []
    probe = Search._probe

    def stop_after_two_final_probes(self, arch, space, *a, **kw):
        seconds = probe(self, arch, space, *a, **kw)
        if space is not self.space:
            probed.append(seconds)
            if stop[0] and len(probed) == 2:
                self.request_stop("SIGINT")  # the third is interrupted at its first step
        return seconds

    stop = [True]
    monkeypatch.setattr(Search, "_probe", stop_after_two_final_probes)
    _, result = _search(tmp_path, splits, max_trials=1)
    assert result.preempted and len(probed) == 2
    record = open_study(tmp_path / "run").user_attrs["probe"]
    assert record["final_probes_partial"]["per_op"] == probed and "final_seconds_per_sample" not in record
    first, stop[0] = list(probed), False
    probed.clear()
    _, result = _search(tmp_path, splits, max_trials=1)
    assert result.test_metrics and len(probed) == 3  # the three ops not probed before
    record = open_study(tmp_path / "run").user_attrs["probe"]
    assert record["final_seconds_per_sample"] == first + probed and record["final_probes_partial"] is None


class _Killed(BaseException):
    """The process ending where it is (SIGKILL): nothing after it runs, no handler records a thing."""


def test_a_session_killed_during_the_final_probes_keeps_those_taken_and_their_cost(tmp_path, splits,
                                                                                  monkeypatch) -> None:
    """A SIGKILL during the final network's probes (one per op, seconds each on a CPU) lost every
    probe the session had taken and what they cost: they were recorded only when the probes ended
    or were stopped by a signal, so the next session took and paid for them all again, and the
    budget never saw the first payment (a known leftover of 2026-12-07). Each is billed as it ends."""
    import time

    probed: list[float] = []
    probe = Search._probe

    def killed_during_the_third_final_probe(self, arch, space, *a, **kw):
        if kill[0] and space is not self.space and len(probed) == 2:
            raise _Killed()
        seconds = probe(self, arch, space, *a, **kw)
        if space is not self.space:
            probed.append(seconds)
        return seconds

    kill = [True]
    monkeypatch.setattr(Search, "_probe", killed_during_the_third_final_probe)
    t0 = time.perf_counter()
    with pytest.raises(_Killed):
        _search(tmp_path, splits, max_trials=1)
    took = time.perf_counter() - t0
    attrs = open_study(tmp_path / "run").user_attrs
    record = attrs["probe"]
    assert record["final_probes_partial"]["per_op"] == probed and "search_seconds_per_sample" in record
    assert 0 < record["device_seconds"] <= took and 0 < attrs["wall_seconds"] <= took
    paid, first, kill[0] = record["device_seconds"], list(probed), False
    probed.clear()
    _, result = _search(tmp_path, splits, max_trials=1)
    assert result.test_metrics and len(probed) == 3  # the three ops not probed before
    record = open_study(tmp_path / "run").user_attrs["probe"]
    assert record["final_seconds_per_sample"] == first + probed and record["device_seconds"] > paid


def test_a_session_stopped_during_the_probes_keeps_their_wall_time(tmp_path, splits, monkeypatch) -> None:
    """(review of 5c80985) A stop during the timing probes returned from _search before the
    search loop's `finally`, the only place that records the session's wall time: the probes'
    seconds (seconds each on a CPU) were paid in device seconds but not on --max-time."""
    import time

    from budgetnas.train import Preempted

    def slow_probe(self, arch, space, resolution, n, *, k=1, steps=None, stoppable=False):
        time.sleep(0.5)
        if space is not self.space:  # a signal during the final network's probes
            self.request_stop("SIGTERM")
            raise Preempted(0, 0, False)
        return 1e-5

    monkeypatch.setattr(Search, "_probe", slow_probe)
    _, result = _search(tmp_path, splits, max_trials=1, max_time=3600)
    assert result.preempted and "during the timing probes" in result.stop_reason
    assert open_study(tmp_path / "run").user_attrs.get("wall_seconds", 0.0) >= 1.0


def test_a_proposal_cut_off_by_a_kill_takes_no_place_in_the_strategys_sequence(tmp_path, splits) -> None:
    """A process killed after Optuna's ask and before the cell's parameters were stored left a
    RUNNING trial with no cell; closed as interrupted it took a proposal index, so the resumed
    search skipped that cell for good and every later proposal differed from an uninterrupted
    run's (a strategies review, 2026-12-06). It is closed as unstarted now."""
    from budgetnas.search.records import record_of, status_of

    def cells(run: str) -> list[str]:
        return [record_of(t)["arch"] for t in open_study(tmp_path / run).get_trials() if counts_as_trial(t)]

    for strategy in ("rea", "tpe"):
        _search(tmp_path, splits, max_trials=4, strategy=strategy, final_training=False, name=f"{strategy}-straight")
        _search(tmp_path, splits, max_trials=2, strategy=strategy, final_training=False, name=f"{strategy}-killed")
        cut = open_study(tmp_path / f"{strategy}-killed").ask()  # (as the kill left it: running, no cell)
        cut.set_user_attr("trial_key", "cut-off")
        _search(tmp_path, splits, max_trials=4, strategy=strategy, final_training=False, name=f"{strategy}-killed")
        assert cells(f"{strategy}-killed") == cells(f"{strategy}-straight"), strategy
        assert status_of(open_study(tmp_path / f"{strategy}-killed").get_trials()[2]) == "unstarted"


def test_small_files_are_written_whole_and_a_damaged_config_is_read_from_the_study(tmp_path, splits,
                                                                                monkeypatch, caplog) -> None:
    """(a kill-and-resume review, 2026-12-07) config.json was written in place: a kill mid-write left
    it empty, and every later session and `show` refused the run ("cannot read the run's config")
    until it was mended by hand. Temporary files of killed writes stayed for good, full-size."""
    import json
    import logging
    import os

    from budgetnas._files import write_text_atomic
    from budgetnas.search import saved_config

    path = tmp_path / "a.json"
    path.write_text("old")

    def cut(*args):
        raise KeyboardInterrupt  # (a signal between the write and the rename)

    monkeypatch.setattr(os, "replace", cut)
    with pytest.raises(KeyboardInterrupt):
        write_text_atomic(path, "new")
    monkeypatch.undo()
    assert path.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["a.json"]

    search, _ = _search(tmp_path, splits, max_trials=1, final_training=False)
    run = search.run_dir
    saved = json.loads((run / "config.json").read_text())
    (run / "config.json").write_text("")  # (as a kill during the old in-place write left it)
    dead = 2**22 + 12345  # (above the default pid_max: no process has it)
    left = [run / f"summary.json.tmp{dead}", run / "best" / f"model.pt.tmp{dead}",
            run / "checkpoints" / f"k.ckpt.tmp{dead}", run / "checkpoints" / f"k.ckpt.tmp{os.getpid()}",
            run / "checkpoints" / f"k.ckpt.tmp{os.getppid()}"]
    for p in left:
        p.parent.mkdir(exist_ok=True)
        p.write_bytes(b"x" * 100)
    empty = run / "best" / "earlier" / "3-trial0-1ep"  # (a kill right after making it)
    empty.mkdir(parents=True)
    (empty.parent / "2-trial0-1ep").mkdir()
    (empty.parent / "2-trial0-1ep" / f"model.pt.tmp{dead}").write_bytes(b"x")  # (a copy cut short)
    with caplog.at_level(logging.WARNING, logger="budgetnas"):
        assert saved_config(run).to_dict() == {k: v for k, v in saved.items() if k != "config_version"}
    assert "cannot read the run's config" in caplog.text and "read the run's settings from its study" in caplog.text
    search, result = _search(tmp_path, splits, max_trials=2, final_training=False)  # resumes: one more trial
    assert result.spent.trials == 2 and json.loads((run / "config.json").read_text()) == {**saved, "max_trials": 2}
    # (this process's own: an interrupted fit's in a notebook, which keeps its pid; a live one's: kept)
    assert [p.exists() for p in left] == [False, False, False, False, True]
    assert not (run / "best" / "earlier").exists() or not list((run / "best" / "earlier").iterdir())


def test_a_kill_while_keeping_the_earlier_final_model_loses_nothing(tmp_path, splits, monkeypatch, caplog) -> None:
    """(a kill-and-resume review, 2026-12-07) The earlier final model was moved to best/earlier/ file
    by file: a kill between two files left its model there and its metrics in best/, overwritten
    unlisted by the next session's; a rerun with the old settings trained it again. Its files are
    linked there now, best/ keeping a whole model at every point."""
    import json
    import logging
    import os

    _search(tmp_path, splits, max_trials=1)
    best = tmp_path / "run" / "best"
    first = json.loads((best / "metrics.json").read_text())
    links = [0]
    link = os.link

    def killed_at_the_second(src, dst):
        links[0] += 1
        if links[0] == 2:
            raise KeyboardInterrupt  # (as a kill: nothing after it runs)
        return link(src, dst)

    monkeypatch.setattr(os, "link", killed_at_the_second)
    with pytest.raises(KeyboardInterrupt):
        _search(tmp_path, splits, max_trials=1, final_epochs=2)
    monkeypatch.undo()
    partial = list((best / "earlier").iterdir())
    assert len(partial) == 1 and sorted(p.name for p in partial[0].iterdir()) == [".source", "model.pt"]
    assert json.loads((best / "metrics.json").read_text()) == first  # (best/ is still the whole first model)
    # The old settings again: the first model is kept, not trained again, and the half-made copy goes.
    _, result = _search(tmp_path, splits, max_trials=1)
    assert json.loads((best / "metrics.json").read_text()) == first and not list((best / "earlier").iterdir())
    # The new settings: the first model is kept whole in earlier/, and listed.
    _search(tmp_path, splits, max_trials=1, final_epochs=2)
    second = json.loads((best / "metrics.json").read_text())
    (kept,) = second["earlier"]
    folder = tmp_path / "run" / kept["dir"]
    assert kept["test_metrics"] == first["test_metrics"] and second["epochs"] == 2
    assert json.loads((folder / "metrics.json").read_text()) == first
    assert sorted(p.name for p in folder.iterdir()) == [".source", "arch.txt", "metrics.json", "model.pt"]
    # A model file that is not the one recorded (replaced, and the session stopped before recording
    # it) is not served as the recorded one, nor kept as it: trained again.
    (best / "model.pt").unlink()
    (best / "model.pt").write_bytes((folder / "model.pt").read_bytes())
    with caplog.at_level(logging.WARNING, logger="budgetnas"):
        _search(tmp_path, splits, max_trials=1, final_epochs=2)
    assert "model.pt is not the final model the study records" in caplog.text
    again = json.loads((best / "metrics.json").read_text())
    assert again["model_sha256"] == second["model_sha256"]  # (trained again, bit for bit as before)
    assert again["device_seconds"] != second["device_seconds"]
    assert again["earlier"] == second["earlier"] and len(list((best / "earlier").iterdir())) == 1


@pytest.mark.parametrize("recorded_sha", [True, False], ids=["record-with-sha", "record-from-before-sha"])
def test_a_kill_between_replacing_the_final_model_and_recording_it(tmp_path, splits, monkeypatch, caplog,
                                                                    recorded_sha) -> None:
    """(a diff review, 2026-12-07) A session with new final settings replaced best/model.pt and was
    killed before recording it: a rerun with the old settings served the new file under the old
    record (a record without model_sha256) and deleted the only copy of the recorded model, or
    (with it) trained the recorded model again. It is restored from best/earlier/ instead."""
    import json
    import logging

    import budgetnas.search.study as study_mod

    _search(tmp_path, splits, max_trials=1)
    run = tmp_path / "run"
    best = run / "best"
    first = json.loads((best / "metrics.json").read_text())
    first_model = (best / "model.pt").read_bytes()
    if not recorded_sha:
        st = open_study(run)
        st.set_user_attr("final", {k: v for k, v in st.user_attrs["final"].items() if k != "model_sha256"})
    write = study_mod.write_text_atomic

    def killed_after_the_model(path, text):
        if path.name == "arch.txt" and path.parent == best:
            raise KeyboardInterrupt  # (as a kill, right after best/model.pt was replaced)
        return write(path, text)

    monkeypatch.setattr(study_mod, "write_text_atomic", killed_after_the_model)
    with pytest.raises(KeyboardInterrupt):
        _search(tmp_path, splits, max_trials=1, final_epochs=2)
    monkeypatch.undo()
    assert (best / "model.pt").read_bytes() != first_model  # (the new, unrecorded model)
    paid = open_study(run).user_attrs["final_spent"]["device_seconds"]
    with caplog.at_level(logging.WARNING, logger="budgetnas"):
        _search(tmp_path, splits, max_trials=1)  # the old settings: the recorded model, restored
    assert "the recorded one is restored from" in caplog.text
    assert (best / "model.pt").read_bytes() == first_model
    assert json.loads((best / "metrics.json").read_text()) == first
    assert not list((best / "earlier").iterdir())  # (its copy is best/ again)
    assert open_study(run).user_attrs["final_spent"]["device_seconds"] == paid  # (nothing trained again)
    # The new settings again: the killed session's training is finished from its checkpoint, and
    # the recorded model is kept in earlier/.
    _search(tmp_path, splits, max_trials=1, final_epochs=2)
    second = json.loads((best / "metrics.json").read_text())
    assert second["epochs"] == 2 and [e["test_metrics"] for e in second["earlier"]] == [first["test_metrics"]]


def test_the_final_settings_of_an_earlier_model_restore_it_not_train_it_again(tmp_path, splits) -> None:
    """(a review, 2026-12-07) --final-epochs 1, then 2, then 1 again trained the first model a
    second time, paid again, beside its copy in best/earlier/. It is put back from there."""
    import json
    from pathlib import Path

    from budgetnas import load_model

    _search(tmp_path, splits, max_trials=1)
    run = tmp_path / "run"
    best = run / "best"
    first = json.loads((best / "metrics.json").read_text())
    first_model = (best / "model.pt").read_bytes()
    _search(tmp_path, splits, max_trials=1, final_epochs=2)
    second = json.loads((best / "metrics.json").read_text())
    paid = open_study(run).user_attrs["final_spent"]["device_seconds"]
    _, result = _search(tmp_path, splits, max_trials=1)  # the first settings again
    assert open_study(run).user_attrs["final_spent"]["device_seconds"] == paid  # nothing trained
    assert (best / "model.pt").read_bytes() == first_model
    assert result.test_metrics == first["test_metrics"]
    restored = json.loads((best / "metrics.json").read_text())
    assert {k: v for k, v in restored.items() if k != "earlier"} == first
    assert open_study(run).user_attrs["final"] == restored
    # The 2-epoch model is kept in earlier/ in turn, and the first one's copy there is gone.
    (kept,) = restored["earlier"]
    assert kept["epochs"] == 2 and kept["test_metrics"] == second["test_metrics"]
    assert [p.name for p in (best / "earlier").iterdir()] == [Path(kept["dir"]).name]
    assert json.loads((run / kept["dir"] / "metrics.json").read_text()) == second
    assert load_model(run).predict(splits.test.images[:3], channels_last=False).shape == (3,)
    # And back to 2 epochs: restored the same way.
    _search(tmp_path, splits, max_trials=1, final_epochs=2)
    assert open_study(run).user_attrs["final_spent"]["device_seconds"] == paid
    again = json.loads((best / "metrics.json").read_text())
    assert again["model_sha256"] == second["model_sha256"] and [e["epochs"] for e in again["earlier"]] == [1]
