"""``budgetnas bench top``: the best NB201 cells under parameter/FLOP limits, from the table.

The CLI wires these two functions onto its ``bench top`` sub-command::

    p = bench_sub.add_parser("top", help="best NB201 cells under limits, from the benchmark table")
    add_top_arguments(p)
    p.set_defaults(func=top_command)

Errors a user can cause raise :class:`~budgetnas.errors.BudgetNASError`, which the CLI prints.

Example (shell)::

    budgetnas bench top --dataset cifar100 --k 50 --max-params 0.5e6 --table nats_tss_200ep_test.csv
    budgetnas bench top --dataset cifar10 --k 12 --max-params 300k --classes 10 --in-channels 1 -C 16 -N 5 --resolution 28 --json
"""

from __future__ import annotations

import argparse
import json
import re
from typing import Any

from budgetnas.bench.table import DATASET_CLASSES, DATASET_RESOLUTION, load_nb201, normalize_dataset

_SUFFIX = {"": 1.0, "k": 1e3, "m": 1e6, "g": 1e9}


def parse_count(text: str) -> float:
    """A positive count from ``500000``, ``0.5e6``, ``500k``, ``0.5M`` or ``2G`` (for argparse)."""
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*([kKmMgG]?)\s*", text)
    if not m or float(m.group(1)) * _SUFFIX[m.group(2).lower()] <= 0:
        raise argparse.ArgumentTypeError(f"not a positive count: {text!r}; use e.g. 0.5e6, 500k or 0.5M")
    return float(m.group(1)) * _SUFFIX[m.group(2).lower()]


def add_table_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags that say which benchmark file to read."""
    parser.add_argument("--table", default=None, metavar="PATH",
                        help="benchmark file: the compact CSV, NAS-Bench-201 .pth or NATS-tss file/folder "
                             "(default: $BUDGETNAS_NB201)")
    parser.add_argument("--trust-pickle", action="store_true",
                        help="allow the official pickle files to load arbitrary objects (runs code; only "
                             "for files you downloaded yourself)")


def add_top_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the ``bench top`` flags to ``parser`` (returned for chaining)."""
    parser.add_argument("--dataset", default="cifar10",
                        help="benchmark dataset to rank on: cifar10, cifar100 or ImageNet16-120 (default cifar10)")
    parser.add_argument("--k", type=int, default=10, help="how many cells (default 10)")
    parser.add_argument("--metric", default=None,
                        help="rank by this metric (default: valid_accuracy when the file has it, else "
                             "test_accuracy, which is a 'test oracle')")
    parser.add_argument("--max-params", type=parse_count, default=None, metavar="COUNT",
                        help="keep cells whose network has at most COUNT parameters (e.g. 0.5e6, 500k)")
    parser.add_argument("--max-flops", type=parse_count, default=None, metavar="COUNT",
                        help="keep cells needing at most COUNT FLOPs per image (NB201's multiply-adds, e.g. 50M)")
    net = parser.add_argument_group("the network the limits apply to (your data, your width/depth)")
    net.add_argument("--classes", type=int_at_least(2), default=None,
                     help="number of classes (default: the benchmark dataset's: 10, 100 or 120)")
    net.add_argument("--in-channels", type=int_at_least(1), default=3, help="input channels (default 3)")
    net.add_argument("-C", dest="C", type=int_at_least(1), default=16, help="channels of the first stage (default 16)")
    net.add_argument("-N", dest="N", type=int_at_least(1), default=5, help="cells per stage (default 5)")
    net.add_argument("--resolution", type=int_at_least(4), default=None,
                     help="input height/width (default: the benchmark dataset's, 32 or 16 for ImageNet16-120)")
    parser.add_argument("--diverse", type=int, default=0, metavar="D",
                        help="chosen cells differ pairwise on at least D of 6 edges (default 0: off)")
    parser.add_argument("--dedupe", action=argparse.BooleanOptionalAction, default=True,
                        help="keep one cell per canonical class (default on)")
    add_table_arguments(parser)
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    return parser


