"""The pruners on their own: rungs, the top-1/eta rule, and Hyperband's brackets."""

from __future__ import annotations

from collections import Counter

import pytest

from budgetnas.errors import ConfigError
from budgetnas.search.pruning import BasePruner, Hyperband, SuccessiveHalving, create_pruner, pruner_note


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


@pytest.mark.parametrize("epochs, rungs", [(4, [1]), (8, [1, 3]), (10, [1, 3]), (17, [1, 3, 9]), (20, [2, 6]),
                                           (27, [3, 9]), (50, [5, 15]), (100, [11, 33])])
def test_sha_rungs_leave_a_third_of_the_training_to_save(epochs, rungs) -> None:
    """(review C, 2026-12-07) A rung at 9 of 10 epochs, 45 of 50 or 99 of 100 cut a third of the
    trials that reached it, all but fully paid for, to save 1 to 10 % of their training; and a cell
    pruned there can never be the final model."""
    sha = create_pruner("sha", max_epochs=epochs)
    assert [e for e in range(1, epochs) if sha.is_rung(e)] == rungs
    peers = {i: [0.9] * epochs for i in range(5)}
    assert not sha.should_stop(9, epochs - 1, [0.0] * (epochs - 1), peers)  # (a rung no more)
    assert sha.should_stop(9, rungs[-1], [0.0] * rungs[-1], peers)


def test_hyperband_brackets_get_trials_in_li_et_al_proportions() -> None:
    hb = Hyperband(max_epochs=9, eta=3)
    # Li et al. 2018, R = 9, eta = 3: brackets start at 1, 3 and 9 epochs; the last never prunes
    assert [sorted(b.rungs) for b in hb.brackets] == [[1, 3], [3], []]
    assert hb.sizes == [9, 5, 3]
    counts = Counter(hb.bracket_of(i) for i in range(17 * 4))
    assert [counts[b] for b in range(3)] == [36, 20, 12]
    assert len({hb.bracket_of(i) for i in range(4)}) == 3  # interleaved: every bracket early on
    assert [hb.bracket_of(i) for i in range(17)] == [hb.bracket_of(i + 17) for i in range(17)]
    assert Hyperband(max_epochs=27, eta=3).sizes == [27, 12, 6, 4]
    assert Hyperband(max_epochs=2, eta=3).sizes == [1]  # s_max = 0: one bracket, which never prunes


@pytest.mark.parametrize("epochs, rungs", [(8, [[3], []]), (10, [[1, 3], [3], []]), (27, [[1, 3, 9], [3, 9], [9], []]),
                                           (2, [[]]), (4, [[1], []])])
def test_hyperband_brackets_start_at_r_over_eta_powers_and_one_never_prunes(epochs, rungs) -> None:
    """Bracket s starts at R * eta**-s (rounded): at the default --epochs 8 the patient bracket
    trains to the end (a review found every bracket pruning there, 2026-12-06)."""
    hb = Hyperband(max_epochs=epochs, eta=3)
    assert [sorted(b.rungs) for b in hb.brackets] == rungs
    patient = next(i for i in range(50) if hb.bracket_of(i) == len(rungs) - 1)
    peers = {i: [0.9] * epochs for i in range(50) if hb.bracket_of(i) == len(rungs) - 1 and i != patient}
    assert not any(hb.should_stop(patient, e, [0.0] * e, peers) for e in range(1, epochs + 1))


def test_pruner_note_says_when_a_pruner_can_stop_nothing() -> None:
    assert "--epochs 2 or more" in pruner_note(create_pruner("sha", max_epochs=1), 1)
    assert pruner_note(create_pruner("sha", max_epochs=2), 2) is None
    assert "--epochs 3 or more" in pruner_note(create_pruner("hyperband", max_epochs=2), 2)
    assert pruner_note(create_pruner("hyperband", max_epochs=3), 3) is None
    assert pruner_note(create_pruner("none", max_epochs=1), 1) is None


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


def test_a_multi_objective_rung_keeps_the_front_not_just_the_most_accurate() -> None:
    """With (accuracy, -params) a rung ranks by non-dominated sorting (MO-ASHA): the smallest cell,
    on the front whatever its accuracy, goes on; a review saw it pruned for accuracy alone."""
    sha = SuccessiveHalving(min_epochs=1, eta=3)
    big = {i: [(0.9 - 0.01 * i, -400_000.0)] for i in range(5)}
    assert not sha.should_stop(9, 1, [(0.15, -100_000.0)], big)  # alone at its size: on the front
    assert sha.should_stop(9, 1, [(0.15, -500_000.0)], big)  # dominated by all: cut
    # Within the front, its two ends go on first (crowding distance, as NSGA-II): six on the front,
    # keep = 6 // 3 = 2, the most accurate and the smallest.
    front = {i: [(0.5 + 0.1 * i, -100_000.0 * (i + 1))] for i in range(5)}
    assert not sha.should_stop(9, 1, [(0.95, -600_000.0)], front)
    assert not sha.should_stop(9, 1, [(0.45, -50_000.0)], front)
    assert sha.should_stop(9, 1, [(0.55, -150_000.0)], front)  # in the middle of the front
    # A rung of four keeps one, but the smallest cell, an end of the front, goes on beside it.
    assert not sha.should_stop(9, 1, [(0.1, -1.0)], {0: [(0.9, -100.0)], 1: [(0.8, -90.0)], 2: [(0.85, -95.0)]})
    # one objective: the plain top-1/eta rule, as before
    assert sha.should_stop(9, 1, [0.15], {i: [v[0][0]] for i, v in big.items()})
