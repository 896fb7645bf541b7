"""Regularized (aging) evolution, REA (Real et al., AAAI 2019, "Algorithm 1").

As run in the NAS-Bench-201 / NATS-Bench baselines (AutoDL-Projects ``exps/NAS-Bench-201-algos/
R_EA.py`` and ``exps/NATS-algos/regularized_ea.py``):

* the first ``population`` proposals are uniformly random;
* then each proposal takes a tournament: ``sample_size`` members drawn uniformly **with
  replacement** from the population, the best of them is the parent, and the child is the
  parent with exactly one decision changed (``space.mutate``);
* aging: the population is always the last ``population`` evaluated architectures in history
  order (append the child, drop the oldest), so it is a pure function of the history.

Defaults ``population=10, sample_size=3`` are those of AutoDL's commands: ``--ea_population 10``
in ``scripts-search/NAS-Bench-201-algos/R-EA.sh`` with the sample size ``3`` given in
``docs/NAS-Bench-201.md`` (``bash ./scripts-search/algos/R-EA.sh cifar10 3 -1``), and
``--ea_population 10 --ea_sample_size 3`` in NATS-Bench's ``regularized_ea.py`` header.

One difference: AutoDL's mutation picks a node, then one of its incoming edges, so edge 1<-0 is
mutated 1/3 of the time and each edge into node 3 1/9; ``space.mutate`` picks the decision
uniformly (1/6 each for NB201), which works for any space.

Example::

    >>> from budgetnas.spaces.nb201 import NB201Space
    >>> from budgetnas.strategies import step_rng
    >>> space, rea = NB201Space(), RegularizedEvolution(population=2, sample_size=2)
    >>> history = [(space.sample(step_rng(0, i)), float(i)) for i in range(2)]
    >>> child = rea.propose(space, history, step_rng(0, 2))
    >>> min(sum(a != b for a, b in zip(child, parent)) for parent, _ in history)  # one edge away
    1
"""

from __future__ import annotations

from typing import Any

import numpy as np

from budgetnas.errors import ConfigError
from budgetnas.strategies._proposer import Arch, BaseProposer, History, ProposalSpace, register_proposer


def _positive_int(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ConfigError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


@register_proposer("rea")
class RegularizedEvolution(BaseProposer):
    """Aging evolution with tournament selection and one-decision mutation (see the module doc)."""

    name = "rea"

    def __init__(self, population: int = 10, sample_size: int = 3) -> None:
        self.population = _positive_int("REA population", population, 2)
        self.sample_size = _positive_int("REA sample_size", sample_size, 1)
        if self.sample_size > self.population:
            raise ConfigError(
                f"REA sample_size ({sample_size}) cannot exceed the population ({population}); "
                "NAS-Bench-201 used population 10, sample_size 3"
            )

    def params(self) -> dict[str, Any]:
        return {"population": self.population, "sample_size": self.sample_size}

    def propose(self, space: ProposalSpace, history: History, rng: np.random.Generator) -> Arch:
        if len(history) < self.population:
            return space.sample(rng)
        population = history[len(history) - self.population:]
        picks = rng.integers(self.population, size=self.sample_size)
        # Python's max keeps the first of equal scores, as AutoDL's max(sample, key=accuracy) does.
        parent = max((population[i] for i in picks), key=lambda e: e[1])[0]
        return space.mutate(parent, rng)
