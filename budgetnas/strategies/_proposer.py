"""Proposers: small pure-Python strategies, and the one adapter that makes any of them an Optuna sampler.

A **proposer** answers one question: given the history of ``(arch, score)`` pairs seen so far (in
evaluation order, higher score is better) and a random generator, which architecture next? It
holds hyperparameters, never results, so its answer depends only on its arguments. That is what
makes it safe for resume and many workers: :class:`ProposerSampler` rebuilds the history from the
study's COMPLETE trials on every ``sample`` and derives the generator from ``(seed, proposal
index)`` (:func:`proposal_index`: the trial's place among the proposed ones, retries left out), so
a restarted process proposes exactly what the first one would have, and two workers asking at
the same time (different trial numbers) draw differently.

The same proposers run directly on a benchmark table, with no Optuna storage, in the simulated
search (:mod:`budgetnas.search.simulate`); there ``step_rng(seed, len(history))`` gives the same
generator a sampler would, so both paths propose the same architectures.

Example::

    >>> import numpy as np
    >>> from budgetnas.spaces.nb201 import NB201Space
    >>> space, history = NB201Space(), []
    >>> proposer = create_proposer("rea", population=10, sample_size=3)
    >>> arch = proposer.propose(space, history, step_rng(0, len(history)))
    >>> len(arch)
    6
"""

from __future__ import annotations

import math
import zlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any, Generic, Protocol, TypeVar

import numpy as np
import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution
from optuna.trial import FrozenTrial, TrialState

from budgetnas.errors import ConfigError, check_new_name

Arch = Hashable
History = Sequence[tuple[Arch, float]]


class ProposalSpace(Protocol):
    """What a proposer needs from a space: every :class:`~budgetnas.spaces.base.BaseSpace` has it."""

    def decisions(self) -> list[tuple[str, tuple[Any, ...]]]: ...
    def from_decisions(self, values: Mapping[str, Any]) -> Arch: ...
    def to_decisions(self, arch: Arch) -> dict[str, Any]: ...
    def sample(self, rng: np.random.Generator) -> Arch: ...
    def mutate(self, arch: Arch, rng: np.random.Generator) -> Arch: ...
    def neighbours(self, arch: Arch) -> list[Arch]: ...


UNSTARTED_STATUS = "unstarted"  # a proposed trial closed untrained (no budget); the next session proposes again


def proposal_index(study: optuna.Study, trial: FrozenTrial) -> int:
    """How many of the trials before ``trial`` a strategy proposed: queued cells (retries of
    interrupted trials, the user's candidates) and proposals closed untrained for want of budget
    (user attribute ``status`` = ``unstarted``) are left out. A search killed and resumed (its
    interrupted trial retried as a new, queued trial) or stopped by a budget and continued with a
    larger one therefore draws from the same generators as one run straight through. (Proposals
    rejected as unaffordable still count: a session with a smaller budget skips them for good, as
    leaving them out would have the strategy propose the same cell again.)"""
    return sum(1 for t in study.get_trials(deepcopy=False)
               if t.number < trial.number and "fixed_params" not in t.system_attrs
               and t.user_attrs.get("status") != UNSTARTED_STATUS)


def step_rng(seed: int, step: int) -> np.random.Generator:
    """The generator for proposal number ``step`` of a strategy seeded with ``seed``.

    Deterministic in ``(seed, step)`` alone, so a resumed process or another worker needs no
    saved generator state. ``step`` is the trial's :func:`proposal_index` (== ``len(history)``
    when no trial failed).

    Example::

        >>> int(step_rng(0, 3).integers(100)) == int(step_rng(0, 3).integers(100))
        True
    """
    return np.random.default_rng([int(seed) % 2**64, int(step)])


