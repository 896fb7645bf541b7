"""REINFORCE: a learned softmax policy over each decision (Williams 1992; Zoph & Le, ICLR 2017).

As in the NAS-Bench-201 / NATS-Bench baseline (AutoDL-Projects ``exps/NAS-Bench-201-algos/
reinforce.py``, ``exps/NATS-algos/reinforce.py``): one logit per (decision, choice), an
architecture is one independent draw per decision from ``softmax(logits)``, and after each
evaluation the loss ``-(reward - baseline) * sum log p(choice)`` takes one Adam step, where the
baseline is a bias-corrected exponential moving average of the rewards that already includes the
current one (AutoDL updates the baseline before computing the advantage; so the first step has
advantage 0).

Here the policy is not kept in memory between proposals: it is the result of replaying those
updates over the history in order (numpy, a few microseconds per step; incremental when the
history only grew), so it is a pure function of the history and resumes exactly. The history may
contain architectures the policy did not sample (enqueued or cached trials): they are used as if
sampled, the usual off-policy shortcut.

Defaults and their sources:

* ``lr=0.01``: NATS-Bench's commands for the topology space (header of
  ``exps/NATS-algos/reinforce.py``: ``--learning_rate 0.01``). NAS-Bench-201's README runs
  ``REINFORCE.sh 0.5`` after a sweep over 0.01-0.5 (``hps/GRID-RL.sh``), and ``REINFORCE.sh``'s
  usage line shows 0.001; the benchmark in ``benchmarks/RESULTS.md`` reports the effect.
* ``momentum=0.9`` (``--EMA_momentum 0.9`` in both), Adam with torch's defaults
  (betas 0.9/0.999, eps 1e-8).
* logits start at 0 (AutoDL: ``1e-3 * randn``, a negligible symmetry breaker dropped so the
  state depends on the history alone).

Example::

    >>> from budgetnas.spaces.nb201 import NB201Space
    >>> from budgetnas.strategies import step_rng
    >>> space, rl = NB201Space(), Reinforce(lr=0.1)
    >>> history = [(("nor_conv_3x3",) * 6, 90.0), (("none",) * 6, 10.0)] * 20
    >>> p = rl.probabilities(space, history)
    >>> p["edge_1_0"]["nor_conv_3x3"] > 0.5 > p["edge_1_0"]["none"]
    True
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from budgetnas.errors import ConfigError
from budgetnas.strategies._proposer import Arch, History, ProposalSpace, ReplayProposer, register_proposer

_BETA1, _BETA2, _EPS = 0.9, 0.999, 1e-8  # torch.optim.Adam defaults, as in AutoDL


@dataclass
class _Policy:
    names: list[str]
    choices: list[tuple[Any, ...]]
    index: list[dict[Any, int]]
    counts: np.ndarray          # (D,) number of choices per decision
    neg_mask: np.ndarray        # (D, K) 0 for real choices, -inf for padding
    logits: np.ndarray          # (D, K)
    m: np.ndarray
    v: np.ndarray
    steps: int = 0
    num: float = 0.0            # EMA numerator / denominator (AutoDL's ExponentialMovingAverage)
    den: float = 0.0

    def probs(self) -> np.ndarray:
        z = self.logits + self.neg_mask
        z = z - z.max(axis=1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)


@register_proposer("reinforce")
class Reinforce(ReplayProposer[_Policy]):
    """Policy-gradient search with a moving-average baseline (see the module doc)."""

    name = "reinforce"

    def __init__(self, lr: float = 0.01, momentum: float = 0.9) -> None:
        super().__init__()
        if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not math.isfinite(lr) or lr <= 0:
            raise ConfigError(f"REINFORCE lr must be a positive number, got {lr!r} (NATS-Bench used 0.01)")
        if (isinstance(momentum, bool) or not isinstance(momentum, (int, float))
                or not 0.0 < momentum < 1.0):
            # (0 made the baseline the reward itself, which it takes in before the advantage is read:
            # every advantage 0, a controller that never learns: a review, 2026-12-07)
            raise ConfigError(f"REINFORCE momentum must be in (0, 1), got {momentum!r} (NB201 used 0.9): "
                              "the baseline is a moving average of the rewards, and at 0 it is the reward itself")
        self.lr = float(lr)
        self.momentum = float(momentum)

    def params(self) -> dict[str, Any]:
        return {"lr": self.lr, "momentum": self.momentum}

    def initial_state(self, space: ProposalSpace) -> _Policy:
        decisions = space.decisions()
        counts = np.array([len(c) for _, c in decisions])
        k = int(counts.max())
        neg_mask = np.where(np.arange(k)[None, :] < counts[:, None], 0.0, -np.inf)
        zeros = np.zeros((len(decisions), k))
        return _Policy(names=[n for n, _ in decisions], choices=[tuple(c) for _, c in decisions],
                       index=[{v: i for i, v in enumerate(c)} for _, c in decisions], counts=counts,
                       neg_mask=neg_mask, logits=zeros.copy(), m=zeros.copy(), v=zeros.copy())

    def observe(self, space: ProposalSpace, state: _Policy, arch: Arch, score: float) -> None:
        values = space.to_decisions(arch)
        actions = [idx[values[n]] for idx, n in zip(state.index, state.names)]
        mom = self.momentum
        state.num = mom * state.num + (1 - mom) * score
        state.den = mom * state.den + (1 - mom)
        advantage = score - state.num / state.den
        # d/dlogits of -advantage * log p(action) = advantage * (p - onehot(action))
        grad = state.probs()
        grad[np.arange(len(actions)), actions] -= 1.0
        grad *= advantage
        state.steps += 1
        state.m = _BETA1 * state.m + (1 - _BETA1) * grad
        state.v = _BETA2 * state.v + (1 - _BETA2) * grad * grad
        bc1, bc2 = 1 - _BETA1 ** state.steps, 1 - _BETA2 ** state.steps
        state.logits = state.logits - (self.lr / bc1) * state.m / (np.sqrt(state.v / bc2) + _EPS)

    def propose_from(self, space: ProposalSpace, state: _Policy, history: History,
                     rng: np.random.Generator) -> Arch:
        cdf = np.cumsum(state.probs(), axis=1)
        u = rng.random(len(state.names))
        picks = np.minimum((cdf < u[:, None]).sum(axis=1), state.counts - 1)
        return space.from_decisions({n: c[i] for n, c, i in zip(state.names, state.choices, picks)})

    def probabilities(self, space: ProposalSpace, history: History) -> dict[str, dict[Any, float]]:
        """The policy after ``history``: for each decision, the probability of each choice."""
        state = self.state_for(space, history)
        p = state.probs()
        return {n: {c: float(p[d, i]) for i, c in enumerate(cs)}
                for d, (n, cs) in enumerate(zip(state.names, state.choices))}
