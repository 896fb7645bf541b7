"""Prices, budget limits and the cost forecast: the arithmetic every stop decision rests on."""

from __future__ import annotations

import math

import pytest

from budgetnas.errors import ConfigError
from budgetnas.search.budget import PRICE_PRESETS, Budget, CostModel, Spent, price_for


def test_a_given_price_wins_and_bad_prices_are_refused() -> None:
    with pytest.warns(UserWarning, match=r"both a price \(1.25/h\) and a preset \(h100\).*the price is used"):
        assert price_for("h100", 1.25, "NVIDIA H100 80GB HBM3") == (1.25, "given")
    for bad in (-1.0, math.nan, math.inf):
        with pytest.raises(ConfigError, match="price per device-hour must be a non-negative number"):
            price_for(None, bad, "cpu")


def test_presets_by_name_and_unknown_presets_list_the_choices() -> None:
    assert price_for("T4", None, "cpu") == (PRICE_PRESETS["t4"], "preset t4")
    with pytest.raises(ConfigError, match=r"unknown price preset 'rtx9090'.*h200.*--gpu-price"):
        price_for("rtx9090", None, "cpu")


@pytest.mark.parametrize("name, key", [
    ("NVIDIA H200", "h200"),  # not the H100's price: "h100" is not in "h200", and h200 comes first
    ("NVIDIA H100 80GB HBM3", "h100"),
    ("NVIDIA A100-SXM4-40GB", "a100"),
    ("Tesla V100-SXM2-16GB", "v100"),
    ("Tesla T4", "t4"),
])
def test_known_gpus_are_priced_from_their_name(name: str, key: str) -> None:
    price, source = price_for(None, None, name)
    assert price == PRICE_PRESETS[key] and source == f"preset {key} (detected {name})"


def test_an_unknown_device_has_no_price_and_a_dollar_budget_then_needs_one() -> None:
    assert price_for(None, None, "cpu") == (PRICE_PRESETS["cpu"], "preset cpu")
    price, source = price_for(None, None, "NVIDIA L4")
    assert price == 0.0 and "give --gpu-price" in source
    with pytest.raises(ConfigError, match="a dollar budget needs a price"):
        Budget(max_cost=5.0, price_per_hour=price)
    Budget(max_trials=3, price_per_hour=price)  # other limits need no price


