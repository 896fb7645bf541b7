"""Early stopping of weak candidates on our own per-epoch records.

Optuna's ``Trial.report``/``should_prune`` refuse multi-objective studies, so pruning here reads
the learning curves the search stores on every trial (a higher-is-better metric per epoch). It
therefore works the same for one objective or several, and for trials run by other workers.

- ``SuccessiveHalving`` (asynchronous, as ASHA): at rungs ``min_epochs * eta**k`` a trial goes on
  only if its metric is in the top ``1/eta`` of the trials that reached that rung. In a
  multi-objective search (accuracy and size, say) the rung ranks the trials by non-dominated
  sorting and crowding distance, as MO-ASHA does: a small cell on the front at the rung is not cut
  for its accuracy alone.
- ``Hyperband`` (Li et al., JMLR 2018): several successive-halving brackets, hedging against
  rankings that change late in training; a trial is compared only with its bracket. With ``R``
  the epochs and ``s_max = floor(log_eta R)``, bracket ``s`` starts at ``R * eta**-s`` epochs and
  cuts at ``R * eta**-k`` for ``k = s..1`` (rounded to whole epochs): the bracket with ``s = 0``
  never prunes. Brackets get trials in Li et al.'s proportions (``ceil((s_max + 1) / (s + 1) *
  eta**s)``: 9:5:3 for 9 epochs and eta 3), so the aggressive bracket sees the most trials and
  the one that never prunes the fewest. Trial ``i``'s bracket is a function of ``i`` alone (a
  fixed interleaved cycle), so resumed sessions and other workers place every trial the same way.

A rung at the last epoch prunes nothing (the trial has finished): with too few epochs a pruner
cannot stop anything, and :func:`pruner_note` says so.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from budgetnas.errors import ConfigError


class BasePruner:
    """Decides, after an epoch, whether a trial should stop. The default never stops."""

    def should_stop(self, trial_index: int, epoch: int, curve: Sequence[float],
                    others: dict[int, Sequence[float]]) -> bool:
        """``curve``: this trial's metric per epoch so far; ``others``: trial index -> curve. In a
        multi-objective search each entry is a tuple of objectives, all to maximise (sizes
        negated), and a rung keeps the top ``1/eta`` by non-dominated sorting."""
        return False


def _pareto_keys(values: Sequence[tuple[float, ...]]) -> list[tuple[int, float, float]]:
    """Sort keys (lower is better) for points to maximise in every coordinate, as NSGA-II
    selects and MO-ASHA ranks a rung (Schmucker et al., 2021): the point's non-dominated front
    (0 = the Pareto front), then its crowding distance within the front (the front's ends first,
    so the smallest and the most accurate cell both go on), then its first coordinate."""
    pts = np.array(values, dtype=float)
    rank = np.full(len(pts), -1)
    crowd = np.zeros(len(pts))
    front = 0
    while (rank < 0).any():
        left = np.flatnonzero(rank < 0)
        sub = pts[left]
        dominated = np.array([((sub >= p).all(axis=1) & (sub > p).any(axis=1)).any() for p in sub])
        members = left[~dominated]
        rank[members] = front
        for j in range(pts.shape[1]):
            order = members[np.argsort(pts[members, j], kind="stable")]
            span = pts[order[-1], j] - pts[order[0], j]
            crowd[order[0]] = crowd[order[-1]] = np.inf
            if span > 0:
                crowd[order[1:-1]] += (pts[order[2:], j] - pts[order[:-2], j]) / span
        front += 1
    return [(int(r), -float(c), -float(p[0])) for r, c, p in zip(rank, crowd, pts)]


class SuccessiveHalving(BasePruner):
    """Rungs at ``min_epochs * eta**k`` (bottom-up, as ASHA), or exactly at ``rungs`` if given.
    With ``max_epochs`` (a trial's length), only rungs that leave at least ``1/eta`` of the training
    to save: a cut at 99 of 100 epochs discarded a trial all but paid for, to save 1 %."""

    def __init__(self, min_epochs: int = 1, eta: int = 3, min_peers: int | None = None,
                 rungs: Sequence[int] | None = None, max_epochs: int | None = None) -> None:
        if min_epochs < 1 or eta < 2:
            raise ConfigError("successive halving needs min_epochs >= 1 and eta >= 2")
        self.min_epochs = min(rungs) if rungs else min_epochs
        self.eta = eta
        self.min_peers = eta if min_peers is None else min_peers
        self.rungs = None if rungs is None else frozenset(rungs)
        self.max_epochs = max_epochs

    def is_rung(self, epoch: int) -> bool:
        if self.rungs is not None:
            return epoch in self.rungs
        if self.max_epochs is not None and (self.max_epochs - epoch) * self.eta < self.max_epochs:
            return False  # (too late to save much: a review found rungs at 9 of 10, 45 of 50, 99 of 100)
        ratio = epoch / self.min_epochs
        if ratio < 1 or ratio != int(ratio):
            return False
        k = round(math.log(ratio, self.eta))
        return self.eta**k == ratio

    def should_stop(self, trial_index: int, epoch: int, curve: Sequence[float],
                    others: dict[int, Sequence[float]]) -> bool:
        if not self.is_rung(epoch):
            return False
        peers = [c[epoch - 1] for i, c in others.items() if i != trial_index and len(c) >= epoch]
        if len(peers) < self.min_peers:
            return False
        values = peers + [curve[epoch - 1]]
        keep = max(1, len(values) // self.eta)
        if not isinstance(values[0], tuple):
            threshold = np.sort(np.array(values, dtype=float))[::-1][keep - 1]
            return curve[epoch - 1] < threshold
        keys = _pareto_keys(values)
        if keys[-1][0] == 0 and keys[-1][1] == -math.inf:
            return False  # an end of the rung's front (the smallest, or the most accurate): never cut
        return keys[-1] > sorted(keys)[keep - 1]


class Hyperband(BasePruner):
    def __init__(self, max_epochs: int, min_epochs: int = 1, eta: int = 3) -> None:
        if max_epochs < min_epochs:
            raise ConfigError("hyperband needs max_epochs >= min_epochs")
        s_max = int(math.floor(math.log(max_epochs / min_epochs, eta) + 1e-9))
        n = s_max + 1
        # bracket b has s = s_max - b cuts, at R / eta**k for k = s..1: b = 0 is the most aggressive,
        # b = s_max never prunes
        self.brackets = [SuccessiveHalving(eta=eta, rungs=sorted({max(min_epochs, round(max_epochs / eta**k))
                                                                  for k in range(1, s_max - b + 1)}))
                         for b in range(n)]
        self.sizes = [math.ceil((s_max + 1) / (s + 1) * eta**s - 1e-9) for s in range(s_max, -1, -1)]
        # One cycle of sum(sizes) places, each bracket at its share, spread out (smooth weighted
        # round robin) so that the first few trials already visit every bracket.
        total, credit, self.cycle = sum(self.sizes), [0] * n, []
        for _ in range(total):
            credit = [c + w for c, w in zip(credit, self.sizes)]
            b = max(range(n), key=lambda j: (credit[j], -j))
            credit[b] -= total
            self.cycle.append(b)

    def bracket_of(self, trial_index: int) -> int:
        return self.cycle[trial_index % len(self.cycle)]

    def should_stop(self, trial_index: int, epoch: int, curve: Sequence[float],
                    others: dict[int, Sequence[float]]) -> bool:
        b = self.bracket_of(trial_index)
        peers = {i: c for i, c in others.items() if self.bracket_of(i) == b}
        return self.brackets[b].should_stop(trial_index, epoch, curve, peers)


def pruning_rule(pruner: BasePruner, trial_index: int, max_epochs: int) -> str | None:
    """The rule that judges the candidate at place ``trial_index`` (None: nothing can stop it).

    A cell pruned before is pruned again from the evaluation cache only under the same rule: a
    review (2026-12-06) found pruned results served after ``--pruner none`` (and, by Hyperband,
    to a place in a bracket that prunes less), so a cell once pruned could never be trained out.
    """
    name = type(pruner).__name__
    if isinstance(pruner, Hyperband):
        b = pruner.bracket_of(trial_index)
        inner = pruning_rule(pruner.brackets[b], trial_index, max_epochs)
        return None if inner is None else f"{name} bracket {b}: {inner}"
    if isinstance(pruner, SuccessiveHalving):
        rungs = [e for e in range(1, max_epochs) if pruner.is_rung(e)]
        return f"{name} eta {pruner.eta}, rungs at epochs {rungs}" if rungs else None
    return None if type(pruner) is BasePruner else name  # (a rule of its own: by its name)


def pruner_note(pruner: BasePruner, max_epochs: int) -> str | None:
    """Why ``pruner`` can stop nothing in trials of ``max_epochs`` epochs (None: it can)."""
    if not isinstance(pruner, (SuccessiveHalving, Hyperband)):
        return None  # (no pruning, or a rule of its own)
    brackets = pruner.brackets if isinstance(pruner, Hyperband) else [pruner]
    if any(b.is_rung(e) for b in brackets for e in range(1, max_epochs)):
        return None
    least = brackets[0].eta if isinstance(pruner, Hyperband) else 2
    return (f"the pruner cannot stop any trial: with --epochs {max_epochs} it has no rung before the last "
            f"epoch; give --epochs {least} or more for it to prune (or leave --pruner out)")


def create_pruner(name: str | None, *, max_epochs: int) -> BasePruner:
    """``"none"``, ``"sha"`` (successive halving) or ``"hyperband"``."""
    if name in (None, "none"):
        return BasePruner()
    if name in ("sha", "successive-halving", "asha"):
        return SuccessiveHalving(min_epochs=max(1, max_epochs // 9) if max_epochs >= 9 else 1, max_epochs=max_epochs)
    if name == "hyperband":
        return Hyperband(max_epochs=max_epochs)
    raise ConfigError(f"unknown pruner {name!r}; choose none, sha or hyperband")
