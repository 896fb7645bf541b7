"""The pruners on their own: rungs, the top-1/eta rule, and Hyperband's brackets."""

from __future__ import annotations

from collections import Counter

import pytest

from budgetnas.errors import ConfigError
from budgetnas.search.pruning import BasePruner, Hyperband, SuccessiveHalving, create_pruner


def test_successive_halving_keeps_the_top_third_at_each_rung() -> None:
    sha = SuccessiveHalving(min_epochs=1, eta=3)
    assert [e for e in range(1, 28) if sha.is_rung(e)] == [1, 3, 9, 27]
    peers = {0: [0.9, 0.9, 0.9], 1: [0.5, 0.5, 0.5], 2: [0.4, 0.4, 0.4]}
    # 4 values at the rung, keep max(1, 4 // 3) = 1: only the best goes on
    assert sha.should_stop(3, 1, [0.6], peers)
    assert not sha.should_stop(3, 1, [0.95], peers)
    assert not sha.should_stop(3, 2, [0.6, 0.1], peers)  # epoch 2 is no rung
    # fewer than eta peers at a rung: no decision yet
    assert not sha.should_stop(3, 1, [0.0], {0: [0.9], 1: [0.8]})
    # a tie with the cut-off value goes on
    assert not sha.should_stop(3, 1, [0.9], peers)
    with pytest.raises(ConfigError):
        SuccessiveHalving(min_epochs=0)
    with pytest.raises(ConfigError):
        SuccessiveHalving(eta=1)


def test_hyperband_brackets_get_trials_in_li_et_al_proportions() -> None:
    hb = Hyperband(max_epochs=9, eta=3)
    assert [b.min_epochs for b in hb.brackets] == [1, 3, 9]
    assert hb.sizes == [9, 5, 3]  # Li et al. 2018, R = 9, eta = 3
    counts = Counter(hb.bracket_of(i) for i in range(17 * 4))
    assert [counts[b] for b in range(3)] == [36, 20, 12]
    assert len({hb.bracket_of(i) for i in range(4)}) == 3  # interleaved: every bracket early on
    assert [hb.bracket_of(i) for i in range(17)] == [hb.bracket_of(i + 17) for i in range(17)]
    assert Hyperband(max_epochs=27, eta=3).sizes == [27, 12, 6, 4]
    assert Hyperband(max_epochs=2, eta=3).sizes == [1]  # one bracket: plain successive halving


def test_hyperband_compares_a_trial_only_with_its_own_bracket() -> None:
    hb = Hyperband(max_epochs=9, eta=3)
    aggressive = [i for i in range(40) if hb.bracket_of(i) == 0]
    patient = [i for i in range(40) if hb.bracket_of(i) == 2]
    me, others = aggressive[-1], {i: [0.9] * 3 for i in aggressive[:-1]}
    assert hb.should_stop(me, 1, [0.1], others)  # bracket 0 prunes after epoch 1
    # the same weak curve in the bracket that never prunes before 9 epochs goes on
    me = patient[-1]
    assert not hb.should_stop(me, 1, [0.1], {i: [0.9] * 3 for i in patient[:-1]})
    # peers of other brackets do not count: alone in its bracket, a trial is never pruned
    assert not hb.should_stop(aggressive[0], 1, [0.1], {i: [0.9] for i in patient})


def test_create_pruner_names() -> None:
    assert type(create_pruner(None, max_epochs=5)) is BasePruner
    assert isinstance(create_pruner("asha", max_epochs=27), SuccessiveHalving)
    assert create_pruner("sha", max_epochs=27).min_epochs == 3
    assert isinstance(create_pruner("hyperband", max_epochs=9), Hyperband)
    with pytest.raises(ConfigError, match="unknown pruner 'median'"):
        create_pruner("median", max_epochs=9)
