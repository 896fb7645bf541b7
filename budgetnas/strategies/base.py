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

import optuna

from budgetnas.errors import ConfigError
from budgetnas.strategies._proposer import ProposerSampler, check_seed, create_proposer, list_proposers


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
        _STRATEGIES[name] = factory
        return factory

    return deco


def list_strategies() -> list[str]:
    """Names accepted by :func:`create_strategy`."""
    return sorted(_STRATEGIES)


def create_strategy(name: str, *, seed: int, **kwargs: Any) -> optuna.samplers.BaseSampler:
    """An Optuna sampler for strategy ``name``, seeded explicitly.

    Example::

        >>> create_strategy("tpe", seed=1).__class__.__name__
        'TPESampler'
    """
    try:
        factory = _STRATEGIES[name]
    except KeyError:
        raise ConfigError(
            f"unknown strategy {name!r}; choose one of {', '.join(list_strategies())}"
        ) from None
    seed = check_seed(seed)
    try:
        return factory(seed=seed, **kwargs)
    except TypeError as e:  # an unknown hyperparameter
        from budgetnas.strategies._proposer import _PROPOSERS, bad_arguments

        given = {k: v for k, v in kwargs.items() if k != "space"}  # (every factory takes space)
        raise ConfigError(bad_arguments(name, _PROPOSERS.get(name, factory), given, e)) from None


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
    # at 60 trials on 2 CPU cores, so it is for small budgets. Table lookups are noise-free.
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
    """Make every registered proposer (except random, which Optuna provides) a strategy."""
    for name in list_proposers():
        if name not in _STRATEGIES:
            register_strategy(name)(_proposer_strategy(name))