@pytest.mark.parametrize("kw, message", [
    ({}, "give at least one budget"),
    ({"max_trials": 0}, "max_trials must be a positive integer"),
    ({"max_trials": 2.5}, "max_trials must be a positive integer"),
    ({"max_trials": 10**30}, "max_trials must be at most 1,000,000,000"),
    ({"max_time": -5.0}, "max_time must be a positive number"),
    ({"max_device_hours": math.nan}, "max_device_hours must be a positive number"),
    ({"max_cost": math.inf, "price_per_hour": 1.0}, "max_cost must be a positive number"),
])
def test_impossible_budgets_are_refused(kw: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Budget(**kw)


def test_stop_reasons_name_the_limit_that_stops_the_next_trial() -> None:
    b = Budget(max_trials=10, max_time=600.0, max_device_hours=0.1, max_cost=0.2, price_per_hour=3.6)
    # 0.1 device-h = 360 s; $0.20 at $3.60/h = 200 s: the dollar limit binds first.
    assert b.cost_of(3600) == pytest.approx(3.6)
    assert b.device_seconds_left(Spent(device_seconds=50, cost=b.cost_of(50))) == pytest.approx(150)
    assert b.stop_reason(Spent(trials=3, device_seconds=50, cost=b.cost_of(50), wall_seconds=60), 100, 100) is None
    reason = b.stop_reason(Spent(trials=3, device_seconds=150, cost=b.cost_of(150), wall_seconds=160), 60, 60)
    assert reason.startswith("dollar budget: the next trial is forecast to need 60 device-s but only 50 remain")
    # Both limits set, the device-hours binding: the message names that one, not the dollars.
    both = Budget(max_device_hours=0.01, max_cost=100.0, price_per_hour=3.6)  # 36 s vs 100,000 s
    assert both.stop_reason(Spent(device_seconds=30, cost=both.cost_of(30)), 10, 10).startswith(
        "device-hour budget: the next trial is forecast to need 10 device-s but only 6 remain")
    # Small numbers keep their digits instead of rounding to "0.0".
    tiny = Budget(max_device_hours=0.01).stop_reason(Spent(device_seconds=35.99), 0.042, 0.042)
    assert "need 0.042 device-s but only 0.01 remain" in tiny
    assert b.stop_reason(Spent(trials=10), 1, 1) == "trial budget reached (10/10 trials)"
    late = b.stop_reason(Spent(trials=3, wall_seconds=590), 1, 20)
    assert late.startswith("time budget: 590 s of 600 s used")
    hours = Budget(max_device_hours=0.01)  # 36 s
    assert hours.stop_reason(Spent(device_seconds=30), 10, 10).startswith("device-hour budget")
    assert hours.describe() == "0.01 device-h" and b.describe() == "10 trials, 600 s wall, 0.1 device-h, $0.20"


def test_the_cost_model_scales_by_work_and_never_forecasts_below_what_it_saw() -> None:
    m = CostModel()
    assert m.forecast(1000, 5e6) == 0.0  # nothing measured: the caller probes first
    m.add(1000, 5e6, 10.0)
    assert m.forecast(2000, 5e6) == pytest.approx(20.0)  # twice the images
    assert m.forecast(1000, 10e6) == pytest.approx(20.0)  # twice the compute per image
    m.add(1000, 0, 0.0)  # a zero-second or failed measurement is ignored
    m.add(1000, 5e6, math.nan)
    assert len(m) == 1
    # Seconds = 2e-9 * work + 1e-3 * samples, measured exactly on three networks: the fit recovers it.
    fit = CostModel()
    for samples, macs in ((1000, 1e6), (2000, 4e6), (500, 9e6)):
        fit.add(samples, macs, 2e-9 * samples * macs + 1e-3 * samples)
    assert fit.forecast(3000, 2e6) == pytest.approx(2e-9 * 3000 * 2e6 + 1e-3 * 3000, rel=1e-6)
    # A tiny network costs at least the cheapest measured seconds per image (overheads remain).
    assert fit.forecast(1000, 0) >= min(1e-3 + 2e-9 * m for m in (1e6, 4e6, 9e6)) * 1000 - 1e-9


def test_the_cost_model_never_forecasts_a_dearer_cell_below_a_lighter_one_measured() -> None:
    """Seen in CI: cells that span little compute, with noise, made the fit clip its compute term
    to 0 and forecast a cell of 4x the MACs as cheap as the others (0.32 s vs 0.34 s measured)."""
    m = CostModel()
    for macs, seconds in ((1.0e6, 0.34), (1.1e6, 0.31), (1.2e6, 0.33), (1.05e6, 0.30)):
        m.add(1000, macs, seconds)
    dear = m.forecast(1000, 4.4e6)
    assert dear >= 0.34  # at least what the dearest lighter cell cost per image
    assert m.forecast(2000, 4.4e6) == pytest.approx(2 * dear)
    assert m.forecast(1000, 1.0e6) >= 0.30  # the cheapest floor still holds



def test_the_binding_limit_is_the_one_with_least_left() -> None:
    b = Budget(max_trials=10, max_time=600.0, max_device_hours=0.1, max_cost=0.2, price_per_hour=3.6)
    assert b.binding(Spent()) == "dollar"  # 200 s of dollars, 360 s of device-hours, 600 s of wall
    assert b.binding(Spent(wall_seconds=500)) == "time"
    assert Budget(max_device_hours=0.01, max_cost=100.0, price_per_hour=3.6).binding(Spent()) == "device-hour"
    assert Budget(max_trials=3).binding(Spent()) == "trial"


def test_a_budget_of_one_trial_reads_one_trial() -> None:
    assert Budget(max_trials=1).describe().startswith("1 trial") and "1 trials" not in Budget(max_trials=1).describe()
    assert "2 trials" in Budget(max_trials=2).describe()


def test_a_trial_limit_lowered_below_the_trials_done_says_so() -> None:
    """Resuming with a lower --max-trials said "trial budget reached (3/2 trials)" (a review, 2026-12-06)."""
    b = Budget(max_trials=2)
    assert b.stop_reason(Spent(trials=2), 1.0, 1.0) == "trial budget reached (2/2 trials)"
    assert b.stop_reason(Spent(trials=3), 1.0, 1.0) == ("trial budget reached (3 trials done, more than "
                                                        "--max-trials 2: raise it to search more)")
