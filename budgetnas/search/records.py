"""The versioned trial record and the views of a study that the search, ``show`` and the API share.

Each Optuna trial carries our record in its user attributes. Optuna commits every user attribute
in its own database transaction, so version 2 groups them by when they change (version 1 had one
attribute per key, about 25 transactions per trial; version 2 has about 4 plus one per epoch):

- ``record``, written once when the trial starts: ``record_version, arch, canonical, space,
  fidelity, seed, fingerprint, evaluator, trainer, strategy, device, worker, params, macs,
  search_macs, cache_key``;
- ``progress``, rewritten after every epoch and at the end: ``curve, device_seconds, cost``, and
  at the end how the trainer ran: ``step_mode`` (eager or graph), ``fused`` (compiled kernels)
  and ``batch_size``;
- single attributes for what is set rarely: ``trial_key`` (the identity kept across retries),
  ``status``, ``reason``, ``traceback``, ``cache_of``, ``retry_of``, ``candidate``,
  ``resumed_from_epoch``, ``oom_retry_batch_size``.

Read a trial through :func:`record_of`, which merges the three into one flat dict (and reads
version-1 trials unchanged). ``status`` is ours (Optuna's states cannot tell a cache hit or an
interrupted trial apart): complete | pruned | failed | cached | rejected | interrupted | unstarted
(a proposal closed untrained, for want of budget) | running | waiting (queued).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from budgetnas.errors import plural
from budgetnas.search.budget import Spent

RECORD_VERSION = 2
STATIC_KEY, PROGRESS_KEY = "record", "progress"
# How a cell rejected because the budget cannot pay its final training is told apart (its reason).
UNAFFORDABLE_REASON = "not tried: its final training"
COUNTED = ("complete", "pruned", "failed")  # statuses that use up a trial of the budget (unless a cache hit)
# Trained results the evaluation cache serves at the same (cell, fidelity, seed): a pruned cell
# would be pruned again, so it is not trained twice either.
CACHEABLE = ("complete", "pruned")


def counts_as_trial(t: FrozenTrial) -> bool:
    """Whether a trial uses up one of the budget's trials: one trained (or failing to), not a cache
    hit, which costs nothing and trains nothing (``--max-trials 10`` buys 10 cells trained)."""
    return status_of(t) in COUNTED and "cache_of" not in t.user_attrs


def record_of(t: FrozenTrial) -> dict[str, Any]:
    """The trial's record as one flat dict (see the module docstring for where each key lives)."""
    a = t.user_attrs
    rec: dict[str, Any] = {"curve": [], "device_seconds": 0.0, "cost": 0.0}  # until an epoch is paid
    rec.update(a.get(STATIC_KEY) or {})
    rec.update(a.get(PROGRESS_KEY) or {})
    rec.update((k, v) for k, v in a.items() if k not in (STATIC_KEY, PROGRESS_KEY))
    return rec


def paid_of(t: FrozenTrial) -> tuple[float, float]:
    """(device seconds, cost) of a trial, without building its whole record (read every loop)."""
    a = t.user_attrs
    src = a.get(PROGRESS_KEY) or a
    return float(src.get("device_seconds", 0.0)), float(src.get("cost", 0.0))


def status_of(t: FrozenTrial) -> str:
    if t.state == TrialState.RUNNING:
        return "running"
    if t.state == TrialState.WAITING:
        return "waiting"
    return str(t.user_attrs.get("status", t.state.name.lower()))


@dataclass
class TrialView:
    """One trial as a row of the summary."""

    number: int
    status: str
    arch: str
    metrics: dict[str, float]
    params: int | None
    device_seconds: float
    cost: float
    epochs: int
    reason: str

    @classmethod
    def of(cls, t: FrozenTrial) -> "TrialView":
        a = record_of(t)
        curve = a.get("curve") or []
        return cls(
            number=t.number, status=status_of(t), arch=str(a.get("arch", "")),
            metrics=dict(curve[-1]["metrics"]) if curve else dict(a.get("metrics", {})),
            params=a.get("params"), device_seconds=float(a.get("device_seconds", 0.0)),
            cost=float(a.get("cost", 0.0)), epochs=len(curve), reason=str(a.get("reason", "")),
        )


