"""Search strategies (layer 3): what to try next.

The decision, taken once for every strategy: **a strategy is an Optuna sampler** (a
``optuna.samplers.BaseSampler``) over the space's named categorical decisions, and the search
drives Optuna through ask/tell. A sampler derives everything it knows from the trials stored in
the study, never from process memory, so resuming after a crash, many workers sharing one
PostgreSQL study, and heartbeats work the same for every strategy: TPE and GP come from Optuna,
random search too, and population-based ones (regularised evolution, REINFORCE, local search)
rebuild their population or policy from the stored trials on each ``sample``.

Those are written as small pure-Python **proposers** (``propose(space, history, rng)``) made
samplers by one adapter, :class:`ProposerSampler`; the simulated search runs the proposers
directly on a benchmark table, with no storage.

Strategies never see an ``nn.Module``: only decision values and scores.

Example::

    >>> from budgetnas.spaces.nb201 import NB201Space
    >>> sampler = create_strategy("reinforce", seed=0, space=NB201Space())
    >>> sorted(list_strategies())
    ['gp', 'local', 'random', 'rea', 'reinforce', 'tpe']
"""

from budgetnas.strategies._proposer import (
    PARTIAL_SCORE,
    BaseProposer,
    CategoricalSpace,
    ProposerSampler,
    RandomProposer,
    ReplayProposer,
    create_proposer,
    list_proposers,
    partial_score,
    proposal_index,
    register_proposer,
    step_rng,
)
from budgetnas.strategies._evolution import RegularizedEvolution
from budgetnas.strategies._local import LocalSearch
from budgetnas.strategies._reinforce import Reinforce
from budgetnas.strategies.base import (TrialSeeded, _register_proposers, check_strategy, create_strategy, list_strategies,
                                      register_strategy)

_register_proposers()

__all__ = [
    "PARTIAL_SCORE",
    "BaseProposer",
    "CategoricalSpace",
    "LocalSearch",
    "ProposerSampler",
    "RandomProposer",
    "RegularizedEvolution",
    "Reinforce",
    "ReplayProposer",
    "TrialSeeded",
    "check_strategy",
    "create_proposer",
    "create_strategy",
    "list_proposers",
    "list_strategies",
    "partial_score",
    "proposal_index",
    "register_proposer",
    "register_strategy",
    "step_rng",
]
