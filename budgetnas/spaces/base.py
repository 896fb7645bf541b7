"""The search-space contract and its registry (layer 2).

A space says what can be built. Architectures are immutable values (here: tuples of op names) with
a canonical string form, so strategies, caches and storage never hold live modules.
"""

from __future__ import annotations

import inspect
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
        if inspect.isclass(factory) and inspect.isabstract(factory):  # (it failed later, as "takes no arguments")
            missing = ", ".join(sorted(getattr(factory, "__abstractmethods__", ())))
            raise ConfigError(f"search space {name!r} ({factory.__name__}) leaves methods of BaseSpace "
                              f"unwritten: {missing}; write them (see BaseSpace's docstring) and register it again")
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
            f"unknown search space {name!r}; choose one of {', '.join(list_spaces())} (a space of your own: "
            "import the module that registers it first; on the command line, --plugin MODULE)"
        ) from None
    try:
        inspect.signature(factory).bind(**kwargs)
    except TypeError as e:  # (the search builds every space with C and N: a bare TypeError said so)
        raise ConfigError(f"search space {name!r} cannot be built with {kwargs}: {e}. The search builds a space "
                          "with C and N, the search network's size and (final_C, final_N) the final network's: "
                          "its factory must take them (they may mean any width and depth)") from None
    except ValueError:  # (no signature to read: built as it is)
        pass
    return factory(**kwargs)


def check_space(space: BaseSpace, *, in_channels: int, num_classes: int, resolution: int,
                seed: int = 0) -> None:
    """What the search needs of a space, checked before anything is trained (a space of one's own
    failed deep in a search, or after it, a plugin review found, 2026-12-08): its ``spec()``
    builds it again (a saved model is rebuilt so), a sampled cell survives format -> parse and
    to_decisions -> from_decisions, and ``cost()`` is a :class:`Cost` whose parameters are those of
    the network ``build()`` makes (``--max-params`` and the size objectives trust it)."""
    name = type(space).__name__
    spec = dict(space.spec())
    try:
        again = create_space(spec["space"], **{k: v for k, v in spec.items() if k not in ("space", "version")})
        same = again.spec() == spec
    except Exception as e:  # noqa: BLE001 (said, with what the space must do)
        same, why = False, f"{type(e).__name__}: {e}"
    else:
        why = f"it built {again.spec()}"
    if not same:
        raise ConfigError(f"search space {name}: create_space(**spec()) must build it again (a saved model is "
                          f"rebuilt from it), but spec() is {spec} and {why}. spec() returns the registered "
                          "name under 'space', an optional 'version', and the factory's keyword arguments")
    arch = space.sample(np.random.default_rng(seed))
    text = space.format(arch)
    if space.format(space.parse(text)) != text or space.from_decisions(space.to_decisions(arch)) != arch:
        raise ConfigError(f"search space {name}: cell {text!r} does not survive format -> parse or "
                          "to_decisions -> from_decisions unchanged")
    cost = space.cost(arch, in_channels=in_channels, num_classes=num_classes, resolution=resolution)
    if not isinstance(cost, Cost):
        raise ConfigError(f"search space {name}: cost() must return a budgetnas.spaces.Cost, got {type(cost).__name__}")
    built = sum(p.numel() for p in space.build(arch, in_channels=in_channels, num_classes=num_classes).parameters())
    if cost.params != built:
        raise ConfigError(f"search space {name}: cost() counts {cost.params:,} parameters for {text!r}, but the "
                          f"network build() makes has {built:,}; --max-params and the size objectives trust "
                          "cost(): make it count what build() makes")
