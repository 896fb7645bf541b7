"""Strategy registry: ``create_strategy("tpe", seed=0)`` returns an Optuna sampler."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import optuna

from budgetnas.errors import ConfigError

_STRATEGIES: dict[str, Callable[..., optuna.samplers.BaseSampler]] = {}


def register_strategy(name: str) -> Callable[[Callable[..., optuna.samplers.BaseSampler]],
                                            Callable[..., optuna.samplers.BaseSampler]]:
    """Decorator adding a sampler factory ``factory(seed=..., **kw)`` under ``name``."""

    def deco(factory: Callable[..., optuna.samplers.BaseSampler]) -> Callable[..., optuna.samplers.BaseSampler]:
        _STRATEGIES[name] = factory
        return factory

    return deco


def list_strategies() -> list[str]:
    """Names accepted by :func:`create_strategy`."""
    return sorted(_STRATEGIES)


def create_strategy(name: str, *, seed: int, **kwargs: Any) -> optuna.samplers.BaseSampler:
    """An Optuna sampler for strategy ``name``, seeded explicitly."""
    try:
        factory = _STRATEGIES[name]
    except KeyError:
        raise ConfigError(
            f"unknown strategy {name!r}; choose one of {', '.join(list_strategies())}"
        ) from None
    return factory(seed=seed, **kwargs)


@register_strategy("random")
def _random(*, seed: int) -> optuna.samplers.BaseSampler:
    return optuna.samplers.RandomSampler(seed=seed)


@register_strategy("tpe")
def _tpe(*, seed: int, n_startup_trials: int = 8) -> optuna.samplers.BaseSampler:
    # multivariate TPE models the six edges jointly; the first trials are random.
    return optuna.samplers.TPESampler(seed=seed, multivariate=True, n_startup_trials=n_startup_trials)
