"""Budgets, prices and the cost ledger.

Cost is the seconds the device was actually used times its hourly price. The ledger is not a
counter kept on one machine: every trial stores its own device seconds and cost in the study's
storage, and the ledger is their sum (plus probes and the final training), so it survives crashes
and is the same for every process reading the study.
"""

from __future__ import annotations

import math
import re
import warnings
from dataclasses import asdict, dataclass

from budgetnas.errors import ConfigError, plural, user_stacklevel

# Approximate on-demand prices in USD per device-hour, for one GPU (late 2025, major clouds;
# spot/marketplace prices are often 2-3x lower). Override with an explicit price.
PRICE_PRESETS: dict[str, float] = {
    "cpu": 0.10,   # a small 2-4 vCPU VM
    "t4": 0.35,
    "v100": 2.48,
    "a100": 3.67,
    "h100": 2.99,
    "h200": 3.79,  # specialty clouds, 2026: $3.50-4.50 (hyperscalers $4.50-7.00)
}


def price_for(preset: str | None, price: float | None, device_name: str) -> tuple[float, str]:
    """The hourly price and where it came from: explicit price, a preset, or the detected device."""
    if price is not None:
        if not (price >= 0 and math.isfinite(price)):
            raise ConfigError(f"the price per device-hour must be a non-negative number, got {price!r}")
        if preset is not None:
            warnings.warn(f"both a price ({price:g}/h) and a preset ({preset}) were given; the price is used",
                          stacklevel=user_stacklevel())
        return float(price), "given"
    if preset is not None:
        key = preset.lower()
        if key not in PRICE_PRESETS:
            raise ConfigError(
                f"unknown price preset {preset!r}; choose one of {', '.join(PRICE_PRESETS)} "
                "or give --gpu-price in USD per hour"
            )
        return PRICE_PRESETS[key], f"preset {key}"
    lowered = device_name.lower()
    for key in ("h200", "h100", "a100", "v100", "t4"):
        if key in lowered:
            return PRICE_PRESETS[key], f"preset {key} (detected {device_name})"
    if lowered == "cpu":
        return PRICE_PRESETS["cpu"], "preset cpu"
    return 0.0, f"unknown device {device_name}: no price, give --gpu-price"


