"""The search (layer 5): budgets, the cost ledger, trial records, pruning, resume."""

from budgetnas.search.budget import PRICE_PRESETS, Budget, CostModel, Spent
from budgetnas.search.config import SearchConfig
from budgetnas.search.pruning import Hyperband, SuccessiveHalving, create_pruner
from budgetnas.search.study import Search, SearchResult, open_study, saved_config

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
