"""The search-space contract and its registry (layer 2).

A space says what can be built. Architectures are immutable values (here: tuples of op names) with
a canonical string form, so strategies, caches and storage never hold live modules.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from budgetnas.errors import ConfigError, check_new_name

if TYPE_CHECKING:
    from torch import nn

Arch = Hashable


@dataclass(frozen=True)
class Cost:
    """Size and compute of one built network.

    ``macs`` counts multiply-accumulates of convolutions and the classifier for one image;
    ``flops_nb201`` is what NAS-Bench-201 publishes as "FLOPs": those MACs plus the classifier's
    bias adds (AutoDL's counter skips pooling, BN and ReLU). Both are multiply-adds, not 2x MACs.
    """

    params: int
    macs: int
    flops_nb201: int


class BaseSpace(ABC):
    """What can be built: sample, mutate, encode and build architectures.

    Subclasses expose their choices as named categorical decisions, which is how Optuna samplers
    (TPE, GP, random, evolution, ...) propose architectures without ever seeing a module.
    """

    name: str = "base"
    version: str = "0"

    @abstractmethod
    def decisions(self) -> list[tuple[str, tuple[str, ...]]]:
        """Named categorical choices that define an architecture, in a fixed order."""

    @abstractmethod
    def from_decisions(self, values: Mapping[str, Any]) -> Arch:
        """The architecture for one value per decision."""

    @abstractmethod
    def to_decisions(self, arch: Arch) -> dict[str, str]:
        """The decision values of an architecture (inverse of :meth:`from_decisions`)."""

    @abstractmethod
    def parse(self, text: str) -> Arch:
        """Read an architecture from its string form; raise ArchitectureError naming bad tokens."""

    @abstractmethod
    def format(self, arch: Arch) -> str:
        """The architecture's canonical string."""

    @abstractmethod
    def canonical(self, arch: Arch) -> str:
        """A key equal for every pair of architectures that compute the same function."""

    @abstractmethod
    def build(self, arch: Arch, *, in_channels: int, num_classes: int) -> nn.Module:
        """A freshly initialised network for this architecture."""

    @abstractmethod
    def cost(self, arch: Arch, *, in_channels: int, num_classes: int, resolution: int) -> Cost:
        """Parameters and compute of :meth:`build`'s network, without building it."""

    @abstractmethod
    def spec(self) -> dict[str, Any]:
        """Everything that defines the space (name, version, sizes), for fingerprints and records."""

    def sample(self, rng: np.random.Generator) -> Arch:
        """A uniformly random architecture drawn with the given generator."""
        return self.from_decisions({n: c[rng.integers(len(c))] for n, c in self.decisions()})

    def mutate(self, arch: Arch, rng: np.random.Generator) -> Arch:
        """Change exactly one decision to a different value (NB201's one-edge mutation)."""
        values = self.to_decisions(arch)
        names = [n for n, c in self.decisions() if len(c) > 1]
        name = names[rng.integers(len(names))]
        choices = [c for c in dict(self.decisions())[name] if c != values[name]]
        values[name] = choices[rng.integers(len(choices))]
        return self.from_decisions(values)

    def neighbours(self, arch: Arch) -> list[Arch]:
        """Every architecture one decision away, in a fixed order."""
        values = self.to_decisions(arch)
        out = []
        for name, choices in self.decisions():
            for c in choices:
                if c != values[name]:
                    out.append(self.from_decisions({**values, name: c}))
        return out


_SPACES: dict[str, Callable[..., BaseSpace]] = {}


def register_space(name: str) -> Callable[[Callable[..., BaseSpace]], Callable[..., BaseSpace]]:
    """Class decorator adding a space factory to the registry under ``name``."""

    def deco(factory: Callable[..., BaseSpace]) -> Callable[..., BaseSpace]:
        check_new_name("search space", name, _SPACES, factory)
        _SPACES[name] = factory
        return factory

    return deco


def list_spaces() -> list[str]:
    """Names accepted by :func:`create_space`."""
    return sorted(_SPACES)


def create_space(name: str, **kwargs: Any) -> BaseSpace:
    """Build a registered space, e.g. ``create_space("nb201", C=8, N=1)``."""
    try:
        factory = _SPACES[name]
    except KeyError:
        raise ConfigError(
            f"unknown search space {name!r}; choose one of {', '.join(list_spaces())}"
        ) from None
    return factory(**kwargs)
