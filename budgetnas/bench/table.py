"""NAS-Bench-201 as a table: load it, query 15,625 pre-trained cells, pick the top-k under limits.

Loading the compact CSV takes well under a second and does not import torch; costs (params, FLOPs)
and the canonical form come from :class:`budgetnas.spaces.NB201Space` (imported when first needed).

Two notions of "the same cell":

- :meth:`NB201Table.unique_str` is the benchmark's own string (AutoDL's ``to_unique_str``),
  6,466 distinct values over the table; use it to compare with papers and the official API.
- :meth:`NB201Table.canonical` is :func:`budgetnas.spaces.nb201.canonical_form`, which does not
  depend on the order of terms and merges cells whose differences feed only all-zero nodes or are
  sums under average pooling. It also keeps apart what the benchmark's string merges: a conv
  reached twice through a shared node (cell 3599) is not two convs with their own weights (cell 0),
  and a conv on an all-zero node adds its BN's learned shift (where no conv in the same sum takes
  it in). It finds 5,083 classes; 801 of them join several benchmark strings, and 479 benchmark
  strings are split (430 by shared convs, 49 by learned shifts). De-duplication and the evaluation
  cache use it (before 2026-12-06 it kept a shift beside a conv, and found 5,204 classes).

Example::

    from budgetnas.bench import load_nb201
    table = load_nb201("../shared/data/nb201/nats_tss_200ep_test.csv")
    table.query("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|",
                "cifar100")                                  # -> 73.51 (index 9930, best on CIFAR-100)
    table.top_k(5, dataset="cifar100", max_params=0.5e6)     # best 5 distinct cells under 0.5M params
"""

from __future__ import annotations

import itertools
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

import numpy as np

from budgetnas.bench._cell import OP_CODE, format_cell, unique_str
from budgetnas.bench._readers import (
    DATASETS,
    HOW_TO_GET,
    METRICS,
    N_CELLS,
    RawTable,
    read_any,
    write_csv,
)
from budgetnas.errors import ArchitectureError, ConfigError, DataError

if TYPE_CHECKING:
    from budgetnas.spaces.base import Cost

ArchLike = Union[str, Sequence[str], int]

ENV_VAR = "BUDGETNAS_NB201"

_DATASET_ALIASES = {
    "cifar10": "cifar10", "cifar-10": "cifar10",
    "cifar100": "cifar100", "cifar-100": "cifar100",
    "imagenet16-120": "ImageNet16-120", "imagenet-16-120": "ImageNet16-120",
    "imagenet16": "ImageNet16-120", "imagenet": "ImageNet16-120",
}
# The benchmark's networks: classes and input size of each dataset (NB201 counts FLOPs at these).
DATASET_CLASSES = {"cifar10": 10, "cifar100": 100, "ImageNet16-120": 120}
DATASET_RESOLUTION = {"cifar10": 32, "cifar100": 32, "ImageNet16-120": 16}

_METRIC_HELP = {
    "test_accuracy": "test accuracy (%) after 200 epochs, mean over seeds",
    "valid_accuracy": "validation accuracy (%) after 200 epochs, mean over seeds",
    "train_time": "seconds to train 200 epochs (the runs behind valid_accuracy)",
    "test_accuracy_12ep": "test accuracy (%) after the 12-epoch schedule",
    "valid_accuracy_12ep": "validation accuracy (%) after the 12-epoch schedule",
    "train_time_12ep": "seconds to train the 12-epoch schedule",
}


def normalize_dataset(name: str, available: Sequence[str] = DATASETS) -> str:
    """The canonical dataset name ("cifar10", "cifar100", "ImageNet16-120") for a user's spelling.

    Example: ``normalize_dataset("CIFAR-100") == "cifar100"``.
    """
    key = str(name).strip().lower().replace("_", "-")
    if key in ("cifar10-valid", "cifar-10-valid"):
        # (it read as cifar10, whose test accuracy is of networks trained on train+valid: another run)
        raise DataError(f"{name!r} is not a dataset of its own here: the table's cifar10 has NB201's "
                        "cifar10-valid runs (trained on the train half) as valid_accuracy and train_time, and "
                        "its cifar10 runs (trained on train+valid) as test_accuracy; give cifar10, with the "
                        "metric you want")
    canon = _DATASET_ALIASES.get(key)
    if canon is None or canon not in available:
        raise DataError(f"unknown dataset {name!r}; this table has {', '.join(available)} "
                        "(also accepted: cifar-10, cifar-100, imagenet16-120, imagenet)")
    return canon


