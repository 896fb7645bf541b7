"""The command line: ``budgetnas search``, ``show RUN``, ``export RUN FILE``, ``worker`` (another
process of a shared study), ``finetune`` (NAS-Bench-201's top-k on your data) and ``bench``
(query, top-k and simulated searches of the NAS-Bench-201 table).

Every user mistake is reported as one line (``error: ...``) with what to do, exit status 2;
a search in which every trial failed ends with exit status 1 and the reasons (all of it recorded);
Ctrl-C leaves the run resumable (exit status 130); a study database that cannot be reached or
written (a server that stays away past --db-wait) stops it, resumable, with exit status 75
(EX_TEMPFAIL); a local study file that is damaged
or read-only is reported with what to do, exit status 2 when found at the start, 1 when met mid-run.
"""

from __future__ import annotations

import argparse
import json
import os
import logging
import re
import sys
import warnings
from pathlib import Path
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

from budgetnas.bench.commands import parse_count
from budgetnas.errors import BudgetNASError, ConfigError, first_line, plural, seconds_text

if TYPE_CHECKING:
    from budgetnas.search import Search, SearchConfig

T = TypeVar("T")

EPILOG_SEARCH = """\
examples:
  budgetnas search --data digits --max-trials 8 --run-dir runs/demo
  budgetnas search --data fashion-mnist --max-time 30m --gpu-price 2.99 --subset 0.2 --run-dir runs/fm
  budgetnas search --data ./my_images --max-cost 5 --device-preset t4 --max-params 2e6
  budgetnas search --data digits --max-trials 50 --dry-run        # what would the budget buy?

Running the same command again on the same --run-dir resumes the search.

exit status: 0 done; 2 a mistake in what was asked (one line says what to do); 1 every trial
failed (the reasons are listed); 128 + N stopped by signal N (130: Ctrl-C), resumable; 75 the
study's database server could not be reached or written for --db-wait (EX_TEMPFAIL: run it again
later, it resumes);
1 also when the run's study file is found damaged or read-only mid-run (2 at the start; the line
says what to do).
"""


def _preempted_exit(search: "Search") -> int:
    """Exit status 128 + signal number after a clean stop on SIGTERM/SIGINT."""
    import signal

    name = search._signal_name or "SIGTERM"
    print(f"{name}: the search stopped cleanly; run the same command to resume", file=sys.stderr)
    return 128 + int(getattr(signal, name, signal.SIGTERM))


def _all_failed_exit(study: Any, run_dir: Path) -> int:
    """Exit status 1 with what failed and what to do when no trial of the study finished and some
    failed (the search trained nothing usable, though every failure is recorded); else 0."""
    from collections import Counter

    from budgetnas.search.records import TrialView, status_of

    statuses = [status_of(t) for t in study.get_trials(deepcopy=False)]
    if "failed" not in statuses or "complete" in statuses or "cached" in statuses:
        return 0
    reasons = Counter(TrialView.of(t).reason or "no reason recorded"
                      for t in study.get_trials(deepcopy=False) if status_of(t) == "failed")
    said = "; ".join(f"{why} ({plural(n, 'trial')})" for why, n in reasons.most_common(3))
    more = f"; and {plural(len(reasons) - 3, 'other reason')}" if len(reasons) > 3 else ""
    print(f"error: every trial failed ({statuses.count('failed')} failed), so there is no model: {said}{more}. "
          f"Each failure is recorded in {run_dir} (`budgetnas show {run_dir}` lists them): fix the cause "
          "and run again with a new --run-dir (this one keeps the settings that failed)", file=sys.stderr)
    return 1


def _duration(text: str) -> float:
    """Seconds from '90', '90s', '15m', '2h' or '1h30m'."""
    from budgetnas.search.budget import parse_duration

    try:
        return parse_duration(text)
    except ConfigError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None


def _trials(text: str) -> int:
    """A whole number of trials, also written 1e3 or 2k (as --max-params takes counts)."""
    from budgetnas.bench.commands import parse_count

    try:
        return int(text)  # (0 or negative: refused by the configuration, with its message)
    except ValueError:
        pass
    try:
        n = parse_count(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"not a positive whole number of trials: {text!r}") from None
    if n != int(n):
        raise argparse.ArgumentTypeError(f"not a whole number of trials: {text!r}")
    return int(n)


