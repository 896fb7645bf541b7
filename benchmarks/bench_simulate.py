"""Simulated search on the NAS-Bench-201 table: strategies x datasets x repeats, timed.

Measures the issue's claim: ``budgetnas bench simulate --strategies rea,random,reinforce,tpe
--queries 150 --repeats 100`` on cifar10, cifar100 and ImageNet16-120 finishes in under 3 minutes
on this 2-core machine, and regularized evolution beats random search on the mean final test
accuracy on all three datasets. Prints the table and appends it to ``benchmarks/RESULTS.md`` with
the date (UTC), CPU, command and wall time.

On the shared compact CSV (test accuracy only) every run is a TEST ORACLE run: the strategies
rank cells by the test accuracy that is then reported. The section says so.

Run (about 2 minutes here)::

    python benchmarks/bench_simulate.py
    python benchmarks/bench_simulate.py --strategies reinforce,reinforce:lr=0.001,reinforce:lr=0.5 \\
        --title "REINFORCE learning rate"          # any strategy specs, one section each run
"""

from __future__ import annotations

import time

T_START = time.perf_counter()   # the clock includes imports and loading the table, as the CLI would

import argparse  # noqa: E402
import os  # noqa: E402
import platform  # noqa: E402
import shlex  # noqa: E402
import sys  # noqa: E402
from datetime import datetime, timezone  # noqa: E402
from pathlib import Path  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from budgetnas.bench import load_nb201  # noqa: E402
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import cpu_name  # noqa: E402
from budgetnas.search.simulate import DEFAULT_DATASETS, DEFAULT_STRATEGIES, simulate  # noqa: E402

SHARED_CSV = REPO.parent / "shared" / "data" / "nb201" / "nats_tss_200ep_test.csv"
TARGET_S = 180.0
MUST_SHOW = (sorted(DEFAULT_STRATEGIES), 150, 100, list(DEFAULT_DATASETS))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--strategies", default=",".join(DEFAULT_STRATEGIES))
    p.add_argument("--queries", type=int, default=150)
    p.add_argument("--repeats", type=int, default=100)
    p.add_argument("--datasets", default=",".join(DEFAULT_DATASETS))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=None, help="processes (default: all cores)")
    p.add_argument("--table", default=os.environ.get("BUDGETNAS_NB201") or str(SHARED_CSV))
    p.add_argument("--title", default=None, help="section title (default: the must-show claim)")
    p.add_argument("--out", default=str(REPO / "benchmarks" / "RESULTS.md"))
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    load_before = os.getloadavg()[0]   # other work on the machine slows the wall time: say how much
    t_load = time.perf_counter()
    table = load_nb201(args.table)
    load_s = time.perf_counter() - t_load
    strategies = [s for s in args.strategies.split(",") if s.strip()]
    datasets = [d for d in args.datasets.split(",") if d.strip()]
    result = simulate(table, strategies, dataset=datasets, queries=args.queries, repeats=args.repeats,
                      seed=args.seed, workers=args.workers)
    wall = time.perf_counter() - T_START
    text = result.format_table()
    print(text)

    must_show = (sorted(strategies), args.queries, args.repeats, result.datasets) == MUST_SHOW
    lines = [f"- wall time: {wall:.1f} s for the whole script (imports {t_load - T_START:.1f} s, table load "
             f"{load_s:.2f} s, simulation {result.wall_seconds:.1f} s on {result.workers} processes)"]
    if must_show:
        met = "met" if wall < TARGET_S else "NOT MET"
        lines.append(f"- target: under {TARGET_S:.0f} s for 4 strategies x 3 datasets x 100 runs x 150 queries "
                     f"on 2 cores: **{met}** ({wall:.1f} s on {os.cpu_count()} cores)")
    if "rea" in result.strategies and "random" in result.strategies:
        wins = {d: result.beats("rea", "random", d) for d in result.datasets}
        gaps = {d: result.difference("rea", "random", d) for d in result.datasets}
        diffs = ", ".join(f"{d} {m:+.2f} ± {h:.2f}" for d, (m, h) in gaps.items())
        clear = [d for d, (m, h) in gaps.items() if m - h > 0]  # (the interval above zero: not noise)
        verdict = ("REA beat random search on the mean final test accuracy on all "
                   f"{len(wins)} datasets" if all(wins.values()) else
                   "REA did NOT beat random search on " + ", ".join(d for d, w in wins.items() if not w))
        verdict += (f"; beyond the 95 % interval on {', '.join(clear) if clear else 'none of them'}")
        lines.append(f"- {verdict} (REA minus random, with its 95 % confidence interval: {diffs} points)")
    for line in lines:
        print(line)

    date = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    oracle = " — TEST ORACLE (searched on test accuracy)" if result.any_test_oracle else ""
    title = args.title or "Simulated search on NAS-Bench-201"
    params = "; ".join(f"{s}: {', '.join(f'{k}={v}' if k != 'engine' else str(v) for k, v in p.items())}"
                       for s, p in result.params.items())
    section = f"""## {title}{oracle}

- date: {date}
- device: {cpu_name()}, Python {platform.python_version()}; 1-minute load average before the run
  {load_before:.2f}, after {os.getloadavg()[0]:.2f} (other processes on the machine share the cores)
- command: `python {shlex.join(sys.argv)}`
- table: `{args.table}` ({table.source}); search metric: {', '.join(sorted(set(result.search_metric.values())))}
- strategy settings: {params}
{chr(10).join(lines)}

{text}
"""
    out = Path(args.out)
    with out.open("a") as fh:
        fh.write("\n" + section.rstrip() + "\n")
    print(f"appended to {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