def tie_float_noise(x: np.ndarray) -> np.ndarray:
    """``x`` with values that differ only by float noise made equal, so that ranks tie them: the
    benchmark stores equal accuracies as, e.g., 70.29333333333333 and 70.29333326822916 (means of
    float32 results). Values within 1e-6 of each other (relative, as ``_pick_reverse`` reads chance
    level) are one value; distinct accuracies differ far more (100/30000 of a percent point: 3 seeds of
    10,000 CIFAR test images)."""
    x = np.array(x, dtype=float)
    order = np.argsort(x, kind="mergesort")
    for a, b in itertools.pairwise(order):
        if x[b] - x[a] <= 1e-6 * max(1.0, abs(x[a])):
            x[b] = x[a]
    return x


class NB201Table:
    """The 15,625 NB201 cells with their benchmark metrics, indexed as in the benchmark.

    Build one with :func:`load_nb201`. Architectures can be given as the cell string, a list/tuple
    of six ops in :data:`budgetnas.spaces.nb201.EDGES` order, or the benchmark index.

    Example::

        table = load_nb201()                      # from $BUDGETNAS_NB201
        i = table.index("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|")
        i, table.query(i, "cifar10"), table.cost(i).params   # (6111, 94.37..., 1073466)
        table.query(["nor_conv_3x3"] * 6, "ImageNet16-120")  # by op list, in EDGES order
    """

    def __init__(self, raw: RawTable) -> None:
        if len(raw.ops) != N_CELLS:
            raise DataError(f"an NB201 table needs {N_CELLS:,} cells, got {len(raw.ops):,}")
        self.source: str = raw.source
        self.path: str = raw.path
        self.n_evaluated: int = raw.n_evaluated
        self._ops: list[tuple[str, ...]] = list(raw.ops)
        self._strs: list[str] = [format_cell(o) for o in self._ops]
        self._str2idx: dict[str, int] = {s: i for i, s in enumerate(self._strs)}
        self._ops2idx: dict[tuple[str, ...], int] = {o: i for i, o in enumerate(self._ops)}
        self._columns: dict[tuple[str, str], np.ndarray] = {}
        for key, col in raw.columns.items():
            col = np.ascontiguousarray(col, dtype=np.float64)
            if np.isfinite(col).any():
                col.flags.writeable = False
                self._columns[key] = col
        self.datasets: tuple[str, ...] = tuple(d for d in DATASETS
                                               if any(k[0] == d for k in self._columns))
        self._col_cache: dict[tuple[str, ...], np.ndarray] = {}  # (and ("tied", dataset, metric))
        self._codes: np.ndarray | None = None
        self._canonical: list[str] | None = None
        self._cost_cache: dict[tuple[Any, ...], tuple[np.ndarray, np.ndarray]] = {}

    def __len__(self) -> int:
        return len(self._ops)

    def __repr__(self) -> str:
        return f"NB201Table(source={self.source!r}, path={self.path!r}, datasets={self.datasets})"

    # -- architectures --------------------------------------------------------------------------
    def arch(self, index: int) -> tuple[str, ...]:
        """The six ops of cell ``index`` in NB201 edge order."""
        return self._ops[self._check_index(index)]

    def arch_str(self, index: int) -> str:
        """The benchmark's string of cell ``index``, e.g. ``|nor_conv_3x3~0|+|...|``."""
        return self._strs[self._check_index(index)]

    def index(self, arch: ArchLike) -> int:
        """The benchmark index of a cell string, op sequence or index (checked).

        Example::

            table.index("|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|")  # 0
            table.index(["nor_conv_3x3"] * 6), table.index(6111)
        """
        if isinstance(arch, str):
            i = self._str2idx.get(arch)
            return i if i is not None else self._index_of_text(arch)
        if isinstance(arch, (int, np.integer)) and not isinstance(arch, (bool, np.bool_)):
            return self._check_index(arch)
        if isinstance(arch, (tuple, list)):
            i = self._ops2idx.get(tuple(arch))
            if i is not None:
                return i
            from budgetnas.spaces.nb201 import NB201Space

            return self._ops2idx[NB201Space().from_ops(arch)]  # raises naming the bad op
        raise ArchitectureError(
            f"an NB201 cell is a cell string, a list of 6 op names or a benchmark index, got "
            f"{type(arch).__name__} {arch!r}")

    def _check_index(self, index: Any) -> int:
        if isinstance(index, (bool, np.bool_)) or not isinstance(index, (int, np.integer)):
            raise ArchitectureError(f"a benchmark index is an int, got {type(index).__name__} {index!r}")
        if not 0 <= index < N_CELLS:
            raise ArchitectureError(f"benchmark index {index} is out of range; NB201 indices run "
                                    f"from 0 to {N_CELLS - 1}")
        return int(index)

    def _index_of_text(self, text: str) -> int:
        i = self._str2idx.get(text.strip())
        if i is not None:
            return i
        from budgetnas.spaces.nb201 import NB201Space

        return self._ops2idx[NB201Space().parse(text)]  # raises naming the bad token

    # -- metrics ----------------------------------------------------------------------------------
    def metrics(self, dataset: str) -> tuple[str, ...]:
        """The metrics this file has for ``dataset`` (CSV: only ``test_accuracy``)."""
        d = normalize_dataset(dataset, self.datasets)
        return tuple(m for m in METRICS if (d, m) in self._columns)

    def has(self, dataset: str, metric: str) -> bool:
        """Whether the loaded file has ``metric`` for ``dataset``."""
        return (normalize_dataset(dataset, self.datasets), metric) in self._columns

    def test_oracle_reason(self, dataset: str) -> str:
        """Why a ranking of ``dataset`` by a test metric is one (said beside it by `bench top`
        and `finetune`): the user chose it, or the file has no validation accuracy to rank by."""
        return ("you chose a test metric" if self.has(dataset, "valid_accuracy") else
                "the table has no validation accuracy")

    def column(self, dataset: str, metric: str = "test_accuracy") -> np.ndarray:
        """All 15,625 values of one metric (float64, read-only; NaN where the file has no result).

        Example: ``table.column("cifar100").argmax()`` is the best cell's index.
        """
        cached = self._col_cache.get((dataset, metric))
        if cached is not None:
            return cached
        d = normalize_dataset(dataset, self.datasets)
        col = self._columns.get((d, metric))
        if col is None:
            raise DataError(self._missing_metric(d, metric))
        self._col_cache[(dataset, metric)] = col
        return col

    def tied_column(self, dataset: str, metric: str = "test_accuracy") -> np.ndarray:
        """:meth:`column` with values that differ only by float noise made one (:func:`tie_float_noise`):
        what ranks and ties are read from. 10,268 neighbouring CIFAR-100 values of NB201 differ only
        so: ranked exactly, cells of one accuracy got different ranks and none was tied (a review,
        2026-12-07)."""
        key = ("tied", dataset, metric)
        cached = self._col_cache.get(key)
        if cached is None:
            cached = tie_float_noise(self.column(dataset, metric))
            cached.setflags(write=False)
            self._col_cache[key] = cached
        return cached

    def _missing_metric(self, d: str, metric: str) -> str:
        have = self.metrics(d)
        if metric not in METRICS:
            return (f"unknown metric {metric!r}; metrics are {', '.join(METRICS)}; this file "
                    f"({self.source}: {self.path}) has {', '.join(have)} for {d}")
        where = ("the official NAS-Bench-201 .pth (v1_1) and NATS-Bench topology (NATS-tss-v1_0-3ffb9) "
                 "files have validation accuracy, training times and 12-epoch results; load one with "
                 "load_nb201(path) (CLI: --table PATH)")
        return (f"{metric} ({_METRIC_HELP[metric]}) is not in the loaded file ({self.source}: "
                f"{self.path}), which has only {', '.join(have)} for {d}; {where}")

    def query(self, arch: ArchLike, dataset: str = "cifar10", metric: str = "test_accuracy") -> float:
        """One metric of one cell.

        Example: ``table.query(6111, "cifar10")`` is cell 6111's mean CIFAR-10 test accuracy (%).
        """
        col = self._col_cache.get((dataset, metric))
        if col is None:
            col = self.column(dataset, metric)
        if type(arch) is int and 0 <= arch < N_CELLS:
            return float(col[arch])
        if type(arch) is str:
            i = self._str2idx.get(arch)
            if i is not None:
                return float(col[i])
        return float(col[self.index(arch)])

    def search_metric(self, dataset: str) -> str:
        """The metric a search should rank by: validation accuracy when the file has it, else test."""
        return "valid_accuracy" if self.has(dataset, "valid_accuracy") else "test_accuracy"

    def is_test_oracle(self, dataset: str) -> bool:
        """True when searching would use test accuracy (a "test oracle" run: label it so)."""
        return self.search_metric(dataset) == "test_accuracy"

    # -- identity of cells --------------------------------------------------------------------
    def unique_str(self, arch: ArchLike) -> str:
        """The benchmark's isomorphism string (AutoDL's ``to_unique_str(consider_zero=True)``)."""
        return unique_str(self._ops[self.index(arch)])

    def canonical(self, arch: ArchLike) -> str:
        """Our order-independent canonical form (``NB201Space.canonical``); merges more cells."""
        i = self.index(arch)
        if self._canonical is not None:
            return self._canonical[i]
        from budgetnas.spaces.nb201 import canonical_form

        # (one cell's alone: all 15,625 took 0.35 s, which `bench query` paid for one: review F)
        return canonical_form(self._ops[i])  # type: ignore[arg-type]

    def _all_canonical(self) -> list[str]:
        if self._canonical is None:
            from budgetnas.spaces.nb201 import canonical_form

            self._canonical = [canonical_form(o) for o in self._ops]  # type: ignore[arg-type]
        return self._canonical

    # -- costs ------------------------------------------------------------------------------------
    def cost(self, arch: ArchLike, *, in_channels: int = 3, num_classes: int = 10, C: int = 16,
             N: int = 5, resolution: int = 32) -> Cost:
        """Params and FLOPs of the cell's network as our builder makes it (``NB201Space.cost``).

        Example: ``table.cost(6111).params == 1073466`` (NB201's published 1.073466M).
        """
        from budgetnas.spaces.nb201 import NB201Space

        ops: Any = self._ops[self.index(arch)]
        return NB201Space(C=C, N=N).cost(ops, in_channels=in_channels, num_classes=num_classes,
                                         resolution=resolution)

    def params(self, *, in_channels: int = 3, num_classes: int = 10, C: int = 16, N: int = 5) -> np.ndarray:
        """Parameter counts of all 15,625 networks (int64, read-only), in index order."""
        return self._costs(in_channels, num_classes, C, N, 32)[0]

    def flops(self, *, in_channels: int = 3, num_classes: int = 10, C: int = 16, N: int = 5,
              resolution: int = 32) -> np.ndarray:
        """NB201-style FLOPs (multiply-adds, ``Cost.flops_nb201``) of all 15,625 networks (int64)."""
        return self._costs(in_channels, num_classes, C, N, resolution)[1]

    def _costs(self, in_channels: int, num_classes: int, C: int, N: int,
               resolution: int) -> tuple[np.ndarray, np.ndarray]:
        key = (in_channels, num_classes, C, N, resolution)
        hit = self._cost_cache.get(key)
        if hit is not None:
            return hit
        from budgetnas.spaces.nb201 import NB201Space

        space = NB201Space(C=C, N=N)
        codes = self.codes()
        n3 = (codes == OP_CODE["nor_conv_3x3"]).sum(1)
        n1 = (codes == OP_CODE["nor_conv_1x1"]).sum(1)
        # The cost depends only on how many 3x3 and 1x1 convs the cell has: price each mix once
        # with the builder's own formula, then look it up for every cell.
        p_tab = np.zeros((7, 7), dtype=np.int64)
        f_tab = np.zeros((7, 7), dtype=np.int64)
        for a in range(7):
            for b in range(7 - a):
                ops = ("nor_conv_3x3",) * a + ("nor_conv_1x1",) * b + ("none",) * (6 - a - b)
                c = space.cost(ops, in_channels=in_channels, num_classes=num_classes,  # type: ignore[arg-type]
                               resolution=resolution)
                p_tab[a, b], f_tab[a, b] = c.params, c.flops_nb201
        params, flops = p_tab[n3, n1], f_tab[n3, n1]
        params.flags.writeable = False
        flops.flags.writeable = False
        self._cost_cache[key] = (params, flops)
        return params, flops

    def codes(self) -> np.ndarray:
        """Op codes (index into ``NB201_OPS``) of all cells, shape (15625, 6), uint8, read-only."""
        if self._codes is None:
            codes = np.array([[OP_CODE[o] for o in ops] for ops in self._ops], dtype=np.uint8)
            codes.flags.writeable = False
            self._codes = codes
        return self._codes

    # -- top-k ------------------------------------------------------------------------------------
    def top_k(self, k: int, *, dataset: str = "cifar10", metric: str | None = None,
              max_params: float | None = None, max_flops: float | None = None, in_channels: int = 3,
              num_classes: int | None = None, C: int = 16, N: int = 5, resolution: int | None = None,
              dedupe: bool = True, diverse: int = 0) -> list[dict[str, Any]]:
        """The ``k`` best cells by ``metric`` that fit the limits, best first.

        Limits apply to the network as it will be built (``in_channels``, ``num_classes``, ``C``,
        ``N``, ``resolution``); by default the benchmark dataset's own network: its classes (10,
        100 or 120) and input size (32, or 16 for ImageNet16-120, where NB201 counts its FLOPs at
        16x16). ``dedupe`` keeps only the best cell of each canonical class;
        ``diverse=d`` keeps a cell only if it differs from every cell already chosen on at least
        ``d`` of the 6 edges (greedy, so fewer than ``k`` may come back). Cells without a value
        are skipped. Each result: ``index``, ``arch`` (string), ``value``, ``params``, ``flops``,
        ``canonical``.

        Example::

            table.top_k(50, dataset="cifar100", max_params=0.5e6)
            table.top_k(10, dataset="cifar10", max_flops=50e6, num_classes=7, in_channels=1, diverse=2)
        """
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise ConfigError(f"k must be a positive integer, got {k!r}")
        if isinstance(diverse, bool) or not isinstance(diverse, (int, np.integer)) or not 0 <= diverse <= 6:
            raise ConfigError(f"diverse is the minimum number of differing edges between chosen cells, "
                              f"0 (off) to 6; got {diverse!r}")
        for name, cap in (("max_params", max_params), ("max_flops", max_flops)):
            if cap is not None and (isinstance(cap, bool) or not isinstance(cap, (int, float, np.number))
                                    or not cap > 0 or math.isnan(cap)):
                raise ConfigError(f"{name} must be a positive number (a count, e.g. 0.5e6), got {cap!r}")
        metric = metric or self.search_metric(dataset)
        values = self.column(dataset, metric)
        dataset = normalize_dataset(dataset, self.datasets)
        num_classes = DATASET_CLASSES[dataset] if num_classes is None else num_classes
        resolution = DATASET_RESOLUTION[dataset] if resolution is None else resolution
        params = self.params(in_channels=in_channels, num_classes=num_classes, C=C, N=N)
        flops = self.flops(in_channels=in_channels, num_classes=num_classes, C=C, N=N,
                           resolution=resolution)
        ok = np.isfinite(values)
        if max_params is not None:
            ok &= params <= max_params
        if max_flops is not None:
            ok &= flops <= max_flops
        candidates = np.flatnonzero(ok)
        if candidates.size == 0:
            raise ConfigError(self._impossible(values, params, flops, max_params, max_flops,
                                               f"C={C}, N={N}, {in_channels} input channels, "
                                               f"{num_classes} classes, {resolution}x{resolution} input"))
        # higher is better for accuracies, lower for times; ties (float noise too) by index
        sign = 1.0 if metric.startswith("train_time") else -1.0
        tied = self.tied_column(dataset, metric)
        order = candidates[np.lexsort((candidates, sign * tied[candidates]))]
        canon = self._all_canonical() if dedupe else None
        codes = self.codes() if diverse else None
        seen: set[str] = set()
        chosen: list[int] = []
        for i in order:
            i = int(i)
            if canon is not None:
                if canon[i] in seen:
                    continue
            if codes is not None and chosen:
                if int(((codes[chosen] != codes[i]).sum(1)).min()) < diverse:
                    continue
            if canon is not None:
                seen.add(canon[i])
            chosen.append(i)
            if len(chosen) == k:
                break
        canon_all = self._all_canonical()
        return [{"index": i, "arch": self._strs[i], "value": float(values[i]),
                 "params": int(params[i]), "flops": int(flops[i]), "canonical": canon_all[i]}
                for i in chosen]

    def _impossible(self, values: np.ndarray, params: np.ndarray, flops: np.ndarray,
                    max_params: float | None, max_flops: float | None, network: str) -> str:
        finite = np.isfinite(values)
        if not finite.any():
            return "no cell has a value for this metric in the loaded file"
        cells = np.flatnonzero(finite)
        small_p = int(cells[np.argmin(params[cells])])
        small_f = int(cells[np.argmin(flops[cells])])
        parts = []
        if max_params is not None and params[small_p] > max_params:
            parts.append(f"max_params={max_params:,.6g} but the smallest cell has {int(params[small_p]):,} "
                         f"parameters ({self._strs[small_p]})")
        if max_flops is not None and flops[small_f] > max_flops:
            parts.append(f"max_flops={max_flops:,.6g} but the cheapest cell needs {int(flops[small_f]):,} "
                         f"FLOPs ({self._strs[small_f]})")
        if not parts:
            parts.append(f"each limit alone can be met (smallest cell: {int(params[small_p]):,} params; "
                         f"cheapest: {int(flops[small_f]):,} FLOPs) but no cell meets both")
        return (f"no NB201 cell satisfies the limits for the network as built ({network}): "
                + "; ".join(parts) + "; raise the limits, or lower C/N")

    # -- export -----------------------------------------------------------------------------------
    def save_csv(self, path: str | os.PathLike[str]) -> Path:
        """Write the table as the compact CSV, with every metric it has as extra columns.

        Reading the official files takes seconds to minutes; save once, then load the CSV.

        Example: ``load_nb201("NATS-tss-v1_0-3ffb9-simple", trust_pickle=False).save_csv("nb201.csv")``
        """
        p = Path(path)
        write_csv(p, self._ops, self._strs, [unique_str(o) for o in self._ops], self._columns)
        return p


