#!/usr/bin/env python
"""The transfer check of issue 3: does NAS-Bench-201's CIFAR-10 ranking hold on your data?

Runs ``budgetnas finetune`` (:func:`budgetnas.search.transfer.finetune_from_bench`) on
Fashion-MNIST (or ``--data``) in two modes, each its own run directory:

* ``top-k``: the benchmark's best ``--k`` (12) cells under ``--max-params``, one per equivalence
  class: how well the benchmark orders cells that are all good (expect a weak rho: they differ
  by tenths of a point on CIFAR-10);
* ``reverse``: ``--k`` cells spread evenly over the benchmark's whole accuracy range: whether
  it tells good from bad cells on this data (expect a strong rho).

Each cell is trained with the normal search machinery (budget ledger, records, resume) at the
given proxy (``--C/--N``, ``--epochs``, ``--subset``, ``--search-resolution``) and ranked by its
validation accuracy; Spearman's rho between the two rankings is reported with the table,
the device seconds, the device and the date, and appended to ``benchmarks/RESULTS.md``. The
final training of the best cell is off unless ``--final-epochs`` is given (it does not change
rho). On the shared compact CSV the benchmark's ranking is by test accuracy: labelled "test
oracle".

While a mode runs, a watcher reads its study every few seconds and prints one line per cell as it
finishes (status, validation accuracy, epochs, device seconds); with ``--progress-file`` it also
rewrites that file (a Markdown table of the cells finished so far), so that a run cut off by a time
limit still shows what it trained. ``--keep-runs`` keeps the run directories: run again, it resumes
where it stopped.

Examples::

    python benchmarks/transfer_check.py                                  # issue 3: k=12, full data, GPU
    python benchmarks/transfer_check.py --subset 0.1 --epochs 3 --search-resolution 16   # CPU proxy
    python benchmarks/transfer_check.py --smoke                          # minutes on a CPU: proves it runs
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402
from _report import append_results, cpu_name  # noqa: E402

from budgetnas.bench import load_nb201  # noqa: E402
from budgetnas.search import SearchConfig  # noqa: E402
from budgetnas.search.records import TrialView  # noqa: E402
from budgetnas.search.transfer import TransferReport, finetune_from_bench  # noqa: E402
from budgetnas.train import resolve_device  # noqa: E402

SHARED_CSV = REPO.parent / "shared" / "data" / "nb201" / "nats_tss_200ep_test.csv"
MODES = ("top-k", "reverse")


@dataclass
class Outcome:
    mode: str
    report: TransferReport
    wall_s: float


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--table", default=os.environ.get("BUDGETNAS_NB201") or str(SHARED_CSV),
                   help="NB201 table (default: $BUDGETNAS_NB201 or the shared compact CSV)")
    p.add_argument("--data", default="fashion-mnist", help="dataset name or path (fashion-mnist)")
    p.add_argument("--data-root", default=None, help="where the dataset's files are")
    p.add_argument("--modes", default=",".join(MODES), help=f"of {', '.join(MODES)} (both)")
    p.add_argument("--k", type=int, default=12, help="cells per mode (12)")
    p.add_argument("--bench-dataset", default="cifar10", help="the benchmark ranking to check (cifar10)")
    p.add_argument("--max-params", type=float, default=1e6,
                   help="top-k only: parameter cap of the final network (1e6)")
    p.add_argument("-C", type=int, default=16, help="channels of the trained networks (16)")
    p.add_argument("-N", type=int, default=5, help="cells per stage of the trained networks (5)")
    p.add_argument("--epochs", type=int, default=12, help="epochs per cell (12)")
    p.add_argument("--subset", type=float, default=1.0, help="share of the training split used (1.0)")
    p.add_argument("--search-resolution", type=int, default=None, help="proxy resolution (native)")
    p.add_argument("--final-epochs", type=int, default=0, help="retrain and test the best cell (0: no)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto")
    p.add_argument("--concurrent", type=int, default=1, help="cells trained at once (1; 0: auto)")
    p.add_argument("--smoke", action="store_true", help="k=4, C=4 N=1, 1 epoch, 2%% of the data, 8 px")
    p.add_argument("--keep-runs", default=None, help="keep the run directories under this folder")
    p.add_argument("--progress-file", default=None,
                   help="rewrite this Markdown file with every cell trained so far, as each finishes")
    p.add_argument("--poll", type=float, default=5.0, help="seconds between the watcher's looks (5)")
    p.add_argument("--out", default=str(REPO / "benchmarks" / "RESULTS.md"))
    p.add_argument("--no-write", action="store_true")
    args = p.parse_args(argv)
    args.modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    if set(args.modes) - set(MODES):
        p.error(f"unknown modes {sorted(set(args.modes) - set(MODES))}; choose from {MODES}")
    if args.smoke:
        args.k, args.C, args.N, args.epochs, args.subset, args.search_resolution = 4, 4, 1, 1, 0.02, 8
    if not Path(args.table).exists():
        p.error(f"no NB201 table at {args.table}; give --table or set $BUDGETNAS_NB201")
    return args


class CellWatcher:
    """Reads a mode's study every ``poll`` seconds, from its own thread, while the search trains:
    one printed line per cell as it finishes, and the cells so far in ``progress_file`` (shared by
    the modes: ``done`` holds the earlier modes' lines)."""

    FINISHED = ("complete", "cached", "pruned", "failed")

    def __init__(self, mode: str, run_dir: Path, metric: str, progress_file: Path | None, done: list[str],
                 poll: float) -> None:
        self.mode, self.run_dir, self.metric, self.file, self.done = mode, run_dir, metric, progress_file, done
        self.poll, self.seen, self.study, self.t0 = poll, set(), None, time.perf_counter()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, name=f"watch-{mode}", daemon=True)

    def __enter__(self) -> "CellWatcher":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join(timeout=30)
        self.look()  # the last cells, read after the search has stopped writing

    def _loop(self) -> None:
        while not self.stop.wait(self.poll):
            try:
                self.look()
            except Exception as e:  # (a locked or half-made database: look again later)
                print(f"  [{self.mode}] watcher: {type(e).__name__}: {e}", flush=True)

    def look(self) -> None:
        if self.study is None:
            if not (self.run_dir / "study.db").exists():
                return
            from budgetnas.search.study import open_study

            self.study = open_study(self.run_dir)
        new = []
        for t in self.study.get_trials(deepcopy=False):
            v = TrialView.of(t)
            if v.status in self.FINISHED and t.number not in self.seen:
                self.seen.add(t.number)
                new.append(v)
        for i, v in enumerate(new, start=len(self.seen) - len(new) + 1):
            acc = v.metrics.get(self.metric)
            line = (f"| {self.mode} | {v.number} | {v.status} | `{v.arch.replace('|', chr(92) + '|')}` | "
                    f"{'-' if acc is None else f'{acc:.4f}'} | {v.epochs} | {v.device_seconds:.1f} | "
                    f"{time.perf_counter() - self.t0:.0f} |")
            self.done.append(line)
            print(f"  [{self.mode}] cell {i} (trial {v.number}) {v.status}: {self.metric} "
                  f"{'-' if acc is None else f'{acc:.4f}'} after {v.epochs} epochs, {v.device_seconds:.1f} device-s, "
                  f"{time.perf_counter() - self.t0:.0f} s into the mode: {v.arch}", flush=True)
        if new and self.file is not None:
            self.file.parent.mkdir(parents=True, exist_ok=True)
            self.file.write_text(
                "# Transfer check: cells trained so far (rewritten as each finishes)\n\n"
                f"| mode | trial | status | cell | val {self.metric} | epochs | device-s | s into the mode |\n"
                "| --- | ---: | --- | --- | ---: | ---: | ---: | ---: |\n" + "".join(line + "\n" for line in self.done))


