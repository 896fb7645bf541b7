"""The plugin registries (register_strategy, register_proposer, register_space, check_strategy):
a space, a proposer and a strategy registered under new names are created by the factories and
drive a real (in-memory) study, and names never registered are refused with the ones there are.

Each test registers into a copy of the registry (monkeypatch), so no name outlives it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import optuna
import pytest
import torch
from torch import nn

from budgetnas.errors import ArchitectureError, ConfigError
from budgetnas.spaces import BaseSpace, Cost, create_space, list_spaces, register_space
from budgetnas.strategies import (
    BaseProposer,
    ProposerSampler,
    check_strategy,
    create_proposer,
    create_strategy,
    list_proposers,
    list_strategies,
    register_proposer,
    register_strategy,
)

optuna.logging.set_verbosity(optuna.logging.WARNING)


pytestmark = pytest.mark.usefixtures("own_registries")  # (tests/conftest.py)


class Grid(BaseSpace):
    """A toy space: a width and a depth, built as that many linear layers of that width."""

    name = "toy_grid"
    version = "1"

    def __init__(self, widths: tuple[int, ...] = (2, 4, 8), depths: tuple[int, ...] = (1, 2)) -> None:
        self.widths, self.depths = tuple(widths), tuple(depths)

    def decisions(self) -> list[tuple[str, tuple[str, ...]]]:
        return [("width", tuple(map(str, self.widths))), ("depth", tuple(map(str, self.depths)))]

    def from_decisions(self, values: Mapping[str, Any]) -> tuple[int, int]:
        return int(values["width"]), int(values["depth"])

    def to_decisions(self, arch: Any) -> dict[str, str]:
        return {"width": str(arch[0]), "depth": str(arch[1])}

    def parse(self, text: str) -> tuple[int, int]:
        try:
            w, d = text.split("x")
            return int(w), int(d)
        except ValueError:
            raise ArchitectureError(f"not a toy grid cell: {text!r}") from None

    def format(self, arch: Any) -> str:
        return f"{arch[0]}x{arch[1]}"

    def canonical(self, arch: Any) -> str:
        return self.format(arch)

    def build(self, arch: Any, *, in_channels: int, num_classes: int) -> nn.Module:
        w, d = arch
        layers: list[nn.Module] = [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(in_channels, w)]
        for _ in range(d - 1):
            layers += [nn.ReLU(), nn.Linear(w, w)]
        return nn.Sequential(*layers, nn.ReLU(), nn.Linear(w, num_classes))

    def cost(self, arch: Any, *, in_channels: int, num_classes: int, resolution: int) -> Cost:
        net = self.build(arch, in_channels=in_channels, num_classes=num_classes)
        params = sum(p.numel() for p in net.parameters())
        return Cost(params=params, macs=params, flops_nb201=params)

    def spec(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "widths": self.widths, "depths": self.depths}


def _score(arch: tuple[int, int]) -> float:
    return float(arch[0] * 10 + arch[1])  # (the best cell: the widest, deepest, 8x2)


def _drive(sampler: optuna.samplers.BaseSampler, space: BaseSpace, n: int) -> list[Any]:
    """n ask/tell rounds the way budgetnas.search.study asks: suggest_categorical per decision."""
    study = optuna.create_study(direction="maximize", sampler=sampler, storage=optuna.storages.InMemoryStorage())
    archs = []
    for _ in range(n):
        trial = study.ask()
        arch = space.from_decisions({k: trial.suggest_categorical(k, list(c)) for k, c in space.decisions()})
        study.tell(trial, _score(arch))
        archs.append(arch)
    return archs


def test_a_registered_space_is_created_by_name_and_searched_by_the_strategies() -> None:
    """register_space adds a factory under a new name: create_space builds it with its arguments,
    the built-in strategies search its decisions, and its networks run."""
    register_space("toy_grid")(Grid)
    assert "toy_grid" in list_spaces() and "nb201" in list_spaces()
    space = create_space("toy_grid", widths=(2, 8), depths=(1, 2, 3))
    assert isinstance(space, Grid) and space.spec()["widths"] == (2, 8)
    assert space.parse(space.format((8, 3))) == (8, 3)
    for name in ("random", "rea", "local"):
        archs = _drive(create_strategy(name, seed=0, space=space), space, 30)
        assert set(archs) <= {(w, d) for w in (2, 8) for d in (1, 2, 3)}
        assert max(archs, key=_score) == (8, 3), name  # (6 cells in 30 trials: the best is found)
    net = space.build((8, 3), in_channels=3, num_classes=5)
    assert net(torch.zeros(2, 3, 4, 4)).shape == (2, 5)
    with pytest.raises(ConfigError, match="unknown search space 'toy_grids'; choose one of .*toy_grid"):
        create_space("toy_grids")


class FirstUntried(BaseProposer):
    """A toy proposer: the first cell, in the space's own order, not evaluated yet."""

    name = "toy_first_untried"

    def __init__(self, reverse: bool = False) -> None:
        self.reverse = reverse

    def params(self) -> dict[str, Any]:
        return {"reverse": self.reverse}

    def propose(self, space: Any, history: Any, rng: np.random.Generator) -> Any:
        seen = {arch for arch, _ in history}
        cells = [space.from_decisions({"width": w, "depth": d})
                 for w in dict(space.decisions())["width"] for d in dict(space.decisions())["depth"]]
        untried = [c for c in (cells[::-1] if self.reverse else cells) if c not in seen]
        return untried[0] if untried else space.sample(rng)