# A study attribute: the networks' input channels and classes (`show` counts a cell's final network
# with them, as the search does now).
NETWORK_IO_KEY = "network_io"

# A study attribute: device seconds of trial attempts taken over by another worker (a shared
# study's worker whose heartbeat lapsed) beyond what their trials' records hold; billed all the same.
TAKEN_OVER_KEY = "taken_over"


def spent_of(study: optuna.Study, trials: list[FrozenTrial] | None = None) -> Spent:
    """The ledger: device time and cost of every trial (paid for even if it failed), probes and
    the final training, the number of trials that count against the budget, and wall time."""
    trials = study.get_trials(deepcopy=False) if trials is None else trials
    attrs = study.user_attrs
    paid = [paid_of(t) for t in trials]
    seconds = sum(s for s, _ in paid)
    cost = sum(c for _, c in paid)
    for key in ("probe", "final_spent", TAKEN_OVER_KEY):
        extra = attrs.get(key) or {}
        seconds += float(extra.get("device_seconds", 0.0))
        cost += float(extra.get("cost", 0.0))
    counted = sum(1 for t in trials if counts_as_trial(t))
    # The wall time a session recorded when it ended, or, where it was killed outright before it
    # could (SIGKILL), what its trials' progress marked as they went.
    marks = [float((t.user_attrs.get(PROGRESS_KEY) or {}).get("wall_mark", 0.0)) for t in trials]
    return Spent(trials=counted, device_seconds=seconds, cost=cost,
                 wall_seconds=max([float(attrs.get("wall_seconds", 0.0)), *marks]))


def ranked(study: optuna.Study, metric: str, trials: list[FrozenTrial] | None = None,
           size: Callable[[TrialView], float] | None = None) -> list[TrialView]:
    """Evaluated trials (complete or cached), best first by ``metric``; a tie goes to the smaller
    network, then to the earlier trial. (Ties are common on small validation sets, and a cache hit
    ties its source exactly: by trial number alone, the final model was the first spelling tried
    of a function, convolutions on dead edges and all, 3.3x the parameters of an equal spelling
    proposed later, a search-core review found, 2026-12-06.)

    ``size`` gives a row's network size; by default the final network's parameters its record
    holds, counted when the trial ran: a search whose ``--final-C``/``--final-N`` changed since
    passes the size of the network it would build now, as records of two sessions count two sizes.
    """
    trials = study.get_trials(deepcopy=False) if trials is None else trials
    rows = [TrialView.of(t) for t in trials if status_of(t) in ("complete", "cached")]
    if size is None:
        def size(r: TrialView) -> float:
            return r.params if r.params is not None else float("inf")
    return sorted(rows, key=lambda r: (-r.metrics.get(metric, float("-inf")), size(r), r.number))


def final_candidates(study: optuna.Study, metric: str, *, max_params: float | None = None,
                     size: Callable[[TrialView], float] | None = None,
                     trials: list[FrozenTrial] | None = None) -> list[TrialView]:
    """The trials a final training may train, best first: the Pareto front of a multi-objective
    study (by ``metric``) before the rest, within ``max_params`` as ``size`` counts a row's final
    network (default: as its record holds it; see :func:`ranked`). The search and `show` both rank
    so (they ranked apart, `show` by the sizes recorded, which --final-C/--final-N may have changed
    since: a review, 2026-12-08)."""
    rows = ranked(study, metric, trials, size=size)
    front = set(pareto(study))
    if front:
        rows = [r for r in rows if r.number in front] + [r for r in rows if r.number not in front]
    if max_params is not None:
        rows = [r for r in rows if (size(r) if size is not None else r.params if r.params is not None else 0)
                <= max_params]
    return rows


def pareto(study: optuna.Study) -> list[int]:
    """Trial numbers on the Pareto front of a multi-objective study (empty for one objective)."""
    if len(study.directions) < 2:
        return []
    return [t.number for t in study.best_trials if status_of(t) in ("complete", "cached")]


def final_epochs_trained(final: dict[str, Any]) -> str:
    """How long the final model trained: ``30 epochs``, or ``2.5 of 30 epochs`` where the budget
    shortened it (its ``shortened`` entry says how far it got)."""
    shortened = final.get("shortened")
    planned = plural(final["epochs"], "epoch")
    return f"{shortened['epochs']:.3g} of {planned}" if shortened else planned


