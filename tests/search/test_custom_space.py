"""A search space and a strategy of one's own (a plugin): a plain CNN whose decisions have uneven
numbers of choices, searched, trained, tested and loaded like NB201; and the contract the search
checks before it trains anything (a plugin review, 2026-12-08: an uneven space failed every search
with an IndexError, a wrong cost() let --max-params through, a spec() that could not build the
space again left a paid-for run that could not be loaded)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from budgetnas import ImageClassifier, load_model
from budgetnas.errors import ArchitectureError, ConfigError
from budgetnas.spaces import BaseSpace, Cost, check_space, create_space, register_space
from budgetnas.strategies import BaseProposer, register_proposer

DECISIONS = [("depth", ("1", "2", "3")), ("width", ("4", "8", "16", "32")), ("kernel", ("3", "5"))]


pytestmark = pytest.mark.usefixtures("own_registries")  # (tests/conftest.py)


class PlainCNN(BaseSpace):
    """depth conv-BN-ReLU blocks of width * C / 8 channels and a kernel, each repeated N times,
    max-pooled between the first three; then global pooling and a linear classifier."""

    name = "toy_plaincnn"
    version = "1"

    def __init__(self, C: int = 8, N: int = 1) -> None:
        self.C, self.N = C, N

    def decisions(self) -> list[tuple[str, tuple[str, ...]]]:
        return list(DECISIONS)

    def from_decisions(self, values: Mapping[str, Any]) -> tuple[int, int, int]:
        return int(values["depth"]), int(values["width"]), int(values["kernel"])

    def to_decisions(self, arch: Any) -> dict[str, str]:
        return dict(zip(("depth", "width", "kernel"), map(str, arch)))

    def format(self, arch: Any) -> str:
        return "d{}-w{}-k{}".format(*arch)

    def parse(self, text: str) -> tuple[int, int, int]:
        try:
            d, w, k = (int(part[1:]) for part in text.strip().split("-"))
        except ValueError:
            raise ArchitectureError(f"bad cell {text!r}; e.g. d2-w16-k3") from None
        return d, w, k

    def canonical(self, arch: Any) -> str:
        return self.format(arch)

    def _blocks(self, arch: Any, in_channels: int) -> list[tuple[int, int, int, bool]]:
        """(in, out, kernel, pooled after) of each conv."""
        d, w, k = arch
        width, out, c = max(1, w * self.C // 8), [], in_channels
        for i in range(d):
            for j in range(self.N):
                out.append((c, width, k, j == self.N - 1 and i < min(2, d - 1)))
                c = width
        return out

    def build(self, arch: Any, *, in_channels: int, num_classes: int) -> Any:
        from torch import nn

        layers: list[nn.Module] = []
        for cin, cout, k, pool in self._blocks(arch, in_channels):
            layers += [nn.Conv2d(cin, cout, k, padding=k // 2, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]
            layers += [nn.MaxPool2d(2)] if pool else []
        width = self._blocks(arch, in_channels)[-1][1]
        return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width, num_classes))

    def cost(self, arch: Any, *, in_channels: int, num_classes: int, resolution: int) -> Cost:
        params = macs = 0
        r = resolution
        for cin, cout, k, pool in self._blocks(arch, in_channels):
            params += cin * cout * k * k + 2 * cout
            macs += cin * cout * k * k * r * r
            r = r // 2 if pool else r
        width = self._blocks(arch, in_channels)[-1][1]
        return Cost(params=params + width * num_classes + num_classes, macs=macs + width * num_classes,
                    flops_nb201=macs + width * num_classes + num_classes)

    def spec(self) -> dict[str, Any]:
        return {"space": self.name, "version": self.version, "C": self.C, "N": self.N}


class MutateBest(BaseProposer):
    name = "toy_mutate_best"

    def propose(self, space: Any, history: Any, rng: np.random.Generator) -> Any:
        if not history:
            return space.sample(rng)
        return space.mutate(max(history, key=lambda h: h[1])[0], rng)


def test_a_space_and_strategy_of_ones_own_search_train_and_load(tmp_path: Path, digits) -> None:
    register_space("toy_plaincnn")(PlainCNN)
    register_proposer("toy_mutate_best")(MutateBest)
    x, y = digits
    clf = ImageClassifier(run_dir=tmp_path / "run", space="toy_plaincnn", strategy="toy_mutate_best",
                          max_trials=3, epochs=1, final_epochs=1, final_C=8, final_N=1, progress=False)
    clf.fit(x[:400], y[:400], test_data=(x[400:600], y[400:600]))
    assert clf.result.best_arch is not None and clf.result.test_metrics
    model = load_model(tmp_path / "run")
    assert model.arch == clf.result.best_arch
    assert (model.predict(x[600:610]) == clf.predict(x[600:610])).all()
    # Several objectives: a proposer ranks by the first alone, so it is refused, as the built-in ones are.
    with pytest.raises(ConfigError, match="strategy 'toy_mutate_best' optimises one objective"):
        ImageClassifier(run_dir=tmp_path / "mo", space="toy_plaincnn", strategy="toy_mutate_best", max_trials=2,
                        objectives=["accuracy", "params"], progress=False).fit(x[:100], y[:100])


def test_the_search_checks_a_spaces_contract_before_training(tmp_path: Path, digits) -> None:
    x, y = digits

    class WrongCost(PlainCNN):
        name = "toy_wrong_cost"

        def cost(self, arch: Any, **kw: Any) -> Cost:
            return Cost(params=1, macs=1, flops_nb201=1)

    class Unnamed(PlainCNN):  # (spec() says 'toy_plaincnn', a space registered as something else)
        pass

    register_space("toy_wrong_cost")(WrongCost)
    register_space("toy_unnamed")(Unnamed)
    for space, match in (("toy_wrong_cost", r"cost\(\) counts 1 parameters for 'd.*', but the network build\(\) makes "
                                            r"has [0-9,]+; max_params"),
                         ("toy_unnamed", r"create_space\(\*\*spec\(\)\) must build it again .* unknown search space "
                                         r"'toy_plaincnn'")):
        with pytest.raises(ConfigError, match=match):
            ImageClassifier(run_dir=tmp_path / space, space=space, max_trials=1, epochs=1,
                            progress=False).fit(x[:100], y[:100])
        assert not (tmp_path / space / "study.db").exists()  # (refused before anything was written)
    register_space("toy_plaincnn")(PlainCNN)
    check_space(create_space("toy_plaincnn", C=8, N=2), in_channels=3, num_classes=10, resolution=16)


def test_a_space_registered_wrongly_is_refused_with_what_to_do() -> None:
    class Half(BaseSpace):  # (most of BaseSpace left unwritten)
        name = "toy_half"

        def decisions(self) -> list[tuple[str, tuple[str, ...]]]:
            return []

    with pytest.raises(ConfigError, match=r"'toy_half' \(Half\) leaves methods of BaseSpace unwritten: build, "):
        register_space("toy_half")(Half)

    class NoSize(PlainCNN):
        name = "toy_no_size"

        def __init__(self) -> None:
            super().__init__()

    register_space("toy_no_size")(NoSize)
    with pytest.raises(ConfigError, match=r"cannot be built with \{'C': 8, 'N': 1\}.* must take them"):
        create_space("toy_no_size", C=8, N=1)
    with pytest.raises(ConfigError, match=r"unknown search space 'toy_nope'.* import the module that registers it"):
        create_space("toy_nope")
    # A definition run again (a notebook cell, a module reloaded) registers anew; another one is refused.
    register_space("toy_plaincnn")(PlainCNN)

    class PlainCNN2(PlainCNN):
        pass
    PlainCNN2.__qualname__ = PlainCNN.__qualname__
    register_space("toy_plaincnn")(PlainCNN2)
    assert isinstance(create_space("toy_plaincnn"), PlainCNN2)
    with pytest.raises(ConfigError, match="a search space named 'toy_plaincnn' is registered already"):
        register_space("toy_plaincnn")(NoSize)


def test_the_command_line_searches_shows_and_exports_a_plugins_space(tmp_path: Path) -> None:
    """--plugin MODULE (or BUDGETNAS_PLUGINS) imports a module that registers a space and a strategy;
    --space picks the space. Without the module, commands that need the space say how to load it."""
    import os
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]
    (tmp_path / "myplugin.py").write_text(
        "from budgetnas.spaces import register_space\nfrom budgetnas.strategies import register_proposer\n"
        "from tests.search.test_custom_space import MutateBest, PlainCNN\n"
        "register_space('toy_plaincnn')(PlainCNN)\nregister_proposer('toy_mutate_best')(MutateBest)\n")
    env = {**os.environ, "PYTHONPATH": str(root), "PYTHONUNBUFFERED": "1"}
    env.pop("BUDGETNAS_PLUGINS", None)

    def cli(*argv: str, **extra: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "budgetnas", *argv], cwd=tmp_path, env={**env, **extra},
                              capture_output=True, text=True, timeout=300)

    search = ["search", "--space", "toy_plaincnn", "--strategy", "toy_mutate_best", "--max-trials", "2",
              "--epochs", "1", "--final-epochs", "1", "--final-C", "8", "--final-N", "1", "--run-dir", "run", "--quiet"]
    done = cli("--plugin", "myplugin", *search)
    assert done.returncode == 0, done.stderr[-2000:]
    shown = cli("show", "run")  # (show reads the records: no plugin needed)
    assert shown.returncode == 0 and "space: toy_plaincnn" in shown.stdout, shown.stdout + shown.stderr
    refused = cli("export", "run", "m.onnx")
    assert refused.returncode == 2 and "unknown search space 'toy_plaincnn'" in refused.stderr
    assert "--plugin MODULE" in refused.stderr
    exported = cli("export", "run", "m.ts", BUDGETNAS_PLUGINS="myplugin")
    assert exported.returncode == 0 and (tmp_path / "m.ts").is_file(), exported.stderr[-2000:]
    again = cli("--plugin", "myplugin", *search)  # (resumes: the space is a setting of the run like any)
    assert again.returncode == 0 and "2/2 trials" in again.stdout + again.stderr, again.stderr[-2000:]
    missing = cli("--plugin", "nosuchplugin", "show", "run")
    assert missing.returncode == 2 and "cannot import plugin 'nosuchplugin'" in missing.stderr
    wrong = cli("--plugin", "myplugin", "finetune", "--from-bench", "t.csv", "--space", "toy_plaincnn", "--run-dir", "f")
    assert wrong.returncode == 2 and "finetune trains NAS-Bench-201's cells" in wrong.stderr, wrong.stderr
