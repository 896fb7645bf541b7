"""Early stopping of weak candidates on our own per-epoch records.

Optuna's ``Trial.report``/``should_prune`` refuse multi-objective studies, so pruning here reads
the learning curves the search stores on every trial (a higher-is-better metric per epoch). It
therefore works the same for one objective or several, and for trials run by other workers.

- ``SuccessiveHalving`` (asynchronous, as ASHA): at rungs ``min_epochs * eta**k`` a trial goes on
  only if its metric is in the top ``1/eta`` of the trials that reached that rung.
- ``Hyperband``: several successive-halving brackets with different first rungs, hedging against
  rankings that change late in training; a trial is compared only with its bracket. Brackets get
  trials in Li et al.'s proportions (bracket ``s`` of ``s_max + 1``, counted from the one that
  never prunes, gets ``ceil((s_max + 1) / (s + 1) * eta**s)``: 9:5:3 for 9 epochs and eta 3), so
  the aggressive bracket sees the most trials and the one that never prunes the fewest. Trial
  ``i``'s bracket is a function of ``i`` alone (a fixed interleaved cycle), so resumed sessions
  and other workers place every trial the same way.
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
        """``curve``: this trial's metric per epoch so far; ``others``: trial index -> curve."""
        return False


class SuccessiveHalving(BasePruner):
    def __init__(self, min_epochs: int = 1, eta: int = 3, min_peers: int | None = None) -> None:
        if min_epochs < 1 or eta < 2:
            raise ConfigError("successive halving needs min_epochs >= 1 and eta >= 2")
        self.min_epochs = min_epochs
        self.eta = eta
        self.min_peers = eta if min_peers is None else min_peers

    def is_rung(self, epoch: int) -> bool:
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
        values = np.array(peers + [curve[epoch - 1]], dtype=float)
        keep = max(1, len(values) // self.eta)
        threshold = np.sort(values)[::-1][keep - 1]
        return curve[epoch - 1] < threshold


class Hyperband(BasePruner):
    def __init__(self, max_epochs: int, min_epochs: int = 1, eta: int = 3) -> None:
        if max_epochs < min_epochs:
            raise ConfigError("hyperband needs max_epochs >= min_epochs")
        n = int(math.floor(math.log(max_epochs / min_epochs, eta) + 1e-9)) + 1
        # bracket b starts pruning at min_epochs * eta**b: b = 0 is the most aggressive
        self.brackets = [SuccessiveHalving(min_epochs * eta**b, eta) for b in range(n)]
        s_max = n - 1
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


def create_pruner(name: str | None, *, max_epochs: int) -> BasePruner:
    """``"none"``, ``"sha"`` (successive halving) or ``"hyperband"``."""
    if name in (None, "none"):
        return BasePruner()
    if name in ("sha", "successive-halving", "asha"):
        return SuccessiveHalving(min_epochs=max(1, max_epochs // 9) if max_epochs >= 9 else 1)
    if name == "hyperband":
        return Hyperband(max_epochs=max_epochs)
    raise ConfigError(f"unknown pruner {name!r}; choose none, sha or hyperband")