def run_mode(args: argparse.Namespace, mode: str, table, root: Path, done: list[str] | None = None) -> Outcome:
    config = SearchConfig(
        data=args.data, data_root=args.data_root, run_dir=str(root / f"transfer-{mode}"), C=args.C, N=args.N,
        final_C=args.C, final_N=args.N, epochs=args.epochs, subset=args.subset,
        search_resolution=args.search_resolution, final_epochs=max(1, args.final_epochs),
        final_training=args.final_epochs > 0, seed=args.seed, device=args.device,
        concurrent=args.concurrent, max_trials=args.k, strategy="random",
    )
    t0 = time.perf_counter()
    progress = Path(args.progress_file) if args.progress_file else None
    with CellWatcher(mode, Path(config.run_dir), config.metric, progress, [] if done is None else done, args.poll):
        report = finetune_from_bench(config, table, k=args.k, dataset=args.bench_dataset,
                                     max_params=args.max_params if mode == "top-k" else None,
                                     reverse=mode == "reverse", progress=False)
    return Outcome(mode, report, time.perf_counter() - t0)


def section(args: argparse.Namespace, outcomes: list[Outcome], dev: torch.device) -> str:
    device = torch.cuda.get_device_name(dev) if dev.type == "cuda" else cpu_name()
    cmd = "python " + " ".join(shlex.quote(a) for a in [os.path.relpath(sys.argv[0], REPO)] + sys.argv[1:])
    proxy = (f"C={args.C} N={args.N}, {args.epochs} epochs, {args.subset:g} of the training split, "
             f"resolution {args.search_resolution or 'native'}")
    full = (args.k == 12 and args.C == 16 and args.N == 5 and args.subset == 1.0 and not args.smoke)
    title = "## Transfer check: NB201 ranking vs your data (issue 3)"
    if args.smoke:
        title += " — smoke run, not a measurement"
    elif not full:
        title += " — proxy run (not the k=12 full-size GPU run)"
    lines = [
        title, "",
        f"- date: {datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M')} UTC",
        f"- device: {device}; torch {torch.__version__}, Python {platform.python_version()}",
        f"- command: `{cmd}`",
        f"- data: {args.data}; benchmark ranking: NB201 {args.bench_dataset}; cells trained at {proxy}; "
        "ranked by validation accuracy", "",
        "| mode | cells | Spearman rho | your best (val acc) | device-s | wall s |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for o in outcomes:
        measured = [r.measured for r in o.report.rows if r.measured is not None]
        best = f"{max(measured):.4f}" if measured else "-"
        oracle = " (test oracle)" if o.report.test_oracle else ""
        lines.append(f"| {o.mode}{oracle} | {len(measured)}/{len(o.report.rows)} | {o.report.rho:.3f} | {best} | "
                     f"{o.report.search.spent.device_seconds:.0f} | {o.wall_s:.0f} |")
    for o in outcomes:
        lines += ["", f"{o.mode}:", "", "```", o.report.table(), "```"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.smoke:
        torch.set_num_threads(1)
    dev = resolve_device(args.device)
    table = load_nb201(args.table)
    with tempfile.TemporaryDirectory(prefix="transfer-") as tmp:
        root = Path(args.keep_runs) if args.keep_runs else Path(tmp)
        outcomes, done = [], []
        for mode in args.modes:
            print(f"{mode}: training {args.k} cells at C={args.C} N={args.N}, {args.epochs} epochs, "
                  f"{args.subset:g} of the data, in {root / f'transfer-{mode}'}", flush=True)
            o = run_mode(args, mode, table, root, done)
            print(f"{mode}: rho {o.report.rho:.3f} ({o.wall_s:.0f} s)\n{o.report.table()}\n", flush=True)
            outcomes.append(o)
    text = section(args, outcomes, dev)
    print(text)
    if not args.no_write:
        append_results(Path(args.out), text)
        print(f"\nappended to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
