"""Every strategy as an Optuna sampler driving real (in-memory) studies over NB201's decisions."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import optuna
import pytest

from budgetnas.errors import ConfigError
from budgetnas.spaces.nb201 import NB201_OPS, NB201Space
from budgetnas.strategies import (
    CategoricalSpace,
    ProposerSampler,
    Reinforce,
    create_proposer,
    create_strategy,
    list_proposers,
    list_strategies,
    step_rng,
)

optuna.logging.set_verbosity(optuna.logging.WARNING)
warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)

SPACE = NB201Space()
ALL = ["random", "tpe", "gp", "rea", "reinforce", "local"]
OURS = ["rea", "reinforce", "local"]          # proposers made samplers by ProposerSampler
# A separable objective: one weight per (edge, op). Deterministic, with one global optimum.
WEIGHTS = np.random.default_rng(1234).normal(size=(6, len(NB201_OPS)))


def score(arch: Sequence[str]) -> float:
    return float(sum(WEIGHTS[e, NB201_OPS.index(op)] for e, op in enumerate(arch)))


BEST = tuple(NB201_OPS[i] for i in WEIGHTS.argmax(axis=1))


def new_study(sampler: optuna.samplers.BaseSampler, directions: Sequence[str] = ("maximize",)) -> optuna.Study:
    return optuna.create_study(directions=list(directions), sampler=sampler,
                               storage=optuna.storages.InMemoryStorage())


def drive(study: optuna.Study, n: int, objective: Callable[[tuple[str, ...]], Any] = score) -> list[tuple[str, ...]]:
    """n ask/tell rounds the way budgetnas.search.study asks: suggest_categorical per decision."""
    archs = []
    for _ in range(n):
        trial = study.ask()
        arch = SPACE.from_decisions({name: trial.suggest_categorical(name, list(choices))
                                     for name, choices in SPACE.decisions()})
        study.tell(trial, objective(arch))
        archs.append(arch)
    return archs


def hamming(a: Sequence[str], b: Sequence[str]) -> int:
    return sum(x != y for x, y in zip(a, b))


# ------------------------------------------------------------------------------------------ registry
def test_every_strategy_is_registered_and_is_an_optuna_sampler() -> None:
    assert set(ALL) <= set(list_strategies())
    assert set(OURS) | {"random"} <= set(list_proposers())
    for name in ALL:
        assert isinstance(create_strategy(name, seed=0, space=SPACE), optuna.samplers.BaseSampler)
    assert isinstance(create_strategy("rea", seed=0, space=SPACE), ProposerSampler)


@pytest.mark.parametrize("kwargs, match", [
    (dict(name="rea", population=1), "population must be an integer >= 2"),
    (dict(name="rea", population=10, sample_size=11), "cannot exceed the population"),
    (dict(name="rea", sample_size=0), "sample_size must be an integer >= 1"),
    (dict(name="rea", population=2.5), "population must be an integer"),
    (dict(name="reinforce", lr=0), "lr must be a positive number"),
    (dict(name="reinforce", lr=float("nan")), "lr must be a positive number"),
    (dict(name="reinforce", momentum=1.0), r"momentum must be in \(0, 1\)"),
    # (a review, 2026-12-07: at 0 the baseline is the reward, every advantage 0: it never learnt)
    (dict(name="reinforce", momentum=0.0), r"momentum must be in \(0, 1\).*at 0 it is the reward itself"),
    (dict(name="rea", mutation_rate=0.5), "strategy 'rea' has no hyperparameter 'mutation_rate'; it takes population, sample_size"),
    (dict(name="tpe", population=3), "strategy 'tpe' has no hyperparameter 'population'; it takes n_startup_trials"),
    (dict(name="annealing"), "unknown strategy 'annealing'"),
    # Optuna took these and failed only at the first model-based trial (a bare TypeError) or ran
    # with a meaningless value: checked when the strategy is created.
    (dict(name="tpe", n_startup_trials="a"), "TPE n_startup_trials must be an integer >= 0, got 'a'"),
    (dict(name="tpe", n_startup_trials=2.5), "TPE n_startup_trials must be an integer >= 0"),
    (dict(name="gp", n_startup_trials=-1), "GP n_startup_trials must be an integer >= 0"),
    # The space every factory is given is no hyperparameter of the user's.
    (dict(name="random", space=SPACE, population=3), "takes no hyperparameters, got 'population';"),
])
def test_bad_arguments_raise_config_error(kwargs: dict[str, Any], match: str) -> None:
    name = kwargs.pop("name")
    with pytest.raises(ConfigError, match=match):
        create_strategy(name, seed=0, **kwargs)


def test_seed_must_be_an_integer() -> None:
    with pytest.raises(ConfigError, match="seed must be an integer"):
        create_strategy("rea", seed="0")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="seed must be an integer"):
        create_strategy("local", seed=None)  # type: ignore[arg-type]


# --------------------------------------------------------------------------------- determinism
@pytest.mark.parametrize("name", ALL)
def test_same_seed_same_proposals_other_seed_other_proposals(name: str) -> None:
    n, kw = (5, {"n_startup_trials": 2}) if name == "gp" else (30, {})  # GP fits a model per trial
    a = drive(new_study(create_strategy(name, seed=7, space=SPACE, **kw)), n)
    b = drive(new_study(create_strategy(name, seed=7, space=SPACE, **kw)), n)
    c = drive(new_study(create_strategy(name, seed=8, space=SPACE, **kw)), n)
    assert a == b
    assert a != c


@pytest.mark.parametrize("name", OURS)
def test_resume_with_a_new_sampler_continues_exactly(name: str) -> None:
    whole = drive(new_study(create_strategy(name, seed=3, space=SPACE)), 40)
    study = new_study(create_strategy(name, seed=3, space=SPACE))
    first = drive(study, 20)
    study.sampler = create_strategy(name, seed=3, space=SPACE)   # a new process: nothing in memory
    second = drive(study, 20)
    assert first + second == whole
    assert second != first           # it goes on, not back to the start of the search


def test_resume_from_sqlite_storage(tmp_path: Any) -> None:
    url = f"sqlite:///{tmp_path / 'study.db'}"
    whole = drive(new_study(create_strategy("rea", seed=5, space=SPACE)), 16)
    study = optuna.create_study(study_name="s", storage=url, direction="maximize",
                                sampler=create_strategy("rea", seed=5, space=SPACE))
    first = drive(study, 11)
    again = optuna.load_study(study_name="s", storage=url, sampler=create_strategy("rea", seed=5, space=SPACE))
    assert first + drive(again, 5) == whole


@pytest.mark.parametrize("name", OURS)
def test_two_workers_asking_at_once_draw_differently(name: str) -> None:
    study = new_study(create_strategy(name, seed=0, space=SPACE))
    drive(study, 12)
    other = optuna.load_study(study_name=study.study_name, storage=study._storage,
                              sampler=create_strategy(name, seed=0, space=SPACE))
    t1, t2 = study.ask(), other.ask()   # both pending: same history, different trial numbers
    a1 = SPACE.from_decisions({n: t1.suggest_categorical(n, list(c)) for n, c in SPACE.decisions()})
    a2 = SPACE.from_decisions({n: t2.suggest_categorical(n, list(c)) for n, c in SPACE.decisions()})
    assert (t1.number, t2.number) == (12, 13)
    assert a1 != a2


@pytest.mark.parametrize("name", OURS)
def test_the_fast_path_proposes_what_the_sampler_does(name: str) -> None:
    """The simulated search runs proposers without Optuna; it must match the sampler exactly."""
    via_optuna = drive(new_study(create_strategy(name, seed=11, space=SPACE)), 40)
    proposer, history = create_proposer(name), []
    for step in range(40):
        arch = proposer.propose(SPACE, history, step_rng(11, step))
        history.append((arch, score(arch)))
    assert [a for a, _ in history] == via_optuna


# -------------------------------------------------------------------------------- multi-objective
@pytest.mark.parametrize("name", ALL)
def test_works_in_a_multi_objective_study(name: str) -> None:
    n, kw = (4, {"n_startup_trials": 2}) if name == "gp" else (25, {})
    study = new_study(create_strategy(name, seed=0, space=SPACE, **kw), directions=("maximize", "minimize"))
    archs = drive(study, n, lambda a: (score(a), float(a.count("nor_conv_3x3"))))
    assert len(archs) == len([t for t in study.trials if t.state.name == "COMPLETE"])
    if name in OURS:   # the history the strategy learns from is the first objective
        sampler = study.sampler
        assert [s for _, s in sampler.history(study, SPACE)] == [t.values[0] for t in study.trials]


def test_a_minimised_first_objective_is_negated() -> None:
    sampler = create_strategy("rea", seed=0, space=SPACE)
    study = new_study(sampler, directions=("minimize",))
    drive(study, 5)
    assert [s for _, s in sampler.history(study, SPACE)] == [-t.value for t in study.trials]


def test_failed_trials_are_not_history() -> None:
    sampler = create_strategy("reinforce", seed=0, space=SPACE)
    study = new_study(sampler)
    drive(study, 3)
    t = study.ask()
    SPACE.from_decisions({n: t.suggest_categorical(n, list(c)) for n, c in SPACE.decisions()})
    study.tell(t, state=optuna.trial.TrialState.FAIL)
    drive(study, 2)
    assert len(sampler.history(study, SPACE)) == 5


@pytest.mark.parametrize("name", ["rea", "reinforce"])
def test_pruned_trials_are_history_at_the_score_they_had_when_stopped(name: str) -> None:
    # With Hyperband most trials are pruned: a population or a policy that never saw them learned
    # only from the survivors (and REA's aging stalled). A pruned trial counts at its last
    # reported value, or at the search's record of it (multi-objective studies report nothing).
    from budgetnas.strategies import PARTIAL_SCORE

    sampler = create_strategy(name, seed=0, space=SPACE)
    study = new_study(sampler)
    drive(study, 2)
    pruned = []
    for how in ("reported", "recorded", "nothing"):
        t = study.ask()
        arch = SPACE.from_decisions({n: t.suggest_categorical(n, list(c)) for n, c in SPACE.decisions()})
        if how == "reported":
            t.report(0.2, 1)
            t.report(0.25, 2)
        elif how == "recorded":
            t.set_user_attr(PARTIAL_SCORE, 0.3)
        study.tell(t, state=optuna.trial.TrialState.PRUNED)
        pruned.append(arch)
    drive(study, 1)
    history = sampler.history(study, SPACE)
    assert len(history) == 5  # a pruned trial with no score to read is left out
    assert history[2] == (pruned[0], 0.25) and history[3] == (pruned[1], 0.3)
    assert sampler.proposer.scores_pruned


def test_local_search_does_not_propose_a_failing_or_pruned_cell_again() -> None:
    # Local search never repeats a cell it has seen; a trial that failed (or was pruned) must count
    # as seen, or the walk proposes it again and again (each time paid for, and five failures in a
    # row stop a search).
    sampler = create_strategy("local", seed=0, space=SPACE)
    study = new_study(sampler)
    bad: set[tuple[str, ...]] = set()
    proposals = []
    for step in range(60):
        trial = study.ask()
        arch = SPACE.from_decisions({n: trial.suggest_categorical(n, list(c)) for n, c in SPACE.decisions()})
        proposals.append(arch)
        if step % 3 == 1:  # every third cell fails or is pruned
            bad.add(arch)
            study.tell(trial, state=optuna.trial.TrialState.FAIL if step % 2 else optuna.trial.TrialState.PRUNED)
        else:
            study.tell(trial, score(arch))
    assert len(bad) == 20 and len(set(proposals)) == len(proposals), "a cell was proposed twice"
    history = sampler.history(study, SPACE)
    assert sorted(a for a, s in history if s == -np.inf) == sorted(bad)
    # A trial closed without an evaluation (no budget for it, or its process stopped) is no failure.
    for status in ("unstarted", "interrupted"):
        trial = study.ask()
        SPACE.from_decisions({n: trial.suggest_categorical(n, list(c)) for n, c in SPACE.decisions()})
        trial.set_user_attr("status", status)
        study.tell(trial, state=optuna.trial.TrialState.FAIL)
    assert len(sampler.history(study, SPACE)) == len(history)
    # The other proposers learn from evaluations only.
    rea = create_strategy("rea", seed=0, space=SPACE)
    assert all(np.isfinite(s) for _, s in rea.history(study, SPACE))


# ------------------------------------------------------------------------------ each algorithm
def test_rea_children_are_one_edge_mutations_of_the_population() -> None:
    study = new_study(create_strategy("rea", seed=2, space=SPACE, population=10, sample_size=3))
    archs = drive(study, 60)
    for i in range(10, 60):
        population = archs[i - 10:i]   # aging: the last 10 evaluated
        assert any(hamming(archs[i], p) == 1 for p in population), i   # its parent


def test_rea_picks_the_tournament_winner() -> None:
    """With sample_size == population the tournament is won by the best of the population."""
    rea = create_proposer("rea", population=4, sample_size=4)
    history = [(("none",) * 6, 1.0), (("nor_conv_3x3",) * 6, 9.0), (("skip_connect",) * 6, 5.0),
               (("avg_pool_3x3",) * 6, 2.0)]
    for step in range(20):
        child = rea.propose(SPACE, history, step_rng(0, step))
        assert min(hamming(child, a) for a, _ in history) == 1
    # drawn with replacement, so the best is in the tournament 1 - (3/4)^4 = 68 % of the time
    wins = sum(hamming(rea.propose(SPACE, history, step_rng(1, s)), history[1][0]) == 1 for s in range(200))
    assert 0.6 * 200 < wins < 0.76 * 200


def test_reinforce_policy_moves_toward_rewarded_ops() -> None:
    rewarded = lambda a: 10.0 * a.count("nor_conv_3x3")  # noqa: E731
    sampler = create_strategy("reinforce", seed=0, space=SPACE)
    study = new_study(sampler)
    archs = drive(study, 150, rewarded)
    probs = sampler.proposer.probabilities(SPACE, sampler.history(study, SPACE))
    for edge, p in probs.items():
        assert p["nor_conv_3x3"] > 0.28, (edge, p)          # uniform is 0.2; lr 0.01 moves slowly
        assert p["nor_conv_3x3"] == max(p.values()), (edge, p)
    early = sum(a.count("nor_conv_3x3") for a in archs[:50])
    late = sum(a.count("nor_conv_3x3") for a in archs[-50:])
    assert late > 1.3 * early


def test_reinforce_replay_is_incremental_and_exact() -> None:
    history = [(SPACE.sample(step_rng(0, i)), float(i % 7)) for i in range(30)]
    grown = Reinforce()
    for n in range(1, 31):
        grown.state_for(SPACE, history[:n])
    fresh = Reinforce().state_for(SPACE, history)
    assert np.array_equal(grown.state_for(SPACE, history).logits, fresh.logits)
    other = [(a, -s) for a, s in history]   # a different history is replayed from scratch
    assert not np.array_equal(grown.state_for(SPACE, other).logits, fresh.logits)


def test_local_search_walks_neighbours_and_never_repeats() -> None:
    sampler = create_strategy("local", seed=4, space=SPACE)
    archs = drive(new_study(sampler), 150)
    assert len(set(archs)) == len(archs)                  # evaluated cells are skipped
    assert archs[1] in SPACE.neighbours(archs[0])         # the walk starts next to the start
    moves = sum(a in SPACE.neighbours(b) for b, a in zip(archs, archs[1:]))
    assert moves > 0  # consecutive proposals are often neighbours of each other
    # a separable objective has no local optimum but the global one: first-improvement finds it
    assert BEST in archs


def test_local_search_restarts_at_a_local_optimum() -> None:
    # Everything scores 0 but the start: the start is a local optimum once its 24 neighbours are seen.
    start = SPACE.sample(step_rng(9, 0))
    ls = create_proposer("local")
    history = [(start, 1.0)]
    for step in range(1, 26):
        arch = ls.propose(SPACE, history, step_rng(9, step))
        history.append((arch, 0.0))
    first24 = [a for a, _ in history[1:25]]
    assert sorted(first24) == sorted(SPACE.neighbours(start))
    assert history[25][0] not in SPACE.neighbours(start) and history[25][0] != start


# --------------------------------------------------------------------- without a space, other params
def test_without_a_space_the_decisions_come_from_the_study() -> None:
    sampler = create_strategy("rea", seed=1)            # as budgetnas.search.study creates it
    archs = drive(new_study(sampler), 40)
    for i in range(11, 40):                              # trial 0 was uniform (nothing known yet)
        assert any(hamming(archs[i], p) == 1 for p in archs[i - 10:i]), i
    assert drive(new_study(create_strategy("rea", seed=1)), 40) == archs


def test_parameters_outside_the_space_are_sampled_deterministically() -> None:
    def run() -> list[tuple[float, str]]:
        study = new_study(create_strategy("local", seed=0, space=SPACE))
        out = []
        for _ in range(5):
            t = study.ask()
            drive_arch = SPACE.from_decisions({n: t.suggest_categorical(n, list(c)) for n, c in SPACE.decisions()})
            lr = t.suggest_float("lr", 1e-4, 1e-1, log=True)
            opt = t.suggest_categorical("optimizer", ["sgd", "adam"])
            study.tell(t, score(drive_arch))
            out.append((lr, opt))
        return out

    a = run()
    assert a == run()
    assert all(1e-4 <= lr <= 1e-1 for lr, _ in a)


def test_categorical_space_behaves_like_the_space_api() -> None:
    s = CategoricalSpace([("a", (1, 2, 3)), ("b", ("x",)), ("c", ("p", "q"))])
    rng = step_rng(0, 0)
    arch = s.sample(rng)
    assert s.from_decisions(s.to_decisions(arch)) == arch
    assert len(s.neighbours(arch)) == 2 + 0 + 1
    for _ in range(20):
        assert hamming(s.mutate(arch, rng), arch) == 1   # never the one-choice decision
    with pytest.raises(ConfigError):
        CategoricalSpace([("a", ())])


# The real table, driven as the search drives a study: each strategy's best cell after BUDGET
# trials, averaged over SEEDS, against random search's on the same budget and seeds. Table lookups:
# about 0.05 s per run of 100 trials. Measured on CIFAR-100 (2026-12-07, seeds 0-9, mean best
# accuracy %): random 71.61 (Optuna's) and 71.62 (the random proposer), REA 72.62, local search
# 73.29, REINFORCE 71.56 at its default lr 0.01 and 72.65 at lr 0.1. At lr 0.01 (NATS-Bench's
# setting) REINFORCE's best is random's at 100 trials, and at 200 and 300 too (72.15 vs 72.08 and
# 72.00; 72.47 vs 72.25 and 72.51): its policy learns (its late proposals score higher than random
# ones) but too slowly to find better cells in these budgets. So its best is compared at lr 0.1.
BUDGET, SEEDS = 100, range(10)
BEATS_RANDOM = {"rea": {}, "local": {}, "reinforce": {"lr": 0.1}}


def _real_table_lookup() -> Callable[[tuple[str, ...]], float]:
    from tests.conftest import NB201_CSV

    if not NB201_CSV.exists():
        pytest.skip("shared NB201 table not present")
    from budgetnas.bench import load_nb201

    table = load_nb201(NB201_CSV)
    col = table.column("cifar100")
    return lambda a: float(col[table.index(a)])


def _scores(sampler: optuna.samplers.BaseSampler, lookup: Callable[[tuple[str, ...]], float]) -> list[float]:
    return [lookup(a) for a in drive(new_study(sampler), BUDGET, lookup)]


@pytest.fixture(scope="module")
def random_on_the_table() -> dict[str, Any]:
    """Random search on the real table: Optuna's, and the random proposer through the same adapter
    and per-trial generators as ours (a strategy that only sampled at random would tie it exactly)."""
    lookup = _real_table_lookup()
    runs = {"optuna": [_scores(create_strategy("random", seed=s, space=SPACE), lookup) for s in SEEDS],
            "proposer": [_scores(ProposerSampler(create_proposer("random"), seed=s, space=SPACE), lookup)
                         for s in SEEDS]}
    return {"lookup": lookup, "runs": runs}


@pytest.mark.parametrize("name", OURS)
def test_strategies_run_on_the_real_table_and_improve(name: str, random_on_the_table) -> None:
    """Each of our strategies finds better cells than random search with the same budget (mean
    best over seeds), and improves on its own first proposals. (Improving on its first 10 alone
    passed with REA, REINFORCE and local search replaced by random sampling.)"""
    lookup = random_on_the_table["lookup"]
    runs = [_scores(create_strategy(name, seed=s, space=SPACE, **BEATS_RANDOM[name]), lookup) for s in SEEDS]
    mean_best = np.mean([max(r) for r in runs])
    for which, random_runs in random_on_the_table["runs"].items():
        random_best = np.mean([max(r) for r in random_runs])
        assert mean_best > random_best + 0.5, (name, which, mean_best, random_best)  # (a point measured)
    for scores in runs:
        assert max(scores) > max(scores[:10])


def test_reinforce_at_its_default_rate_learns_on_the_real_table(random_on_the_table) -> None:
    """At its default lr (0.01) REINFORCE's policy moves towards good cells: its last quarter of
    proposals scores higher on average than random search's (63.0 vs 61.0 % measured), though its
    best cell is no better than random's at this budget (see BEATS_RANDOM)."""
    lookup = random_on_the_table["lookup"]

    def late(runs: list[list[float]]) -> float:
        return float(np.mean([np.mean(r[-BUDGET // 4:]) for r in runs]))

    ours = late([_scores(create_strategy("reinforce", seed=s, space=SPACE), lookup) for s in SEEDS])
    for which, random_runs in random_on_the_table["runs"].items():
        assert ours > late(random_runs) + 1.0, (which, ours, late(random_runs))