def load_nb201(path: str | os.PathLike[str] | None = None, *, trust_pickle: bool = False) -> NB201Table:
    """Load an NB201 table from the compact CSV or the official NAS-Bench-201 / NATS-Bench files.

    ``path`` is a CSV (``ArchitectureString`` + test accuracy columns), a
    ``NAS-Bench-201-v1_[01]-*.pth``, a ``NATS-tss-v1_0-3ffb9.pickle.pbz2`` or a
    ``NATS-tss-v1_0-3ffb9-simple/`` folder; without it, ``$BUDGETNAS_NB201``. The official files
    are pickles: they are read with a restricted unpickler (``.pth``: ``torch.load(weights_only=True)``)
    unless ``trust_pickle=True``, which runs whatever the file asks and is only for files you
    downloaded yourself.

    Example::

        table = load_nb201("../shared/data/nb201/nats_tss_200ep_test.csv")
        table = load_nb201()   # BUDGETNAS_NB201=/data/NAS-Bench-201-v1_1-096897.pth
    """
    if path is None:
        env = os.environ.get(ENV_VAR, "").strip()
        if not env:
            raise DataError(f"no NB201 benchmark file given: looked for a path argument (none; CLI "
                            f"--table PATH) and the environment variable {ENV_VAR} (not set). {HOW_TO_GET}")
        p, origin = Path(env).expanduser(), f"from ${ENV_VAR}"
    else:
        p, origin = Path(path).expanduser(), "given as the path"
    if not p.exists():
        raise DataError(f"no NB201 benchmark file at {p} ({origin}; resolved to {p.resolve()}). {HOW_TO_GET}")
    return NB201Table(read_any(p, trust_pickle))