# A final model's test score this far below its trial's validation score is reported: at least
# FINAL_GAP (absolute), below FINAL_GAP_RATIO of it, and FINAL_GAP_SIGMAS standard errors of the
# difference of two scores on that many images (the trial's is the best of many, so a bit lucky:
# on 100 images each a healthy final model was below by 0.1 a quarter of the time, a review found,
# 2026-12-08). The final network is the search's cell at full size, trained longer on more images.
FINAL_GAP = 0.10
FINAL_GAP_RATIO = 0.8
FINAL_GAP_SIGMAS = 3.0


def final_gap_note(final: dict[str, Any], search_metrics: dict[str, float] | None, metric: str, *,
                   trial_epochs: int | None = None, search_network: tuple[int, int] | None = None,
                   val_images: int | None = None) -> str | None:
    """What to tell a user whose final model tests far below its trial's validation score (None if
    it does not): a final training too short for the network (a few steps of C=16 N=5 left digits
    at 16% test accuracy where its trial scored 72%, unsaid, 2026-12-08), or test images unlike
    those searched on. ``trial_epochs``: how long the trial trained; ``search_network``: its (C, N);
    ``val_images``: how many images scored it (default: as many as the test)."""
    test = (final.get("test_metrics") or {}).get(metric)
    val = (search_metrics or {}).get(metric)
    n_test = int(final.get("test_images") or 0)
    if test is None or val is None or not n_test:
        return None
    known = val_images or final.get("search_val_images")  # (final records before 2026-12-08 lack it)
    n_val = max(1, int(known or n_test))
    q = min(max(val, 0.05), 0.95)  # (a score's spread, as of an accuracy; never taken as none)
    noise = FINAL_GAP_SIGMAS * math.sqrt(q * (1 - q) * (1 / n_test + 1 / n_val))
    if not (test < val - max(FINAL_GAP, noise) and test < FINAL_GAP_RATIO * val):
        return None
    differ = "the test images differ from those it was searched on (a test set given apart from the training images?)"
    if final.get("shortened"):
        why = f"its final training was shortened to end within the budget (above): train it in full; or {differ}"
    else:
        space = (final.get("settings") or {}).get("space") or {}
        final_network = (space["C"], space["N"]) if "C" in space and "N" in space else None
        batch, images, epochs = final.get("batch_size"), final.get("train_images"), int(final.get("epochs") or 0)
        fewer = bool(trial_epochs) and epochs < int(trial_epochs or 0)
        bigger = final_network is not None and search_network is not None and any(
            f > s for f, s in zip(final_network, search_network))
        said = [final_epochs_trained(final) + (f" where its trial trained {trial_epochs}" if fewer else "")]
        if batch and images:
            said.append(f"{epochs * (images // batch if images > batch else 1)} steps at batch {batch}")
        if final_network is not None:
            said.append(f"of the C={final_network[0]} N={final_network[1]} network")
        short = (f"its final training ({', '.join(said)}) may be too short for it: raise --final-epochs"
                 + (f", or bring --final-C/--final-N nearer the search network's (C={search_network[0]} "
                    f"N={search_network[1]})" if bigger and search_network is not None else ""))
        why = f"{short}; or {differ}" if fewer or bigger else f"{differ}; or {short}"
    return (f"the final model's test {metric} ({test:.4f}, {n_test} images) is far below its trial's on the "
            f"validation images ({val:.4f}{f', {n_val}' if known else ''}): {why}")


def to_jsonable(x: Any) -> Any:
    """Floats, ints, strings, lists and dicts only (Optuna user attributes must be JSON)."""
    if isinstance(x, dict):
        return {str(k): to_jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [to_jsonable(v) for v in x]
    if hasattr(x, "item"):
        return x.item()
    return x


def final_partials(study: optuna.Study) -> dict[str, float]:
    """The device seconds of each final training cut off before its end, by job key (one record
    for the whole study until 2026-12-02: ``{"key": ..., "device_seconds": ...}``, read as such)."""
    raw = study.user_attrs.get("final_partial") or {}
    if "key" in raw:  # (job keys start with "final:", so no new record has this one)
        return {str(raw["key"]): float(raw.get("device_seconds", 0.0))}
    return {str(k): float(v) for k, v in raw.items() if isinstance(v, (int, float))}