def _objectives(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


class _Parser(argparse.ArgumentParser):
    """argparse, with a bad flag reported in one line (not the whole usage block above it)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # argparse reads `--max-time -5m` as a missing value followed by an unknown flag, because
        # only plain numbers (-5, -.5) count as negative values; a value starting with a minus and
        # a digit goes to the option, whose own check then says what is wrong with it.
        self._negative_number_matcher = re.compile(r"^-\.?\d")

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {message} (see `{self.prog} --help`)\n")


DB_WAIT = 600.0
DB_WAIT_HELP = ("with --storage on a database server: when the server goes away (a restart, a failover, a "
                "network blip) or is not up yet at the start, wait this long for it, then go on in the same "
                "process, the running trial resumed from its checkpoint; 0 stops at once with exit status 75 "
                "(default 10m)")


PLUGINS_ENV = "BUDGETNAS_PLUGINS"


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="budgetnas",
        description="Neural architecture search on a budget: find, train and test an image classifier.",
    )
    parser.add_argument("--verbose", "-v", action="store_true", help="log more detail")
    parser.add_argument("--plugin", action="append", default=[], metavar="MODULE",
                        help="import MODULE first (from the current folder or the Python path): a module "
                             "that registers a search space or strategy of your own; repeatable. "
                             f"{PLUGINS_ENV}=MOD1,MOD2 does the same for every command")
    sub = parser.add_subparsers(dest="command", required=True)

    s = sub.add_parser("search", help="search architectures by training them within a budget",
                       description="Search NAS-Bench-201 cells by training them on your data, within a "
                                   "budget; then retrain the best on train+validation and test it.",
                       epilog=EPILOG_SEARCH, formatter_class=argparse.RawDescriptionHelpFormatter)
    g = s.add_argument_group("data")
    g.add_argument("--data", default="digits",
                   help="dataset name (digits, fashion-mnist, mnist, cifar10) or a path: an image folder "
                        "(one subfolder per class, or train/ and test/), or a .npz (default: digits)")
    g.add_argument("--data-root", help="where a named dataset's files are (e.g. the cifar10 folder or archive)")
    g.add_argument("--val-fraction", type=float, default=0.2, help="validation share of training data (0.2)")
    g.add_argument("--test-fraction", type=float, default=0.2,
                   help="test share held out when the data has no test split (0.2)")
    g.add_argument("--resolution", type=int, help="final input size in pixels (default: native, at most 32; "
                                                  "rounded down to a multiple of 4)")
    g.add_argument("--channels-first", action="store_true",
                   help="the .npz arrays are (N, C, H, W), not (N, H, W, C)")
    g.add_argument("--hflip", action=argparse.BooleanOptionalAction, default=None,
                   help="random horizontal flips (default: on for cifar10 and fashion-mnist only)")

    g = s.add_argument_group("search")
    g.add_argument("--run-dir", default="runs/budgetnas", help="where the study, ledger and model go; "
                                                                "reused to resume (runs/budgetnas)")
    g.add_argument("--strategy", default="tpe",
                   help="tpe (Bayesian, default), gp (Gaussian process), rea (regularized evolution), "
                        "reinforce (policy gradient), local (local search) or random; or one a --plugin "
                        "registers")
    g.add_argument("--space", default="nb201",
                   help="the search space: nb201 (NAS-Bench-201's cells, default) or one a --plugin registers")
    g.add_argument("--objective", "--objectives", dest="objectives", type=_objectives, default=["accuracy"],
                   help="accuracy, balanced_accuracy or macro_f1; add ',params' or ',macs' for a "
                        "multi-objective search (default accuracy)")
    g.add_argument("--max-params", type=parse_count, metavar="COUNT",
                   help="largest parameter count allowed for the final network (e.g. 2e6, 500k, 1.5M)")
    g.add_argument("--pruner", default="none", choices=["none", "sha", "hyperband"],
                   help="stop weak candidates early: successive halving or hyperband (default none)")
    g.add_argument("--seed", type=int, default=0, help="seed of splits, strategy and training (0)")

    g = s.add_argument_group("proxy task (cheaper search)")
    g.add_argument("-C", type=int, default=8, help="channels of the search network (8; NB201 uses 16)")
    g.add_argument("-N", type=int, default=1, help="cells per stage of the search network (1; NB201 uses 5)")
    g.add_argument("--epochs", type=int, default=8, help="training epochs per candidate (8)")
    g.add_argument("--subset", type=float, default=1.0, help="fraction of training images used to search (1.0); each epoch scores the same "
                   "fraction of the validation split, but at least 5,000 images (all, if fewer)")
    g.add_argument("--search-resolution", type=int, help="lower input size for the search phase")

    g = s.add_argument_group("final training")
    g.add_argument("--final-C", type=int, default=16, help="channels of the final network (16)")
    g.add_argument("--final-N", type=int, default=5, help="cells per stage of the final network (5)")
    g.add_argument("--final-epochs", type=int, default=30, help="epochs of the final training (30)")
    g.add_argument("--no-final", action="store_true", help="skip the final training and test")

    g = s.add_argument_group("training")
    g.add_argument("--batch-size", type=int, help="batch size (default: by data size, about 16 steps an epoch or more, from 32 up to "
                   "256 on a CPU and 512 on a GPU; the learning rate scales with it)")
    g.add_argument("--lr", type=float, default=0.1, help="peak learning rate at batch 256 (0.1)")
    g.add_argument("--device", default="auto", help="auto, cpu or cuda[:N] (auto)")
    g.add_argument("--concurrent", type=_concurrent, default=1, metavar="K|auto",
                   help="train K candidates at once on the device (1); auto measures 1, 2, 4, 8 on a GPU")
    g.add_argument("--step-mode", choices=("auto", "eager", "graph"), default="auto",
                   help="auto: capture each training step in a CUDA graph on a GPU, eager elsewhere")
    g.add_argument("--fuse", choices=("off", "final", "all"), default="off",
                   help="compile fused kernels with torch.compile for the final training or for every "
                        "trial too; each network then pays a compilation first (off)")

    g = s.add_argument_group("budget (at least one)")
    g.add_argument("--max-trials", type=_trials, help="number of candidates to evaluate (e.g. 50, 1e3, 2k)")
    g.add_argument("--max-time", type=_duration, help="wall time of the search, e.g. 30m or 2h")
    g.add_argument("--max-gpu-hours", "--max-device-hours", dest="max_device_hours", type=_number,
                   help="device-hours (search, probes and final training)")
    g.add_argument("--max-cost", type=_number, help="US dollars, at --gpu-price (else --device-preset's rate, else this device's preset)")
    g.add_argument("--gpu-price", type=_number, help="price of the device in USD per hour")
    g.add_argument("--device-preset", help="price preset: cpu, t4, v100, a100, h100, h200")
    g.add_argument("--max-failures", dest="max_consecutive_failures", type=int, default=5, help="stop after this many failed trials in a row (5)")
    g.add_argument("--dry-run", action="store_true", help="forecast trial cost and how many trials the "
                                                          "budget buys; train nothing")
    g.add_argument("--quiet", "-q", action="store_true", help="no progress bar")

    g = s.add_argument_group("robustness")
    g.add_argument("--checkpoint-interval", type=_duration,
                   help="also checkpoint a trial every this often inside an epoch, e.g. 5m "
                        "(checkpoints are always written at epoch ends)")
    g.add_argument("--keep-checkpoints", type=int, default=3,
                   help="keep the checkpoints of this many best finished trials (3)")
    g.add_argument("--artifacts-dir", help="where checkpoints go, e.g. a shared folder (default: --run-dir)")
    g.add_argument("--storage", help="database URL of a study shared by many workers, e.g. "
                                     "postgresql://user:pass@host/db (default: SQLite in --run-dir)")
    g.add_argument("--study-name", default="budgetnas", help="name of the study in --storage (budgetnas)")
    g.add_argument("--db-wait", type=_duration, default=DB_WAIT, metavar="DURATION",
                   help=DB_WAIT_HELP)

    w = sub.add_parser("worker", help="join a search on shared storage as one more worker",
                       description="Work on a study started by `budgetnas search --storage URL`: the same "
                                   "data, settings and budget, read from the study. Start as many workers "
                                   "on as many machines as you like; the budget holds for all of them "
                                   "together. Workers do not run the final training: when they stop, run "
                                   "the `budgetnas search` command again to train and test the best cell.",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    w.add_argument("--storage", required=True, help="the study's database URL (postgresql://...)")
    w.add_argument("--study-name", default="budgetnas", help="name of the study (budgetnas)")
    w.add_argument("--run-dir", help="local folder for this worker's files (default: the study's run dir)")
    w.add_argument("--data-root", help="where this machine keeps the dataset, if not where the study says")
    w.add_argument("--device", help="auto, cpu or cuda[:N] (default: the study's)")
    w.add_argument("--db-wait", type=_duration, default=DB_WAIT, metavar="DURATION", help=DB_WAIT_HELP)
    w.add_argument("--quiet", "-q", action="store_true", help="no progress bar")

    b = sub.add_parser("bench", help="query NAS-Bench-201 and simulate strategies on it (no training)",
                       description="Work with the NAS-Bench-201 table: the compact CSV or the official "
                                   "NAS-Bench-201 / NATS-Bench files (--table PATH or $BUDGETNAS_NB201).")
    bsub = b.add_subparsers(dest="bench_command", required=True)
    from budgetnas.bench.commands import add_query_arguments, add_top_arguments, int_at_least

    add_top_arguments(bsub.add_parser("top", help="the best cells under parameter/FLOP limits",
                                      description="Rank the benchmark's cells and keep the top k under limits."))
    add_query_arguments(bsub.add_parser("query", help="what the benchmark says of given cells",
                                        description="Look cells up by string or index: each metric the file "
                                                    "has, with its rank, and the network's params and FLOPs."))
    from budgetnas.search.simulate import add_simulate_arguments

    add_simulate_arguments(bsub.add_parser(
        "simulate", help="run search strategies against the table over many seeds",
        description="Simulated search: each query looks a cell up in the table instead of training it."))

    f = sub.add_parser("finetune", help="train the benchmark's top cells on your data; check the ranking held",
                       description="Take the top-k NAS-Bench-201 cells under your limits, train each on your "
                                   "data with the normal budget, ledger and resume, report your ranking beside "
                                   "the benchmark's with Spearman's rho, and retrain and test the best. "
                                   "--reverse samples k cells across the benchmark's whole range instead. "
                                   "The search options apply as to a search, but for --strategy, unused: the "
                                   "cells come from the benchmark (--objective ranks them on your data; --pruner "
                                   "stops weak ones early).",
                       parents=[s], add_help=False, conflict_handler="resolve")
    f.add_argument("--from-bench", dest="table", metavar="TABLE", default=None,
                   help="benchmark file (the compact CSV or official files; default $BUDGETNAS_NB201)")
    f.add_argument("--k", type=int, default=12, help="how many cells to train (12)")
    f.add_argument("--bench-dataset", default="cifar10", help="benchmark dataset whose ranking to use (cifar10)")
    f.add_argument("--bench-metric", default=None, help="benchmark metric (default: validation accuracy "
                                                        "when the file has it, else test accuracy)")
    f.add_argument("--diverse", type=int, default=0, help="cells differ pairwise on at least this many edges")
    f.add_argument("--reverse", action="store_true", help="k cells across the accuracy range instead of the top k")
    f.add_argument("--trust-pickle", action="store_true", help="allow loading official pickle files in full")

    sh = sub.add_parser("show", help="summarise a run directory",
                        description="Print a run's budget, ledger, top trials, failures and test result.")
    sh.add_argument("run_dir", nargs="?", default=None,
                    help="a run directory made by `budgetnas search` (or give --storage)")
    sh.add_argument("--storage", default=None,
                    help="a shared study's database URL (postgresql://...), to summarise it from any "
                         "machine without its run directory")
    sh.add_argument("--study-name", default="budgetnas", help="the study in --storage (budgetnas)")
    sh.add_argument("--top", type=int_at_least(1), default=10, help="how many trials to list (10)")
    sh.add_argument("--json", action="store_true", help="print the summary as JSON (the run's summary.json "
                                                        "when it is current) instead")

    ex = sub.add_parser("export", help="save a run's final model as TorchScript, ONNX or a model file",
                        description="Save the final model of a run (or a best/model.pt) for deployment. "
                                    "TorchScript and ONNX files hold the bare network, which takes images "
                                    "resized and normalised as the model's input spec says (saved inside "
                                    "them as budgetnas.json); a model file (state) keeps the preprocessing "
                                    "and loads with budgetnas.load_model.")
    ex.add_argument("model", help="a run directory made by `budgetnas search`, or its best/model.pt")
    ex.add_argument("out", help="the file to write, e.g. model.onnx or model.ts")
    ex.add_argument("--format", choices=("torchscript", "onnx", "state"), type=str.lower, default=None,
                    help="default: from the name: onnx for .onnx, torchscript for .ts/.pt/.pth "
                         "(other names need --format)")
    return parser


def _export(args: argparse.Namespace) -> int:
    from budgetnas.api import export_format, load_model

    model = load_model(args.model)  # (it warns where a later trial overtook the final model's cell)
    out = model.export(args.out, args.format)
    if export_format(out, args.format) == "state":
        print(f"wrote {out}: {model.arch} with its preprocessing (load it with budgetnas.load_model)")
    else:
        print(f"wrote {out}: {model.arch}, {len(model.classes)} classes; it takes float32 images "
              f"(N, {model.in_channels}, {model.resolution}, {model.resolution}) resized and normalised as "
              "its budgetnas.json says (`budgetnas show` the run for its test result)")
    return 0


def _concurrent(text: str) -> int:
    if text.strip().lower() == "auto":
        return 0
    try:
        k = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of candidates or 'auto', got {text!r}") from None
    if not 1 <= k <= 8:
        raise argparse.ArgumentTypeError(f"expected 1 to 8 candidates at once (or 'auto'), got {k}")
    return k


def _config(args: argparse.Namespace) -> "SearchConfig":
    from budgetnas.search import SearchConfig

    return SearchConfig(
        data=args.data, data_root=args.data_root, channels_first=args.channels_first, run_dir=args.run_dir,
        C=args.C, N=args.N, space=args.space,
        final_C=args.final_C, final_N=args.final_N, strategy=args.strategy, objectives=args.objectives,
        max_params=args.max_params, epochs=args.epochs, final_epochs=args.final_epochs, subset=args.subset,
        search_resolution=args.search_resolution, resolution=args.resolution,
        val_fraction=args.val_fraction, test_fraction=args.test_fraction, seed=args.seed, pruner=args.pruner,
        batch_size=args.batch_size, lr=args.lr, hflip=args.hflip, device=args.device,
        concurrent=args.concurrent, step_mode=args.step_mode, fuse=args.fuse,
        max_trials=args.max_trials, max_time=args.max_time, max_device_hours=args.max_device_hours,
        max_cost=args.max_cost, gpu_price=args.gpu_price, device_preset=args.device_preset,
        max_consecutive_failures=args.max_consecutive_failures, final_training=not args.no_final,
        checkpoint_interval=args.checkpoint_interval, keep_checkpoints=args.keep_checkpoints,
        artifacts_dir=args.artifacts_dir, storage=args.storage, study_name=args.study_name,
    )


def _search(args: argparse.Namespace) -> int:
    from budgetnas.report import format_summary
    from budgetnas.search import Search, open_study
    from budgetnas.strategies import create_strategy

    config = _config(args)
    create_strategy(config.strategy, seed=config.seed)  # fail on a bad name before loading data
    search = Search(config, progress=not args.quiet)
    if args.dry_run:
        _say_probing(args)
        return _print_forecast(search.dry_run(), config)
    result = _riding_out_outages(args, search.run)
    study = open_study(search.run_dir, storage=config.storage, study_name=config.study_name)
    print(format_summary(study, config, run_dir=search.run_dir))
    print(f"\nstopped: {result.stop_reason}")
    if result.preempted:
        return _preempted_exit(search)
    if result.best_arch and (search.run_dir / "best" / "model.pt").exists() and config.final_training:
        print(f"model saved in {search.run_dir / 'best'}")
    return _all_failed_exit(study, search.run_dir)


def _print_forecast(f: dict[str, Any], config: Any, what: str = "trial") -> int:
    """What a dry run found: a trial's cost, the final training's, and what the budget buys."""
    from budgetnas.report.summary import money

    per, done = f["seconds_per_trial"], f["spent"]
    print(f"device: {f['device']} at ${f['price_per_hour']:.2f}/h ({f['price_source']})")
    d = f["data"]
    c, h, w = d["image_shape"]
    print(f"data: {d['classes']} classes, {plural(c, 'channel')} of {h}x{w} px; {d['train_images']} training, "
          f"{d['validation_images']} validation, "
          + (f"{d['test_images']} test images" if d["test_images"] else "no test images"))
    print(f"search: {f['search_images']} images at {f['search_resolution']}px, "
          f"{plural(config.epochs, 'epoch')} per trial, each epoch scored on {f['validation_images']} validation "
          f"images ({seconds_text(f['validation_seconds']['cheapest'])} to "
          f"{seconds_text(f['validation_seconds']['costliest'])} a pass); final at {f['resolution']}px")
    print(f"one {what}: " + (f"{seconds_text(per['average'])} for an average cell, " if "average" in per else "")
          + f"{seconds_text(per['cheapest'])} (cheapest) to {seconds_text(per['costliest'])} (costliest)")
    if f.get("iteration_overhead_seconds"):
        print(f"  and the search loop's own work around each (proposal, records, checkpoints, and proposals "
              f"of cells already tried as often as the run has met them): at least "
              f"{seconds_text(f['iteration_overhead_seconds'])} of wall time, which the time limit counts")
    if f.get("trial_compile_seconds"):
        print(f"  each includes compiling its network (--fuse all): {seconds_text(f['trial_compile_seconds'])} "
              "as its trials measured it (before any, timed on the costliest cell), plus the forecasts' 10 % margin")
    fin = f["final_training_seconds"]
    if fin["costliest"]:
        print(f"final training: {seconds_text(fin['average'])} for an average cell, "
              + (f"{seconds_text(fin['cheapest'])} (cheapest) to {seconds_text(fin['costliest'])} (costliest)"
                 if fin["cheapest"] != fin["costliest"] else "the same for each"))
    if f.get("final_compile_seconds"):
        print(f"  each includes compiling the final network (--fuse): {seconds_text(f['final_compile_seconds'])} "
              "timed on its costliest cell, plus the forecasts' 10 % margin")
    if done["trials"] and f["final_training_reserved"] != fin["average"]:
        reserved = f["final_training_reserved"]
        print("reserved for the best cell so far: " + (f"its final training, {seconds_text(reserved)}" if reserved
                                                       else "nothing (its final model is trained)"))
    if f["probe_seconds"]:
        print(f"timing probes before the first trial: {seconds_text(f['probe_seconds'])} (paid from the budget)")
    if done["trials"] or done["device_seconds"]:
        print(f"already spent in {config.run_dir}: {plural(done['trials'], 'trial')}, "
              f"{seconds_text(done['device_seconds'])} of device time, {money(done['cost'])}")
    n, (lo, hi) = f["trials_affordable"], f["trials_range"]
    spread = "" if lo == hi else (f" ({lo} to {hi}: each trial also reserves the final training of the best "
                                  "cell so far, dearer or cheaper than an average one)")
    print(f"budget {f['budget']}: about {plural(n, ('more ' if done['trials'] else '') + 'trial')}{spread}")
    dear = f.get("trials_if_costliest", n)
    if dear < n:
        print(f"  as few as {dear} if the strategy settles on the costliest cells (TPE often does, when "
              "they score best): the forecast prices an average cell")
    if n == 0 and config.max_trials is not None and done["trials"] >= config.max_trials:
        print(f"the trial budget is used up ({done['trials']} of {config.max_trials} trials): raise "
              "--max-trials to search more")
    elif hi == 0:
        print("to afford trials: raise the budget, or make trials cheaper (--subset, --epochs, "
              "--search-resolution, -C/-N) and the final training too (--final-epochs, --final-C/--final-N"
              + (", or --fuse off: compiling costs more than it saves on a budget this small" if f.get(
                  "final_compile_seconds") else "") + ")")
    return 0


def _bench(args: argparse.Namespace) -> int:
    if args.bench_command == "top":
        from budgetnas.bench.commands import top_command

        return top_command(args)
    if args.bench_command == "query":
        from budgetnas.bench.commands import query_command

        return query_command(args)
    from budgetnas.search.simulate import simulate_command

    return simulate_command(args)


DRY_RUN_CELLS = 30  # a finetune dry run lists this many of its cells


def _say_probing(args: argparse.Namespace) -> None:
    """A dry run is silent while it loads the data and times its probes (minutes for a full-size
    final network on a CPU): say so first, on stderr, so stdout stays the forecast alone."""
    if not args.quiet:
        print("dry run: loading the data and timing a few training steps of the cheapest and costliest "
              "cells and of the final network (nothing is trained or saved)...", file=sys.stderr, flush=True)


def _finetune(args: argparse.Namespace) -> int:
    from budgetnas.bench import load_nb201

    if args.space != "nb201":
        raise ConfigError(f"finetune trains NAS-Bench-201's cells, so its space is nb201, not {args.space!r}; "
                          "search a space of your own with `budgetnas search --space`")
    if args.max_trials is None:
        args.max_trials = args.k
    if args.strategy != "tpe":  # (given, and silently unused: a review, 2026-12-06)
        warnings.warn(f"--strategy {args.strategy} is not used by finetune: its cells are the benchmark's top "
                      "--k (or, with --reverse, k across its range); `budgetnas search` uses a strategy")
    config = _config(args)
    try:
        return _finetune_with(args, config, load_nb201(args.table, trust_pickle=args.trust_pickle))
    except BudgetNASError as e:  # the table's advice names `bench top`'s flags: name finetune's
        raise type(e)(str(e).replace("--table PATH", "--from-bench TABLE")
                      .replace("lower C/N", "lower --final-C/--final-N (the network the limit is for)")) from None


def _finetune_with(args: argparse.Namespace, config: Any, table: Any) -> int:
    from budgetnas.search.transfer import finetune_from_bench

    options = dict(k=args.k, dataset=args.bench_dataset, metric=args.bench_metric, max_params=args.max_params,
                   diverse=args.diverse, reverse=args.reverse, progress=not args.quiet)
    if args.dry_run:
        _say_probing(args)
        f = finetune_from_bench(config, table, dry_run=True, **options)
        cells = f["cells"]
        print(f"cells: {len(cells)} from the benchmark ({'spread over its range' if args.reverse else 'its top'} "
              f"on {args.bench_dataset}; index, its {f.get('bench_metric', 'accuracy')} %, cell)"
              + (f" - TEST ORACLE: chosen by the benchmark's test accuracy, {f['test_oracle_why']}"
                 if f.get("test_oracle") else "") + ":")
        for c in cells[:DRY_RUN_CELLS]:
            print(f"  {c['index']:>5}  {c['bench_value']:6.2f}  {c['arch']}")
        if len(cells) > DRY_RUN_CELLS:
            print(f"  ... and {len(cells) - DRY_RUN_CELLS} more")
        return _print_forecast(f, config, what="cell's training")
    report = _riding_out_outages(args, lambda: finetune_from_bench(config, table, **options))
    print(report.table())
    if report.best_arch:
        m = report.test_metrics
        print(f"best on your data: {report.best_arch}"
              + (f"  (test accuracy {m['accuracy']:.4f})" if m else ""))
    print(f"stopped: {report.search.stop_reason}")
    if report.search.preempted:
        return _preempted_exit(report.searcher)
    from budgetnas.search import open_study

    return _all_failed_exit(open_study(report.search.run_dir, storage=config.storage,
                                       study_name=config.study_name), report.search.run_dir)


def _shared_study(storage: str, study_name: str) -> tuple[Any, dict[str, Any]]:
    """A study in shared storage and the search configuration saved in it."""
    from budgetnas.search import open_study

    study = open_study(None, storage=storage, study_name=study_name)
    saved = study.user_attrs.get("config")
    if not saved:
        raise ConfigError(f"study {study_name!r} has no budgetnas configuration; start it with "
                          "`budgetnas search ... --storage URL` first")
    return study, saved


def _absolute_paths(saved: dict[str, Any], cwd: str | None) -> dict[str, Any]:
    """The search's configuration with its relative paths (run directory, data, data root) taken
    from the directory the search was started in, as the search read them; a worker started
    elsewhere used to read them from its own (a stray run directory, data not found)."""
    from budgetnas.data._datasets import dataset_name

    if not cwd or not Path(cwd).is_dir():  # (a worker on another machine: the paths as given)
        return saved
    out = dict(saved)
    for name in ("run_dir", "data", "data_root"):
        v = out.get(name)
        if not isinstance(v, str) or not v or Path(v).expanduser().is_absolute():
            continue
        if name == "data" and (dataset_name(v) is not None or out.get("data_root")):
            continue  # a dataset's name (looked up by name), or a path under the data root
        there = Path(cwd) / v
        if name == "run_dir" or there.exists():
            out[name] = str(there)
    return out


def _worker(args: argparse.Namespace) -> int:
    from budgetnas.search import Search, SearchConfig

    study, saved = _shared_study(args.storage, args.study_name)
    saved = _absolute_paths(saved, study.user_attrs.get("cwd"))
    if not saved.get("storage"):
        raise ConfigError("that study belongs to a local search, which one process runs at a time: run "
                          "`budgetnas search` with its --run-dir to continue it; workers join searches "
                          "started with --storage URL (a database they can all reach)")
    selection = study.user_attrs.get("selection")
    if isinstance(selection, dict):  # (refused below as "another selection", with advice that could not work)
        raise ConfigError(
            f"that study is a finetune of {len(selection.get('cells') or [])} benchmark cells (its "
            f"{selection.get('mode')} on {selection.get('dataset')}), whose cells come from the benchmark's table, "
            "which a worker does not have: to train them on this machine too, run the same `budgetnas finetune` "
            "command (its --from-bench table and options) with this --storage and --study-name; it takes the cells "
            "no other process holds")
    config = SearchConfig.from_dict({**saved, "storage": args.storage, "study_name": args.study_name,
                                     "final_training": False})
    for field_name in ("run_dir", "data_root", "device"):
        if getattr(args, field_name):
            setattr(config, field_name, getattr(args, field_name))
    search = Search(config, progress=not args.quiet, record_config=False)
    result = _riding_out_outages(args, search.run)
    print(f"worker stopped: {result.stop_reason} ({plural(result.spent.trials, 'trial')} in the study)")
    return _preempted_exit(search) if result.preempted else 0


def _show(args: argparse.Namespace) -> int:
    from budgetnas.report import format_summary
    from budgetnas.search import SearchConfig, open_study, saved_config

    if args.storage is not None and args.run_dir is not None:
        raise ConfigError(f"give a run directory or --storage, not both: `show {args.run_dir}` reads the run's own "
                          "study, `show --storage URL --study-name NAME` a shared one")
    if args.storage is not None:
        study, saved = _shared_study(args.storage, args.study_name)
        config = SearchConfig.from_dict(_absolute_paths(saved, study.user_attrs.get("cwd")))
        if args.json:
            from budgetnas.report.summary import json_summary

            print(json.dumps(json_summary(study, config, Path(config.run_dir)), indent=2))
            return 0
        print(format_summary(study, config, top=args.top, run_dir=Path(config.run_dir)))
        return 0
    if args.run_dir is None:
        raise ConfigError("give a run directory (`budgetnas show runs/x`) or a shared study "
                          "(`budgetnas show --storage postgresql://... --study-name NAME`)")
    run_dir = Path(args.run_dir)
    if not run_dir.exists():
        raise ConfigError(f"{run_dir} does not exist; give the --run-dir of a search")
    has_study = (run_dir / "study.db").exists()
    if not (run_dir / "config.json").exists() and not has_study:  # (a study alone keeps the settings too)
        raise ConfigError(f"{run_dir} is not a budgetnas run directory (no study.db/config.json); "
                          "give the --run-dir of a search")
    try:
        config = saved_config(run_dir)
    except ConfigError as e:
        if has_study:
            raise
        # (another program's config.json: "unknown config keys [...]" read like a typo: a review, 2026-12-07)
        raise ConfigError(f"{run_dir} is not a budgetnas run directory: it has no study.db, and its config.json "
                          f"is not a search's ({first_line(e)}); give the --run-dir of a search") from None
    study = open_study(run_dir, storage=config.storage, study_name=config.study_name)
    if args.json:
        from budgetnas.report.summary import json_summary

        print(json.dumps(json_summary(study, config, run_dir), indent=2))
        return 0
    print(format_summary(study, config, top=args.top, run_dir=run_dir))
    return 0


def _with_flag(message: str, parser: argparse.ArgumentParser, *commands: str | None) -> str:
    """A message that starts with a setting's Python name (``max_consecutive_failures must
    be...``, shared with the API) names the command-line flag too. ``commands``: the command and
    its subcommand, if any (``bench``, ``simulate``)."""
    actions: list[argparse.Action] = []
    for command in commands:
        for action in list(parser._actions):
            if isinstance(action, argparse._SubParsersAction) and command in action.choices:
                parser = action.choices[command]
                actions = parser._actions
                break
    flags = {a.dest: next((o for o in a.option_strings if o.startswith("--")), a.option_strings[0])
             for a in actions if a.option_strings}  # (the long form; -C and -N have only a short one)
    flag = flags.get(message.split(" ", 1)[0])
    return f"{flag} ({message})" if flag else message


def main(argv: list[str] | None = None) -> int:
    """The ``budgetnas`` command; returns its exit status."""
    try:
        return _main(argv)
    except KeyboardInterrupt:  # (before a command began: while the libraries were being imported,
        # a Ctrl-C printed a traceback and exited -2: a kill-and-resume review, 2026-12-07)
        print("\ninterrupted", file=sys.stderr)
        return 130


def _import_plugins(names: list[str]) -> None:
    """Import the modules that register spaces and strategies of the user's own (--plugin, and the
    environment's BUDGETNAS_PLUGINS), from the current folder too, as `python -m` would."""
    import importlib

    for name in names:
        added = "" not in sys.path and os.getcwd() not in sys.path
        if added:
            sys.path.insert(0, os.getcwd())
        try:
            importlib.import_module(name)
        except ImportError as e:
            raise ConfigError(f"cannot import plugin {name!r} ({e}); give a module name importable from "
                              f"{os.getcwd()} or the Python path, e.g. --plugin myspaces for myspaces.py") from None
        finally:
            if added:
                sys.path.remove(os.getcwd())


