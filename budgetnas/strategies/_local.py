"""Local search (White, Nolen, Savani: "Local Search is State of the Art for NAS Benchmarks", 2020).

Hill climbing over the one-decision neighbourhood (``space.neighbours``), first-improvement:

* start from a uniformly random architecture not evaluated yet;
* propose the current architecture's not-yet-evaluated neighbours one at a time, in random order;
  as soon as one scores higher, it becomes the current architecture;
* a neighbour evaluated earlier that is already known to score higher is moved to at once,
  without spending a query on it;
* when every neighbour has been evaluated and none is better (a local optimum), restart from a
  new random architecture;
* a neighbour that failed or was pruned counts as evaluated and no better (scored ``-inf``).

Already-evaluated architectures are never proposed again (except when the whole space has been
evaluated). The walk is a pure function of the history, replayed incrementally.

Example::

    >>> from budgetnas.spaces.nb201 import NB201Space
    >>> from budgetnas.strategies import step_rng
    >>> space, ls = NB201Space(), LocalSearch()
    >>> start = space.sample(step_rng(0, 0))
    >>> nxt = ls.propose(space, [(start, 50.0)], step_rng(0, 1))
    >>> nxt in space.neighbours(start)
    True
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from budgetnas.strategies._proposer import Arch, History, ProposalSpace, ReplayProposer, register_proposer

_RESTART_TRIES = 1000


@dataclass
class _Walk:
    scores: dict[Any, float] = field(default_factory=dict)   # best score of each evaluated arch
    current: Any = None                                     # None: the next evaluation is a (re)start
    nbrs: dict[Any, tuple[list[Any], frozenset[Any]]] = field(default_factory=dict)
    restarts: int = 0


@register_proposer("local")
class LocalSearch(ReplayProposer[_Walk]):
    """First-improvement hill climbing with random restarts (see the module doc)."""

    name = "local"
    observes_failures = True  # a failed or pruned neighbour counts as tried, and as no better
    scores_pruned = False  # (a pruned cell is no start or step, whatever it reached when stopped)

    def initial_state(self, space: ProposalSpace) -> _Walk:
        return _Walk()

    def _neighbours(self, space: ProposalSpace, state: _Walk, arch: Any) -> tuple[list[Any], frozenset[Any]]:
        got = state.nbrs.get(arch)
        if got is None:
            lst = space.neighbours(arch)
            got = state.nbrs[arch] = (lst, frozenset(lst))
        return got

    def observe(self, space: ProposalSpace, state: _Walk, arch: Arch, score: float) -> None:
        old = state.scores.get(arch)
        state.scores[arch] = score if old is None else max(old, score)
        if state.current is None:
            if score == -np.inf:
                return  # a failed start: the next proposal is a fresh random start
            state.current = arch
        elif arch in self._neighbours(space, state, state.current)[1] and score > state.scores[state.current]:
            state.current = arch
        # Move on through neighbours already known to be better, then restart at a local optimum.
        while True:
            lst, _ = self._neighbours(space, state, state.current)
            here = state.scores[state.current]
            known = [(state.scores[n], n) for n in lst if n in state.scores]
            best = max(known, key=lambda e: e[0], default=None)
            if best is not None and best[0] > here:
                state.current = best[1]
                continue
            if len(known) == len(lst):
                state.current = None
                state.restarts += 1
            return

    def propose_from(self, space: ProposalSpace, state: _Walk, history: History,
                     rng: np.random.Generator) -> Arch:
        if state.current is not None:
            lst, _ = self._neighbours(space, state, state.current)
            untried = [n for n in lst if n not in state.scores]
            return untried[rng.integers(len(untried))]
        arch = space.sample(rng)
        for _ in range(_RESTART_TRIES):
            if arch not in state.scores:
                break
            arch = space.sample(rng)
        return arch
