"""Strategy registry: ``create_strategy("tpe", seed=0)`` returns an Optuna sampler.

Every factory takes ``seed`` (required) and ``space`` (optional: the search space whose
decisions the study suggests; the proposer strategies use it, Optuna's own ignore it), plus the
strategy's hyperparameters.

Example::

    >>> from budgetnas.spaces.nb201 import NB201Space
    >>> create_strategy("rea", seed=0, space=NB201Space(), population=10, sample_size=3)
    ProposerSampler(RegularizedEvolution(population=10, sample_size=3), seed=0, space=NB201Space(C=16, N=5))
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import optuna

from budgetnas.errors import ConfigError, check_new_name
from budgetnas.strategies._proposer import (_ON_PROPOSER, ProposerSampler, check_seed, create_proposer, list_proposers,
                                           proposal_index)


def _startup_trials(name: str, value: Any) -> int:
    """``n_startup_trials`` as an int >= 0, or ConfigError (Optuna takes anything and fails later)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(f"{name} n_startup_trials must be an integer >= 0, got {value!r}")
    return value

_STRATEGIES: dict[str, Callable[..., optuna.samplers.BaseSampler]] = {}


def register_strategy(name: str) -> Callable[[Callable[..., optuna.samplers.BaseSampler]],
                                            Callable[..., optuna.samplers.BaseSampler]]:
    """Decorator adding a sampler factory ``factory(seed=..., space=None, **kw)`` under ``name``."""

    def deco(factory: Callable[..., optuna.samplers.BaseSampler]) -> Callable[..., optuna.samplers.BaseSampler]:
        check_new_name("strategy", name, _STRATEGIES, factory)
        _STRATEGIES[name] = factory
        return factory

    return deco


def list_strategies() -> list[str]:
    """Names accepted by :func:`create_strategy`."""
    return sorted(_STRATEGIES)


def check_strategy(name: str) -> Callable[..., optuna.samplers.BaseSampler]:
    """The factory registered as strategy ``name``, or ConfigError naming the ones there are."""
    try:
        return _STRATEGIES[name]
    except KeyError:
        raise ConfigError(
            f"unknown strategy {name!r}; choose one of {', '.join(list_strategies())}"
        ) from None


def create_strategy(name: str, *, seed: int, **kwargs: Any) -> optuna.samplers.BaseSampler:
    """An Optuna sampler for strategy ``name``, seeded explicitly.

    Example::

        >>> create_strategy("tpe", seed=1).__class__.__name__
        'TPESampler'
    """
    factory = check_strategy(name)
    seed = check_seed(seed)
    try:
        return factory(seed=seed, **kwargs)
    except TypeError as e:  # an unknown hyperparameter
        from budgetnas.strategies._proposer import _PROPOSERS, bad_arguments

        given = {k: v for k, v in kwargs.items() if k != "space"}  # (every factory takes space)
        raise ConfigError(bad_arguments(name, _PROPOSERS.get(name, factory), given, e)) from None