def parse_duration(value: float | int | str) -> float:
    """Seconds from a number or a text such as '90', '90s', '15m', '2h' or '1h30m'."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    s = str(value).strip().lower()
    if re.fullmatch(r"\d+(\.\d+)?", s):
        return float(s)
    parts = re.findall(r"(\d+(?:\.\d+)?)([smh])", s)
    if s.startswith("-"):
        parse_duration(s[1:])  # unreadable after the sign: say that instead
        raise ConfigError(f"a duration must be positive, got {value!r}")
    if not parts or "".join(a + b for a, b in parts) != s:
        raise ConfigError(f"cannot read the duration {value!r}; use e.g. 90s, 15m, 2h or 1h30m (or seconds)")
    return sum(float(v) * {"s": 1, "m": 60, "h": 3600}[u] for v, u in parts)


def dollars(x: float) -> str:
    """Dollars with the digits that matter: ``$12.35``, ``$0.0123``, ``$0.000031``, ``$0`` (a
    budget of $0.004 is not "$0.00")."""
    if x == 0:
        return "$0"
    if abs(x) >= 1 or (abs(x) >= 0.01 and round(x, 2) == x):  # $0.20, not $0.2000
        return f"${x:.2f}"
    # (digits from the value rounded to two figures: $0.000999 read "$0.00100" beside a budget of
    # "$0.0010": review D, 2026-12-07)
    return f"${x:.{max(4, 1 - math.floor(math.log10(float(f'{abs(x):.2g}'))))}f}"


MAX_TRIALS = 10**9  # more than any search trains; what the ledger's integer columns hold with room to spare


@dataclass(frozen=True)
class Budget:
    """Limits on a search; any that is None is not enforced. At least one must be set."""

    max_trials: int | None = None
    max_time: float | None = None  # wall seconds of searching, over all sessions of the run
    max_device_hours: float | None = None
    max_cost: float | None = None  # USD
    price_per_hour: float = 0.0

    def __post_init__(self) -> None:
        if self.max_trials is not None and (not isinstance(self.max_trials, int) or self.max_trials < 1):
            raise ConfigError(f"max_trials must be a positive integer, got {self.max_trials!r}")
        if self.max_trials is not None and self.max_trials > MAX_TRIALS:
            # (1e30 reached the ledger's database, which stores 64-bit integers: a traceback, after the
            # probes were paid, and a trial left running: review A, 2026-12-07)
            raise ConfigError(f"max_trials must be at most {MAX_TRIALS:,}, got {self.max_trials:,}: for a search "
                              "without a trial limit, leave it out and give a time, device-hour or dollar budget")
        for name in ("max_time", "max_device_hours", "max_cost"):
            value = getattr(self, name)
            if value is not None and not (value > 0 and math.isfinite(value)):
                raise ConfigError(f"{name} must be a positive number, got {value!r}")
        if all(v is None for v in (self.max_trials, self.max_time, self.max_device_hours, self.max_cost)):
            raise ConfigError("give at least one budget: max trials, wall time, device-hours or dollars")
        if self.max_cost is not None and self.price_per_hour <= 0:
            raise ConfigError(
                "a dollar budget needs a price: give --gpu-price (USD per hour) or --device-preset"
            )

    def cost_of(self, device_seconds: float) -> float:
        """Dollars for ``device_seconds`` of the device at this budget's price."""
        return device_seconds * self.price_per_hour / 3600

    def with_reserve(self, spent: "Spent", seconds: float) -> "Spent":
        """``spent`` plus ``seconds`` of device time reserved (their cost, and as much wall time)."""
        return Spent(spent.trials, spent.device_seconds + seconds, spent.cost + self.cost_of(seconds),
                     spent.wall_seconds + seconds)

    def _left(self, spent: "Spent") -> dict[str, float]:
        """Seconds each limit that is set still allows after ``spent``, by its name: "time" (wall),
        "device-hour" and "dollar" (device seconds at this budget's price)."""
        left: dict[str, float] = {}
        if self.max_time is not None:
            left["time"] = self.max_time - spent.wall_seconds
        if self.max_device_hours is not None:
            left["device-hour"] = self.max_device_hours * 3600 - spent.device_seconds
        if self.max_cost is not None:
            left["dollar"] = (self.max_cost - spent.cost) / self.price_per_hour * 3600
        return left

    def device_seconds_left(self, spent: "Spent") -> float:
        """Device seconds still allowed by the device-hour and dollar limits (inf if neither)."""
        return min((v for k, v in self._left(spent).items() if k != "time"), default=math.inf)

    def wall_seconds_left(self, spent: "Spent") -> float:
        """Wall seconds the time limit still allows after ``spent`` (inf if none)."""
        return self._left(spent).get("time", math.inf)

    def seconds_left(self, spent: "Spent") -> float:
        """Seconds of work the device-hour, dollar and wall-time limits still allow (inf if none)."""
        return min(self._left(spent).values(), default=math.inf)

    def binding(self, spent: "Spent", device_only: bool = False) -> str:
        """The limit that leaves the least after ``spent``: "time", "device-hour" or "dollar"
        ("trial" when none of them is set); with ``device_only``, of the last two."""
        left = {k: v for k, v in self._left(spent).items() if not (device_only and k == "time")}
        return min(left, key=left.__getitem__) if left else "trial"

    def stop_reason(self, spent: "Spent", forecast_seconds: float, forecast_wall: float) -> str | None:
        """Why the next trial must not start, or None if the budget allows it."""
        if self.max_trials is not None and spent.trials >= self.max_trials:
            return (f"trial budget reached ({spent.trials}/{self.max_trials} trials)" if spent.trials <= self.max_trials
                    else f"trial budget reached ({spent.trials} trials done, more than --max-trials "
                         f"{self.max_trials}: raise it to search more)")
        left = self.device_seconds_left(spent)
        if forecast_seconds > left:
            return (f"{self.binding(spent, device_only=True)} budget: the next trial is forecast to need {forecast_seconds:.3g} device-s "
                    f"but only {max(left, 0):.3g} remain")
        if self.max_time is not None and spent.wall_seconds + forecast_wall > self.max_time:
            return (f"time budget: {spent.wall_seconds:.0f} s of {self.max_time:.0f} s used or reserved "
                    f"(the final training's included) and the next "
                    f"trial is forecast to take {forecast_wall:.3g} s")
        return None

    def describe(self) -> str:
        parts = []
        if self.max_trials is not None:
            parts.append(plural(self.max_trials, "trial"))
        if self.max_time is not None:
            parts.append(f"{self.max_time:.0f} s wall" if self.max_time >= 100 else f"{round(self.max_time, 2):g} s wall")
        if self.max_device_hours is not None:
            parts.append(f"{self.max_device_hours:g} device-h")
        if self.max_cost is not None:
            parts.append(dollars(self.max_cost))
        return ", ".join(parts)