def int_at_least(low: int) -> Any:
    """An argparse type: a whole number >= ``low``, or a one-line reason."""
    what = "a positive whole number" if low == 1 else f"a whole number >= {low}"

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"expected {what}, got {value}")
        return value
    return parse


def top_command(args: argparse.Namespace) -> int:
    """Print the top-k cells for the parsed ``bench top`` arguments; returns the exit status 0."""
    table = load_nb201(args.table, trust_pickle=getattr(args, "trust_pickle", False))
    dataset = normalize_dataset(args.dataset, table.datasets)
    if args.classes is None:
        args.classes = DATASET_CLASSES[dataset]
    if args.resolution is None:
        args.resolution = DATASET_RESOLUTION[dataset]
    metric = args.metric or table.search_metric(dataset)
    rows = table.top_k(args.k, dataset=dataset, metric=metric, max_params=args.max_params,
                       max_flops=args.max_flops, in_channels=args.in_channels, num_classes=args.classes,
                       C=args.C, N=args.N, resolution=args.resolution, dedupe=args.dedupe,
                       diverse=args.diverse)
    oracle = metric.startswith("test_accuracy")
    network = {"C": args.C, "N": args.N, "in_channels": args.in_channels, "num_classes": args.classes,
               "resolution": args.resolution}
    if args.json:
        print(json.dumps({
            "table": {"source": table.source, "path": table.path},
            "dataset": dataset, "metric": metric, "test_oracle": oracle, "network": network,
            "max_params": args.max_params, "max_flops": args.max_flops, "dedupe": args.dedupe,
            "diverse": args.diverse, "k": args.k, "results": rows,
        }, indent=2))
        return 0
    why = table.test_oracle_reason(dataset) if oracle else None
    print(_format(rows, table.source, table.path, dataset, metric, why, network, args))
    return 0


def _format(rows: list[dict[str, Any]], source: str, path: str, dataset: str, metric: str,
            oracle: str | None, network: dict[str, int], args: argparse.Namespace) -> str:
    """``oracle``: why the ranking is by test accuracy (None when it is not)."""
    limits = [f"params <= {args.max_params:,.0f}" if args.max_params else "",
              f"FLOPs <= {args.max_flops:,.0f}" if args.max_flops else ""]
    lines = [
        f"NB201 top {args.k} on {dataset} by {metric} ({source}: {path})",
        f"network: C={network['C']}, N={network['N']}, {network['in_channels']} input channels, "
        f"{network['num_classes']} classes, {network['resolution']}x{network['resolution']} input; "
        f"limits: {', '.join(x for x in limits if x) or 'none'}; "
        f"dedupe: {'canonical' if args.dedupe else 'off'}; diverse: {args.diverse or 'off'}",
    ]
    if oracle:
        lines.append(f"TEST ORACLE: ranked by test accuracy because {oracle}; "
                     "fine for choosing cells to fine-tune, not for reporting a search result")
    if len(rows) < args.k:
        what = f"{len(rows):,} {'distinct cells (one per canonical class)' if args.dedupe else 'cells'}"
        if any(limits) or args.diverse:
            lines.append(f"note: only {what} meet the limits" + (" and the diversity requirement" if args.diverse else ""))
        else:  # (said of a --k beyond the table, which has no limits to blame)
            lines.append(f"note: the table holds only {what}")
    lines.append("MFLOPs: millions of multiply-adds per image, as NAS-Bench-201 counts FLOPs")
    lines.append("")
    lines.append(f"{'rank':>4}  {'index':>5}  {metric:>14}  {'params':>10}  {'MFLOPs':>8}  cell")
    for r, row in enumerate(rows, 1):
        lines.append(f"{r:>4}  {row['index']:>5}  {row['value']:>14.2f}  {row['params']:>10,}  "
                     f"{row['flops'] / 1e6:>8.2f}  {row['arch']}")
    return "\n".join(lines)