class TrialSeeded(optuna.samplers.BaseSampler):
    """An Optuna sampler seeded afresh for every trial from ``(seed, proposal index)``.

    Optuna's samplers keep their random state in the process, so a search killed and resumed
    (or stopped by its budget and continued) drew other cells than one run straight through.
    Made anew per trial, seeded from the trial's :func:`proposal_index`, TPE, GP and random
    search propose the same cells whatever the session boundaries (their other state, the
    trials, lives in the study).

    Example::

        >>> s = TrialSeeded(lambda seed: optuna.samplers.RandomSampler(seed=seed), seed=0)
        >>> study = optuna.create_study(sampler=s)
        >>> study.ask().suggest_int("x", 0, 10**9) == optuna.create_study(sampler=s).ask().suggest_int("x", 0, 10**9)
        True
    """

    def __init__(self, make: Callable[[int], optuna.samplers.BaseSampler], *, seed: int) -> None:
        self.make, self.seed = make, check_seed(seed)
        self._inner: dict[tuple[int, int], optuna.samplers.BaseSampler] = {}  # (storage, trial id) -> its sampler

    def __repr__(self) -> str:
        return f"TrialSeeded({self.make(self.seed)!r}, seed={self.seed})"

    def _for(self, study: optuna.Study, trial: Any) -> optuna.samplers.BaseSampler:
        key = (id(study._storage), trial._trial_id)
        got = self._inner.get(key)
        if got is None:
            seed = int(np.random.SeedSequence([self.seed, proposal_index(study, trial)]).generate_state(1)[0])
            got = self._inner[key] = self.make(seed)
        return got

    def reseed_rng(self) -> None:
        """Nothing to reseed: every trial's sampler is seeded from ``(seed, proposal index)``."""

    def before_trial(self, study: optuna.Study, trial: Any) -> None:
        self._for(study, trial).before_trial(study, trial)

    def infer_relative_search_space(self, study: optuna.Study, trial: Any) -> dict[str, Any]:
        return self._for(study, trial).infer_relative_search_space(study, trial)

    def sample_relative(self, study: optuna.Study, trial: Any, search_space: dict[str, Any]) -> dict[str, Any]:
        return self._for(study, trial).sample_relative(study, trial, search_space)

    def sample_independent(self, study: optuna.Study, trial: Any, param_name: str, param_distribution: Any) -> Any:
        return self._for(study, trial).sample_independent(study, trial, param_name, param_distribution)

    def after_trial(self, study: optuna.Study, trial: Any, state: Any, values: Any) -> None:
        inner = self._inner.pop((id(study._storage), trial._trial_id), None)
        if inner is not None:
            inner.after_trial(study, trial, state, values)


@register_strategy("random")
def _random(*, seed: int, space: Any = None) -> optuna.samplers.BaseSampler:
    return optuna.samplers.RandomSampler(seed=seed)


@register_strategy("tpe")
def _tpe(*, seed: int, space: Any = None, n_startup_trials: int = 8) -> optuna.samplers.BaseSampler:
    # multivariate TPE models the six edges jointly; the first trials are random.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.samplers.TPESampler(seed=seed, multivariate=True,
                                          n_startup_trials=_startup_trials("TPE", n_startup_trials))


@register_strategy("gp")
def _gp(*, seed: int, space: Any = None, n_startup_trials: int = 10) -> optuna.samplers.BaseSampler:
    # Optuna's GP handles categorical parameters with a Hamming distance inside its Matern-5/2
    # ARD kernel (optuna/_gp/gp.py: is_categorical); needs scipy and torch. ~0.1 s per trial
    # at 60 trials on 2 CPU cores, so it is for small budgets. deterministic_objective: a cell is
    # scored once (table lookups are noise-free; a trained cell is served from the evaluation cache
    # thereafter), though trained scores carry seed noise between cells, which the GP then fits
    # exactly rather than smoothing (not measured against a noisy GP here).
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.samplers.GPSampler(seed=seed, n_startup_trials=_startup_trials("GP", n_startup_trials),
                                         deterministic_objective=True)


def _proposer_strategy(name: str) -> Callable[..., optuna.samplers.BaseSampler]:
    def factory(*, seed: int, space: Any = None, **kwargs: Any) -> optuna.samplers.BaseSampler:
        return ProposerSampler(create_proposer(name, **kwargs), seed=seed, space=space)

    factory.__name__ = f"_{name}"
    factory.__doc__ = f"The {name!r} proposer as an Optuna sampler (state rebuilt from the study)."
    return factory


def _register_proposers() -> None:
    """Make every registered proposer (except random, which Optuna provides) a strategy; those a
    plugin registers later become one as they are registered (:func:`_proposer_registered`)."""
    for name in list_proposers():
        if name not in _STRATEGIES:
            register_strategy(name)(_proposer_strategy(name))
    if _proposer_registered not in _ON_PROPOSER:
        _ON_PROPOSER.append(_proposer_registered)


def _proposer_registered(name: str) -> None:
    """A proposer registered after the built-ins becomes a strategy of its name at once (it never
    did: this module's import had made the strategies already, a review found, 2026-12-08); a
    strategy of that name already there is a conflict."""
    if name in _STRATEGIES:
        raise ConfigError(f"a strategy named {name!r} is registered already, so a proposer of that name could "
                          "never be searched with; register yours under another name")
    register_strategy(name)(_proposer_strategy(name))