@dataclass(frozen=True)
class Spent:
    """What a study has used so far (derived from the stored trials)."""

    trials: int = 0
    device_seconds: float = 0.0
    cost: float = 0.0
    wall_seconds: float = 0.0

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


class CostModel:
    """Forecasts a trial's device seconds from the trials measured so far.

    Model: ``seconds = a * work + b * samples`` with ``work = samples * MACs`` and
    ``samples = images x epochs``, fitted by least squares on the measured trials with negative
    coefficients clipped to zero (a conservative stand-in for a non-negative fit: it tends to
    forecast high), never below the cheapest measured cost per sample, and monotone in compute:
    never below the cost per sample measured for a cell with less compute per sample. Before two
    trials of different cells exist it scales the dearest measurement per sample (or the probe of
    the costliest cell) up by work but never down: every cell is forecast at least at that cost
    per sample, an upper bound until a second cell is measured.
    """

    def __init__(self) -> None:
        self._obs: list[tuple[float, float, float]] = []  # (samples, work, seconds)

    def add(self, samples: float, macs: float, seconds: float) -> None:
        if samples > 0 and seconds > 0 and math.isfinite(seconds):
            self._obs.append((samples, samples * macs, seconds))

    def __len__(self) -> int:
        return len(self._obs)

    def forecast(self, samples: float, macs: float) -> float:
        if not self._obs:
            return 0.0
        work = samples * macs
        if len(self._obs) == 1 or len({round(o[1] / o[0]) for o in self._obs}) == 1:
            s0, w0, t0 = max(self._obs, key=lambda o: o[2] / o[0])
            return t0 * max(samples / s0, work / w0)
        import numpy as np

        A = np.array([[o[1], o[0]] for o in self._obs])
        t = np.array([o[2] for o in self._obs])
        scale = A.max(0)
        coef, *_ = np.linalg.lstsq(A / scale, t, rcond=None)
        coef = np.clip(coef, 0, None) / scale
        pred = float(coef[0] * work + coef[1] * samples)
        # Never below the cheapest measured cost per sample (overheads do not vanish), nor below the
        # dearest per-sample cost measured for a cell with no more compute per sample: the fit can
        # clip its compute term to zero when the measured cells span little compute, and would
        # then forecast a dear cell as cheap as the cheapest.
        per_sample = min(o[2] / o[0] for o in self._obs)
        lighter = [o[2] / o[0] for o in self._obs if o[1] / o[0] <= macs * (1 + 1e-9)]
        return max(pred, samples * max([per_sample, *lighter]))