def add_query_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the ``bench query`` arguments to ``parser`` (returned for chaining)."""
    parser.add_argument("cells", nargs="+", metavar="CELL",
                        help="a cell string (|nor_conv_3x3~0|+|...|, quote it for the shell) or a benchmark index")
    add_table_arguments(parser)
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    return parser


def query_cell(table: Any, cell: str | int) -> dict[str, Any]:
    """Everything the table says of one cell: its index and string, each metric the file has on
    each dataset with the cell's rank among the 15,625 (1 = best; tied cells share the best rank,
    ``tied`` says how many other cells have its value),
    the params and FLOPs of the benchmark's network for each dataset, and its identity keys."""
    import numpy as np

    # (a negative index is an index out of range, not a cell string with "3 nodes" missing)
    is_index = isinstance(cell, str) and re.fullmatch(r"\s*[+-]?\d+\s*", cell) is not None
    i = table.index(int(cell) if is_index else cell)
    datasets = {}
    for d in table.datasets:
        cost = table.cost(i, num_classes=DATASET_CLASSES[d], resolution=DATASET_RESOLUTION[d])
        metrics = {}
        for m in table.metrics(d):
            value = float(table.column(d, m)[i])
            if not np.isfinite(value):
                continue
            column = table.tied_column(d, m)  # (values apart by float noise alone are one value)
            at = column[i]
            better = column < at if m.startswith("train_time") else column > at
            metrics[m] = {"value": value, "rank": int(np.sum(better & np.isfinite(column))) + 1,
                          "tied": int(np.sum(column == at)) - 1,  # other cells of the same value
                          "of": int(np.sum(np.isfinite(column)))}  # the cells ranked (a partial file: fewer)
        # (the JSON said nothing of the test oracle the text names: review F, 2026-12-07)
        datasets[d] = {"metrics": metrics, "params": cost.params, "flops": cost.flops_nb201,
                       "test_oracle": table.is_test_oracle(d)}
    return {"index": i, "arch": table.arch_str(i), "canonical": table.canonical(i),
            "unique_str": table.unique_str(i), "datasets": datasets}


def query_command(args: argparse.Namespace) -> int:
    """Print what the table says of each cell given (``bench query``); returns the exit status 0."""
    table = load_nb201(args.table, trust_pickle=getattr(args, "trust_pickle", False))
    found = [query_cell(table, c) for c in args.cells]
    if args.json:
        print(json.dumps(found, indent=2))
        return 0
    for n, q in enumerate(found):
        if n:
            print()
        print(f"cell {q['index']}: {q['arch']}")
        print(f"  canonical: {q['canonical']}   (benchmark's string: {q['unique_str']})")
        for d, v in q["datasets"].items():
            shown = ", ".join(f"{m} {r['value']:.2f} (rank {r['rank']:,}"
                              + (f" of {r['of']:,}" if r["of"] < len(table) else "")
                              + (f", tied with {r['tied']:,} other{'s' if r['tied'] > 1 else ''})" if r.get("tied")
                                 else ")") for m, r in v["metrics"].items())
            print(f"  {d}: {shown or 'no results in this file'}; {v['params'] / 1e6:.3f}M params, "
                  f"{v['flops'] / 1e6:.1f}M FLOPs (multiply-adds)")
    # (said "among the table's 15,625 cells" of a file with results for 3: review F, 2026-12-07)
    print(f"(ranks among the table's {len(table):,} cells, or those of them with a value where a rank says 'of', "
          f"1 = best, cells of equal value sharing the best rank; from {table.source}: {table.path})")
    oracle = [d for d in table.datasets if table.is_test_oracle(d)]
    if oracle:
        print(f"(TEST ORACLE on {', '.join(oracle)}: the file has no validation accuracy there, so ranks are by "
              "test accuracy; choosing cells by them tunes on the test set)")
    return 0
