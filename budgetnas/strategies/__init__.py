"""Search strategies (layer 3): what to try next.

The decision, taken once for every strategy: **a strategy is an Optuna sampler** (a
``optuna.samplers.BaseSampler``) over the space's named categorical decisions, and the search
drives Optuna through ask/tell. A sampler derives everything it knows from the trials stored in
the study, never from process memory, so resuming after a crash, many workers sharing one
PostgreSQL study, and heartbeats work the same for every strategy: TPE and GP come from Optuna,
random search too, and population-based ones (regularised evolution, REINFORCE, local search)
rebuild their population or policy from the stored trials on each ``sample``.

Strategies never see an ``nn.Module``: only decision values and scores.
"""

from budgetnas.strategies.base import create_strategy, list_strategies, register_strategy

__all__ = ["create_strategy", "list_strategies", "register_strategy"]