def check_seed(seed: Any) -> int:
    """``seed`` as an int, or ConfigError: every strategy takes an explicit integer seed."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ConfigError(f"a strategy seed must be an integer, got {seed!r}")
    return int(seed)


class CategoricalSpace:
    """A space made only of named categorical decisions; an architecture is the tuple of values.

    The sampler adapter uses it when it was not given a real space: the decisions are then read
    from the study's completed trials.

    Example::

        >>> s = CategoricalSpace([("a", (1, 2)), ("b", ("x", "y", "z"))])
        >>> s.from_decisions({"a": 2, "b": "x"}), len(s.neighbours((2, "x")))
        ((2, 'x'), 3)
    """

    def __init__(self, decisions: Sequence[tuple[str, Sequence[Any]]]) -> None:
        self._decisions = [(str(n), tuple(c)) for n, c in decisions]
        if not self._decisions:
            raise ConfigError("a categorical space needs at least one decision")
        for name, choices in self._decisions:
            if not choices:
                raise ConfigError(f"decision {name!r} has no choices")

    def __repr__(self) -> str:
        return f"CategoricalSpace({self._decisions!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CategoricalSpace) and other._decisions == self._decisions

    def __hash__(self) -> int:
        return hash(tuple(self._decisions))

    def decisions(self) -> list[tuple[str, tuple[Any, ...]]]:
        return list(self._decisions)

    def from_decisions(self, values: Mapping[str, Any]) -> tuple[Any, ...]:
        return tuple(values[n] for n, _ in self._decisions)

    def to_decisions(self, arch: tuple[Any, ...]) -> dict[str, Any]:
        return {n: v for (n, _), v in zip(self._decisions, arch)}

    def sample(self, rng: np.random.Generator) -> tuple[Any, ...]:
        return tuple(c[rng.integers(len(c))] for _, c in self._decisions)

    def mutate(self, arch: tuple[Any, ...], rng: np.random.Generator) -> tuple[Any, ...]:
        # Same draws as BaseSpace.mutate: which decision, then which other value.
        free = [i for i, (_, c) in enumerate(self._decisions) if len(c) > 1]
        i = free[rng.integers(len(free))]
        others = [c for c in self._decisions[i][1] if c != arch[i]]
        out = list(arch)
        out[i] = others[rng.integers(len(others))]
        return tuple(out)

    def neighbours(self, arch: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        out = []
        for i, (_, choices) in enumerate(self._decisions):
            for c in choices:
                if c != arch[i]:
                    out.append(arch[:i] + (c,) + arch[i + 1:])
        return out


# Values of a trial's user attribute "status" with which budgetnas's search closes, as FAIL, a trial
# that never produced a result: handed back unstarted (no budget for it), or interrupted (its
# process stopped; the same cell is queued again). Neither says anything about the cell.
NOT_EVALUATED = ("unstarted", "interrupted")

# The user attribute in which budgetnas's search leaves a pruned trial's score when it was stopped
# (its metric at its last epoch): a multi-objective study has no intermediate values to read it from.
PARTIAL_SCORE = "partial_score"


def partial_score(trial: FrozenTrial) -> float | None:
    """What a PRUNED trial scored when it was stopped (first objective's units): the search's
    record of it, else its last intermediate value (a plain Optuna study); None if neither."""
    value = trial.user_attrs.get(PARTIAL_SCORE)
    if value is None and trial.intermediate_values:
        value = trial.intermediate_values[max(trial.intermediate_values)]
    return None if value is None else float(value)


class BaseProposer(ABC):
    """Proposes the next architecture from the history; holds hyperparameters, never results.

    Subclasses implement :meth:`propose`. ``history`` lists ``(arch, score)`` in evaluation
    order, higher scores better; it may contain the same architecture more than once. A proposer
    with ``observes_failures`` also sees the trials that failed, scored ``-inf`` (one that avoids
    repeats, like local search, would otherwise propose them again and again). Pruned trials are
    in the history at the score they had reached when stopped (see :func:`partial_score`): with
    Hyperband most trials are pruned, and a population or policy blind to them learns only from the
    few survivors. A proposer with ``scores_pruned = False`` sees them as failures instead.
    """

    name: str = "base"
    observes_failures: bool = False
    scores_pruned: bool = True

    @abstractmethod
    def propose(self, space: ProposalSpace, history: History, rng: np.random.Generator) -> Arch:
        """The next architecture to evaluate."""

    def params(self) -> dict[str, Any]:
        """Hyperparameters, for records and reports."""
        return {}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params().items())
        return f"{type(self).__name__}({args})"


S = TypeVar("S")


class ReplayProposer(BaseProposer, Generic[S]):
    """A proposer whose state is a fold over the history (REINFORCE's policy, local search's walk).

    The state is rebuilt by replaying the history in order; the result of the last replay is kept
    so that a history that only grew costs one step per new entry (checked by comparing the
    prefix, so a different history, e.g. another study, is replayed from scratch).
    """

    def __init__(self) -> None:
        self._cache: tuple[Any, list[tuple[Arch, float]], S] | None = None

    @abstractmethod
    def initial_state(self, space: ProposalSpace) -> S:
        """The state before any evaluation."""

    @abstractmethod
    def observe(self, space: ProposalSpace, state: S, arch: Arch, score: float) -> None:
        """Update ``state`` in place with one evaluated architecture."""

    @abstractmethod
    def propose_from(self, space: ProposalSpace, state: S, history: History,
                     rng: np.random.Generator) -> Arch:
        """The next architecture, given the state after the whole history."""

    def state_for(self, space: ProposalSpace, history: History) -> S:
        """The state after replaying ``history`` (incrementally when it extends the last one)."""
        hist = list(history)
        c = self._cache
        if c is not None and c[0] == space and len(c[1]) <= len(hist) and hist[:len(c[1])] == c[1]:
            _, seen, state = c
        else:
            seen, state = [], self.initial_state(space)
        for arch, score in hist[len(seen):]:
            self.observe(space, state, arch, score)
            seen.append((arch, score))
        self._cache = (space, seen, state)
        return state

    def propose(self, space: ProposalSpace, history: History, rng: np.random.Generator) -> Arch:
        return self.propose_from(space, self.state_for(space, history), history, rng)

    def __getstate__(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["_cache"] = None  # a cache, not state: never pickled or copied across processes
        return d


class RandomProposer(BaseProposer):
    """Uniform random sampling (``space.sample``): the baseline every strategy must beat.

    Example::

        >>> from budgetnas.spaces.nb201 import NB201Space
        >>> RandomProposer().propose(NB201Space(), [], step_rng(0, 0)) == NB201Space().sample(step_rng(0, 0))
        True
    """

    name = "random"

    def propose(self, space: ProposalSpace, history: History, rng: np.random.Generator) -> Arch:
        return space.sample(rng)


# -- registry of proposers -------------------------------------------------------------------------
_PROPOSERS: dict[str, Callable[..., BaseProposer]] = {}
# Called with the name of each proposer registered once the strategies are made (strategies.base:
# a plugin's proposer becomes a strategy of its name as it is registered).
_ON_PROPOSER: list[Callable[[str], None]] = []


def register_proposer(name: str) -> Callable[[Callable[..., BaseProposer]], Callable[..., BaseProposer]]:
    """Register a proposer factory under ``name``; it is also an Optuna strategy of that name
    (``create_strategy(name, ...)``, ``--strategy name``)."""

    def deco(factory: Callable[..., BaseProposer]) -> Callable[..., BaseProposer]:
        new = name not in _PROPOSERS
        check_new_name("proposer", name, _PROPOSERS, factory)
        if new:
            for hook in _ON_PROPOSER:  # (first: a conflict leaves nothing registered)
                hook(name)
        _PROPOSERS[name] = factory
        return factory

    return deco


def list_proposers() -> list[str]:
    """Names accepted by :func:`create_proposer` (the strategies with a fast, storage-free path)."""
    return sorted(_PROPOSERS)


def create_proposer(name: str, **kwargs: Any) -> BaseProposer:
    """A proposer by name, e.g. ``create_proposer("rea", population=10, sample_size=3)``."""
    try:
        factory = _PROPOSERS[name]
    except KeyError:
        raise ConfigError(
            f"no proposer named {name!r}; choose one of {', '.join(list_proposers())}"
        ) from None
    try:
        return factory(**kwargs)
    except TypeError as e:
        raise ConfigError(bad_arguments(name, factory, kwargs, e)) from None


def bad_arguments(name: str, factory: Any, given: dict[str, Any], error: Exception) -> str:
    """The message for hyperparameters a strategy does not take: which, and the ones it does."""
    import inspect

    try:
        params = inspect.signature(factory).parameters.values()
    except (TypeError, ValueError):
        return f"bad arguments for strategy {name!r}: {error}"
    if any(p.kind is p.VAR_KEYWORD for p in params):  # passes them on: cannot tell which are wrong
        return f"bad arguments for strategy {name!r}: {error}"
    accepted = [p.name for p in params if p.name not in ("self", "seed", "space")]
    if not accepted:
        return (f"strategy {name!r} takes no hyperparameters, got {', '.join(map(repr, given))}; "
                f"write it as plain {name!r}")
    unknown = [k for k in given if k not in accepted]
    if unknown:
        return (f"strategy {name!r} has no hyperparameter {', '.join(map(repr, unknown))}; it takes "
                f"{', '.join(accepted)} (e.g. {name}:{accepted[0]}=...)")
    return f"bad arguments for strategy {name!r}: {error}"


register_proposer("random")(RandomProposer)


# -- the one Optuna adapter ------------------------------------------------------------------------
class ProposerSampler(optuna.samplers.BaseSampler):
    """Any :class:`BaseProposer` as an Optuna sampler whose state lives in the study.

    On each trial it rebuilds the history from the study's COMPLETE trials (ordered by trial
    number; score = the first objective, negated when that objective is minimised, so single-
    and multi-objective studies both work) and proposes with ``step_rng(seed, proposal_index)``.
    Nothing is kept between calls except a cache, so resume and many workers need nothing else.

    ``space`` gives the decisions (any BaseSpace); without it they are read from the completed
    trials, and trials before the first completed one are sampled uniformly at random.
    Parameters outside the space are sampled uniformly at random, also from ``(seed, trial)``.

    Example::

        >>> import optuna
        >>> from budgetnas.spaces.nb201 import NB201Space
        >>> space = NB201Space()
        >>> sampler = ProposerSampler(create_proposer("rea"), seed=0, space=space)
        >>> study = optuna.create_study(direction="maximize", sampler=sampler)
        >>> trial = study.ask()
        >>> arch = space.from_decisions({n: trial.suggest_categorical(n, c) for n, c in space.decisions()})
        >>> study.tell(trial, 0.5).state.name
        'COMPLETE'
    """

    def __init__(self, proposer: BaseProposer, *, seed: int, space: ProposalSpace | None = None) -> None:
        if not isinstance(proposer, BaseProposer):
            raise ConfigError(f"ProposerSampler needs a BaseProposer, got {type(proposer).__name__}")
        self.proposer = proposer
        self.seed = check_seed(seed)
        self.space = space
        self._given = None if space is None else {
            n: CategoricalDistribution(list(c)) for n, c in space.decisions()}
        # trial_id -> (arch, score) of COMPLETE trials: they never change. Reset per storage/study.
        self._owner: tuple[Any, int, Any] | None = None
        self._archs: dict[int, tuple[Arch, float] | None] = {}
        self._step: tuple[tuple[int, int], int] | None = None  # ((storage, trial id), its proposal index)

    def __repr__(self) -> str:
        return f"ProposerSampler({self.proposer!r}, seed={self.seed}, space={self.space!r})"

    def __getstate__(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["_owner"], d["_archs"], d["_step"] = None, {}, None
        return d

    def reseed_rng(self) -> None:
        """Nothing to reseed: every draw comes from ``(seed, proposal index)``."""

    def infer_relative_search_space(self, study: optuna.Study, trial: FrozenTrial) -> dict[str, BaseDistribution]:
        if self._given is not None:
            return dict(self._given)
        done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if not done:
            return {}
        inferred = optuna.search_space.intersection_search_space(done)
        return {n: d for n, d in inferred.items()
                if isinstance(d, CategoricalDistribution) and len(d.choices) > 0}

    def sample_relative(self, study: optuna.Study, trial: FrozenTrial,
                        search_space: dict[str, BaseDistribution]) -> dict[str, Any]:
        if not search_space:
            return {}
        space = self.space if self.space is not None else CategoricalSpace(
            [(n, d.choices) for n, d in search_space.items()])  # type: ignore[attr-defined]
        history = self.history(study, space)
        arch = self.proposer.propose(space, history, step_rng(self.seed, self._index(study, trial)))
        return dict(space.to_decisions(arch))

    def _index(self, study: optuna.Study, trial: FrozenTrial) -> int:
        key = (id(study._storage), trial._trial_id)  # (trial ids restart in each in-memory storage)
        if self._step is None or self._step[0] != key:
            self._step = (key, proposal_index(study, trial))
        return self._step[1]

    def sample_independent(self, study: optuna.Study, trial: FrozenTrial, param_name: str,
                           param_distribution: BaseDistribution) -> Any:
        salt = zlib.crc32(param_name.encode())
        step = self._index(study, trial)
        if isinstance(param_distribution, CategoricalDistribution):
            rng = np.random.default_rng([self.seed % 2**64, step, salt])
            return param_distribution.choices[rng.integers(len(param_distribution.choices))]
        seed = int(np.random.SeedSequence([self.seed % 2**64, step, salt]).generate_state(1)[0])
        return optuna.samplers.RandomSampler(seed=seed).sample_independent(
            study, trial, param_name, param_distribution)

    def history(self, study: optuna.Study, space: ProposalSpace) -> list[tuple[Arch, float]]:
        """``(arch, score)`` of the study's COMPLETE and PRUNED trials that set every decision, by
        trial number (a pruned one at its :func:`partial_score`), and of its FAIL ones at ``-inf``
        for a proposer that observes failures."""
        owner = (study._storage, study._study_id, space)
        if self._owner is None or self._owner[0] is not owner[0] or self._owner[1:] != owner[1:]:
            self._owner, self._archs = owner, {}
        sign = -1.0 if study.directions[0] == optuna.study.StudyDirection.MINIMIZE else 1.0
        names = [(n, c) for n, c in space.decisions()]
        out = []
        scores_pruned, failures = self.proposer.scores_pruned, self.proposer.observes_failures
        states = (TrialState.COMPLETE,) + ((TrialState.PRUNED,) if scores_pruned or failures else ())
        if failures:
            states += (TrialState.FAIL,)
        trials = sorted(study.get_trials(deepcopy=False, states=states), key=lambda t: t.number)
        for t in trials:
            entry = self._archs.get(t._trial_id, False)
            if entry is False:
                entry = None
                params = t.params
                if all(n in params and params[n] in c for n, c in names):
                    arch = space.from_decisions({n: params[n] for n, _ in names})
                    partial = partial_score(t) if t.state == TrialState.PRUNED and scores_pruned else None
                    if partial is not None:
                        if math.isfinite(sign * partial):
                            entry = (arch, sign * partial)
                    elif t.state == TrialState.PRUNED and not failures:
                        pass  # (pruned with no score to read: nothing to learn from)
                    elif t.state != TrialState.COMPLETE:
                        # (a trial the search closed without evaluating it, for want of budget or
                        # because its process stopped and it was queued again, is no failure)
                        if t.user_attrs.get("status") not in NOT_EVALUATED:
                            entry = (arch, -math.inf)
                    elif t.values:
                        score = sign * float(t.values[0])
                        if math.isfinite(score):
                            entry = (arch, score)
                self._archs[t._trial_id] = entry
            if entry is not None:
                out.append(entry)
        return out
