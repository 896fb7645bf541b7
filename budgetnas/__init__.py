"""budgetnas: neural architecture search for people who pay for their own GPU time.

``import budgetnas`` stays light: the heavy parts load when first used.

Example::

    from budgetnas import ImageClassifier
    clf = ImageClassifier(max_trials=10, run_dir="runs/mine")
    clf.fit(x_train, y_train)
    clf.evaluate(x_test, y_test)
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "ImageClassifier": "budgetnas.api",
    "load_model": "budgetnas.api",
    "Search": "budgetnas.search",
    "SearchConfig": "budgetnas.search",
    "create_space": "budgetnas.spaces",
    "create_strategy": "budgetnas.strategies",
    "load_dataset": "budgetnas.data",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'budgetnas' has no attribute {name!r}")
