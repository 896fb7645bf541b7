"""The search (layer 5): budgets, the cost ledger, trial records, pruning, resume.

The names below load with their module when first used: ``budgetnas --help``, a mistyped flag and
``budgetnas bench`` read ``budgetnas.search.simulate`` or ``.config`` without the study module,
which imports PyTorch and Optuna (3-4 s on a 2-core CPU)."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_MODULE_OF = {
    "PRICE_PRESETS": "budget",
    "Budget": "budget",
    "CostModel": "budget",
    "Spent": "budget",
    "SearchConfig": "config",
    "Hyperband": "pruning",
    "SuccessiveHalving": "pruning",
    "create_pruner": "pruning",
    "Search": "study",
    "SearchResult": "study",
    "open_study": "study",
    "saved_config": "study",
}

__all__ = [
    "PRICE_PRESETS",
    "Budget",
    "CostModel",
    "Hyperband",
    "Search",
    "SearchConfig",
    "SearchResult",
    "Spent",
    "SuccessiveHalving",
    "create_pruner",
    "open_study",
    "saved_config",
]


def __getattr__(name: str) -> Any:
    if name not in _MODULE_OF:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_MODULE_OF[name]}"), name)
    globals()[name] = value  # (once: later reads do not come here)
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_MODULE_OF})


if TYPE_CHECKING:
    from budgetnas.search.budget import PRICE_PRESETS, Budget, CostModel, Spent
    from budgetnas.search.config import SearchConfig
    from budgetnas.search.pruning import Hyperband, SuccessiveHalving, create_pruner
    from budgetnas.search.study import Search, SearchResult, open_study, saved_config