def test_a_registered_proposer_and_strategy_are_created_by_name_and_drive_a_study() -> None:
    """register_proposer adds a proposer (create_proposer, with its hyperparameters checked) and
    the strategy of its name that create_strategy and check_strategy (what a search's settings
    are checked with) know (a plugin's proposer became no strategy: the built-ins' were made once,
    as the package was imported: a review, 2026-12-08); register_strategy adds any sampler factory."""
    space = Grid()
    register_proposer("toy_first_untried")(FirstUntried)
    assert "toy_first_untried" in list_proposers()
    assert create_proposer("toy_first_untried", reverse=True).params() == {"reverse": True}
    with pytest.raises(ConfigError, match="strategy 'toy_first_untried' has no hyperparameter 'depth'; it takes reverse"):
        create_proposer("toy_first_untried", depth=3)
    assert "toy_first_untried" in list_strategies() and check_strategy("toy_first_untried")

    @register_strategy("toy_first_untried_too")
    def _factory(*, seed: int, space: Any = None, reverse: bool = False) -> optuna.samplers.BaseSampler:
        return ProposerSampler(create_proposer("toy_first_untried", reverse=reverse), seed=seed, space=space)

    assert check_strategy("toy_first_untried_too") is _factory
    assert _drive(_factory(seed=0, space=space), space, 3) == [(2, 1), (2, 2), (4, 1)]
    archs = _drive(create_strategy("toy_first_untried", seed=0, space=space), space, 6)
    assert archs == [(2, 1), (2, 2), (4, 1), (4, 2), (8, 1), (8, 2)]  # (its proposals, in its order)
    archs = _drive(create_strategy("toy_first_untried", seed=0, space=space, reverse=True), space, 6)
    assert archs == [(8, 2), (8, 1), (4, 2), (4, 1), (2, 2), (2, 1)]
    with pytest.raises(ConfigError, match="strategy 'toy_first_untried' has no hyperparameter 'population'"):
        create_strategy("toy_first_untried", seed=0, space=space, population=3)


def test_names_never_registered_are_refused_naming_the_ones_there_are() -> None:
    register_strategy("toy_random")(lambda *, seed, space=None: optuna.samplers.RandomSampler(seed=seed))
    for call in (lambda: check_strategy("toy_randon"), lambda: create_strategy("toy_randon", seed=0)):
        with pytest.raises(ConfigError, match="unknown strategy 'toy_randon'; choose one of .*toy_random"):
            call()
    with pytest.raises(ConfigError, match="no proposer named 'toy_randon'; choose one of .*rea"):
        create_proposer("toy_randon")
    with pytest.raises(ConfigError, match="ProposerSampler needs a BaseProposer"):
        ProposerSampler(object(), seed=0)  # type: ignore[arg-type]


def test_a_name_taken_or_no_plain_word_is_refused_and_nothing_replaced() -> None:
    """Registering another factory under a name taken replaced it unsaid ("tpe" became a random
    sampler, "nb201" another space), and a name of 3 broke list_strategies (a review, 2026-12-08).
    The same factory registered again (a module imported twice) is no conflict."""
    tpe = check_strategy("tpe")
    with pytest.raises(ConfigError, match="a strategy named 'tpe' is registered already"):
        register_strategy("tpe")(lambda *, seed, space=None: optuna.samplers.RandomSampler(seed=seed))
    assert check_strategy("tpe") is tpe
    register_strategy("tpe")(tpe)  # (itself again)
    with pytest.raises(ConfigError, match="a search space named 'nb201' is registered already"):
        register_space("nb201")(Grid)
    assert not isinstance(create_space("nb201", C=4, N=1), Grid)
    # A proposer named as a strategy could never be searched with: refused, and not registered.
    with pytest.raises(ConfigError, match="a strategy named 'gp' is registered already"):
        register_proposer("gp")(FirstUntried)
    assert "gp" not in list_proposers()
    with pytest.raises(ConfigError, match="a proposer named 'rea' is registered already"):
        register_proposer("rea")(FirstUntried)
    for bad in (3, "", "my strategy", "-x"):
        with pytest.raises(ConfigError, match="name must be a word of letters, digits"):
            register_strategy(bad)(tpe)  # type: ignore[arg-type]
    assert all(isinstance(n, str) for n in list_strategies())

