"""Early stopping of weak candidates on our own per-epoch records.

Optuna's ``Trial.report``/``should_prune`` refuse multi-objective studies, so pruning here reads
the learning curves the search stores on every trial (a higher-is-better metric per epoch). It
therefore works the same for one objective or several, and for trials run by other workers.

- ``SuccessiveHalving`` (asynchronous, as ASHA): at rungs ``min_epochs * eta**k`` a trial goes on
  only if its metric is in the top ``1/eta`` of the trials that reached that rung.
- ``Hyperband``: several successive-halving brackets with different first rungs; trial ``i`` is in
  bracket ``i mod n_brackets`` and is compared only with its bracket, hedging against rankings
  that change late in training.
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
        self.brackets = [SuccessiveHalving(min_epochs * eta**b, eta) for b in range(n)]

    def should_stop(self, trial_index: int, epoch: int, curve: Sequence[float],
                    others: dict[int, Sequence[float]]) -> bool:
        b = trial_index % len(self.brackets)
        peers = {i: c for i, c in others.items() if i % len(self.brackets) == b}
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
