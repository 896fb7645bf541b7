"""Shared fixtures: tiny real data (scikit-learn's 8x8 digits) and GPU skipping."""

from __future__ import annotations

import gc
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
NB201_CSV = SHARED / "data" / "nb201" / "nats_tss_200ep_test.csv"

torch.set_num_threads(min(2, os.cpu_count() or 1))


@pytest.fixture(autouse=True, scope="session")
def _a_cache_of_the_tests_own(tmp_path_factory: pytest.TempPathFactory):
    """Archives are extracted, and image folders' decoded arrays kept, under $BUDGETNAS_CACHE: the
    tests' go to a folder of their own (which their subprocesses inherit), not ~/.cache."""
    saved = os.environ.get("BUDGETNAS_CACHE")
    os.environ["BUDGETNAS_CACHE"] = str(tmp_path_factory.mktemp("budgetnas-cache"))
    yield
    if saved is None:
        os.environ.pop("BUDGETNAS_CACHE", None)
    else:
        os.environ["BUDGETNAS_CACHE"] = saved


@pytest.fixture(autouse=True)
def _no_claims_left_over_from_earlier_tests():
    """The ledger's registry of claims this process's ended sessions left open (taken back at
    once by this process's next session) starts empty in each test: a test that simulates a
    killed worker in-process would otherwise recover its trial as this process's own."""
    from budgetnas.search import ledger

    with ledger._ENDED_LOCK:
        ledger._ENDED.clear()
    yield


@pytest.fixture(autouse=True)
def _no_search_process_outlives_its_test(monkeypatch: pytest.MonkeyPatch):
    """A `budgetnas` process a test started and did not end (the test failed before it killed or
    waited for it) is killed when the test ends: left running, one such search took a CPU core
    from every later test, and on a 2-core machine their timing tests failed in a cascade."""
    started: list[subprocess.Popen] = []
    real = subprocess.Popen

    class Tracked(real):  # type: ignore[misc, valid-type]
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            if "budgetnas" in " ".join(map(str, self.args if isinstance(self.args, (list, tuple)) else [self.args])):
                started.append(self)

    monkeypatch.setattr(subprocess, "Popen", Tracked)
    yield
    for proc in started:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=60)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def digits() -> tuple[np.ndarray, np.ndarray]:
    """1,797 real 8x8 handwritten digits as uint8 (N, 8, 8) and int labels."""
    from sklearn.datasets import load_digits

    d = load_digits()
    return (d.images * (255 / 16)).round().astype(np.uint8), d.target.astype(np.int64)


def cuda_allocated() -> int:
    """Bytes the caching allocator holds for live tensors, after freeing what is only cached.

    cuBLAS keeps a workspace per (handle, stream), allocated through PyTorch's allocator (32 MiB
    each on Hopper); it is a cache, not a leak, so it is cleared before reading, as PyTorch's own
    leak checks do (``torch.testing._internal.common_utils``).
    """
    gc.collect()
    torch.cuda.synchronize()
    clear = getattr(torch._C, "_cuda_clearCublasWorkspaces", None)
    if clear is not None:
        clear()
    return torch.cuda.memory_allocated()


@pytest.fixture
def own_registries(monkeypatch: pytest.MonkeyPatch) -> None:
    """The space, strategy and proposer registries as copies for the test: what it registers
    (a plugin's space or strategy) is gone after it."""
    import budgetnas.spaces.base as spaces_base
    import budgetnas.strategies._proposer as proposer_mod
    import budgetnas.strategies.base as strategies_base

    monkeypatch.setattr(spaces_base, "_SPACES", dict(spaces_base._SPACES))
    monkeypatch.setattr(strategies_base, "_STRATEGIES", dict(strategies_base._STRATEGIES))
    monkeypatch.setattr(proposer_mod, "_PROPOSERS", dict(proposer_mod._PROPOSERS))