def _main(argv: list[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    logging.getLogger("budgetnas").setLevel(logging.INFO)
    # Warnings for a person at a terminal: one line, not a source location and a line of code.
    formatwarning = warnings.formatwarning
    warnings.formatwarning = lambda message, category, *rest, **kw: f"warning: {message}\n"
    try:
        _import_plugins([*args.plugin, *filter(None, (m.strip() for m in os.environ.get(PLUGINS_ENV, "").split(",")))])
        commands = {"search": _search, "show": _show, "worker": _worker, "bench": _bench, "finetune": _finetune,
                    "export": _export}
        return commands[args.command](args)
    except BudgetNASError as e:
        print(f"error: {_with_flag(str(e), parser, args.command, getattr(args, 'bench_command', None))}",
              file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        resumable = args.command in ("search", "worker", "finetune") and not getattr(args, "dry_run", False)
        print("\ninterrupted" + (": run the same command again to resume" if resumable else ""), file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `budgetnas show RUN --json | head`
        sys.stderr.close()
        return 0
    except Exception as e:
        if not _lost_database(e):
            raise
        # (a database restart, a failover, a network blip: every worker of a shared study stopped
        # with sqlalchemy's traceback and exit status 1, a review found, 2026-12-06)
        study_file = _local_study_file(args)
        if study_file is not None:
            return _study_file_failed(study_file, first_line(e.__cause__ or e))
        print(f"error: the study's database could not be reached or written ({first_line(e.__cause__ or e)}). "
              "Nothing finished is lost: run the same command again once the database is reachable; a "
              "trial that was running resumes from its checkpoint (in a shared study, once its heartbeat "
              f"grace has passed). Exit status {EXIT_DATABASE_LOST} (EX_TEMPFAIL) means: try again later",
              file=sys.stderr)
        return EXIT_DATABASE_LOST
    finally:
        warnings.formatwarning = formatwarning


EXIT_DATABASE_LOST = 75  # sysexits' EX_TEMPFAIL: a supervisor (systemd's Restart=, a shell loop) may retry


def _local_study_file(args: argparse.Namespace) -> str | None:
    """The SQLite file of the command's study, where it has one."""
    from budgetnas.search.study import sqlite_path, storage_url

    run_dir, storage = getattr(args, "run_dir", None), getattr(args, "storage", None)
    if run_dir is None and storage is None:
        return None
    return sqlite_path(storage_url(Path(run_dir or "."), storage))


def _study_file_failed(path: str, error: str) -> int:
    """A local study file that failed mid-run: what to do, by SQLite's message, and an exit status
    that tells a supervisor whether retrying can help (a damaged or read-only file was met with
    "could not be reached", exit 75, and a restart loop that could never succeed, 2026-12-06)."""
    from budgetnas.search.study import sqlite_trouble

    advice, lasting = sqlite_trouble(path, error)
    print(f"error: the study file {path} could not be read or written ({error}): {advice}"
          + ("" if lasting else "; a trial that was running resumes from its checkpoint. Exit status "
             f"{EXIT_DATABASE_LOST} (EX_TEMPFAIL) means: try again later"), file=sys.stderr)
    return 1 if lasting else EXIT_DATABASE_LOST


# A session that ran this long before the database failed again met a new outage: --db-wait anew.
OUTAGE_SETTLED = 60.0


def _riding_out_outages(args: argparse.Namespace, session: Callable[[], T]) -> T:
    """Run ``session`` (a search's, a worker's, a finetune's); when a database server under it
    goes away (a restart, a failover, a network blip), wait for it and run the session again in
    this process, for up to ``--db-wait`` from the outage's start: it resumes as the same command
    run again would, and takes back at once the trials this process was training (BudgetLedger.close
    leaves them to it), where a new process waits a heartbeat grace for them. (Every worker of a
    shared study stopped with exit status 75 at a server restart, each to be restarted by hand or by
    a supervisor.) Sessions run again at growing intervals, also when the server answers at once
    (an error that lasts, a read-only standby, is not retried in a tight loop), and none after a
    stop signal (a session stopped by SIGTERM during an outage failed writing its stop, and was
    run again). A local study file (SQLite) is not waited for: its trouble is reported at once
    (_study_file_failed)."""
    import signal
    import time

    from budgetnas.search.study import signals_taken

    patience = getattr(args, "db_wait", 0.0) or 0.0
    outage: float | None = None  # when the outage began
    pause = 1.0
    while True:
        started, signals = time.monotonic(), signals_taken()
        try:
            return session()
        except Exception as e:
            if (not patience or getattr(args, "storage", None) is None or _local_study_file(args) is not None
                    or signals_taken() != signals):
                raise
            # (a session that meets the server gone at its start reports it as a setting that does
            # not work: "check the URL". Run again in an outage, that is the outage; at the first
            # start too where the server did not answer (refused, timed out, starting up), as for a
            # worker started beside its database: it exited 2 at once, --db-wait or not. A name
            # that does not resolve, a password refused, a database missing: a mistake, said at once.)
            cause = e.__context__ if isinstance(e, BudgetNASError) else None
            lost = e if _lost_database(e) else cause if (
                cause is not None and _lost_database(cause) and (outage is not None or _not_answering(cause))) else None
            if lost is None:
                raise
            first_start = outage is None and lost is cause
            now = time.monotonic()
            if outage is None or now - started > OUTAGE_SETTLED:  # (a session ran a while: a new outage)
                outage, pause = now, 1.0
            left = patience - (now - outage)
            if left <= 0:  # (given up: the database's error, exit 75, not a rerun's "check the URL")
                raise lost
            print(f"warning: the study's database could not be reached or written ({first_line(e.__cause__ or lost)}); "
                  f"waiting up to {seconds_text(left)} for it (--db-wait), then this {args.command} "
                  + ("starts (Ctrl-C stops it; if the URL is wrong, stop it and check its host and port)" if first_start
                     else "goes on, the running trial from its checkpoint (Ctrl-C stops it: the same command "
                          "resumes it later)"), file=sys.stderr)
            # SIGTERM while waiting (a machine shut down, a spot instance reclaimed): nothing to save
            def stop(signum: int, frame: Any) -> None:
                print(f"{signal.Signals(signum).name}: stopped while waiting for the study's database; run the "
                      "same command to resume", file=sys.stderr)
                raise SystemExit(128 + signum)

            old = signal.signal(signal.SIGTERM, stop) if _main_thread() else None
            try:
                time.sleep(min(pause, left))  # (not at once, even if the server answers: see above)
                pause = min(pause * 2, 15.0)
                back = _wait_for_database(args.storage, patience - (time.monotonic() - outage))
            finally:
                if old is not None:
                    signal.signal(signal.SIGTERM, old)
            if not back or time.monotonic() - outage >= patience:  # (sessions run within --db-wait only)
                raise lost
            print(f"the study's database answers again, {seconds_text(time.monotonic() - outage)} into the "
                  f"outage: the {args.command} goes on", file=sys.stderr)


def _main_thread() -> bool:
    """Whether this is the main thread (the only one that may set signal handlers)."""
    import threading

    return threading.current_thread() is threading.main_thread()


def _wait_for_database(storage: str, patience: float) -> bool:
    """Whether the database at ``storage`` answers a query within ``patience`` seconds (tried at
    growing intervals, 1 s to 15 s)."""
    import time

    import sqlalchemy as sa

    from budgetnas.search.ledger import connect_args
    from budgetnas.search.study import storage_url

    url = storage_url(Path("."), storage)
    deadline = time.monotonic() + patience
    pause = 1.0
    while True:
        left = deadline - time.monotonic()
        # (a server that drops packets would hold a connection attempt for minutes: bounded)
        args = connect_args(url)
        if "connect_timeout" in args:
            args["connect_timeout"] = max(1, min(int(left), int(args["connect_timeout"])))  # type: ignore[call-overload]
        engine = sa.create_engine(url, poolclass=sa.pool.NullPool, connect_args=args)
        try:
            with engine.connect() as c:
                c.execute(sa.text("select 1"))
            return True
        except sa.exc.SQLAlchemyError:
            pass
        finally:
            engine.dispose()
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        time.sleep(min(pause, left))
        pause = min(pause * 2, 15.0)


# What a server that is down, starting or out of reach says at connection (libpq's words): not a
# wrong name (that does not resolve), password or database, which waiting would not mend.
NOT_ANSWERING = ("connection refused", "timeout expired", "timed out", "no route to host", "network is unreachable",
                 "the database system is starting up", "the database system is shutting down",
                 "server closed the connection unexpectedly", "the database system is in recovery mode")


def _not_answering(e: BaseException) -> bool:
    """Whether ``e`` says the database server did not answer (down, starting, out of reach)."""
    return any(words in str(e).lower() for words in NOT_ANSWERING)


def _lost_database(e: BaseException) -> bool:
    """Whether ``e`` is the study's database failing (not a mistake in what was asked)."""
    from budgetnas.search.ledger import database_failed

    return database_failed(e)


if __name__ == "__main__":
    sys.exit(main())
