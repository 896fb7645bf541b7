"""Readers for the NB201 benchmark files: the compact CSV and the official NAS-Bench-201 / NATS-Bench
pickles. Each returns a :class:`RawTable` (op tuples in benchmark index order and metric columns).

What was checked against real files and what was reconstructed from the official source:

- **Compact CSV** (``nats_tss_200ep_test.csv``): verified on the real file (all 15,625 rows).
- **NATS-Bench topology, "simple" folder** (``NATS-tss-v1_0-3ffb9-simple/``: ``meta.pickle.pbz2``
  plus one ``{index:06d}.pickle.pbz2`` per cell): the layout, the pickled globals
  (``collections.OrderedDict``, ``numpy.core.multiarray.scalar``, ``numpy.dtype``) and the values
  were verified on the real sample files that D-X-Y/NATS-Bench ships in ``fake_torch_dir/``
  (the complete meta with all 15,625 strings, and cells 0, 11 and 284): their mean 200-epoch test
  accuracies equal the shared CSV's rows 0, 11 and 284 exactly, and ``meta_archs`` equals the
  CSV's ``ArchitectureString`` column in order. The full folder (15,625 cell files) was not
  available here.
- **NATS-Bench topology, single file** (``NATS-tss-v1_0-3ffb9.pickle.pbz2``): reconstructed from
  ``nats_bench/api_topology.py`` (a bz2 pickle of ``{"meta_archs", "arch2infos",
  "evaluated_indexes"}`` where ``arch2infos[index]`` is the same ``{"12": ..., "200": ...}`` dict as
  a simple-folder cell file); not checked on the real multi-GB file.
- **NAS-Bench-201** ``NAS-Bench-201-v1_0-e61699.pth`` / ``v1_1-096897.pth``: reconstructed from
  ``nas_201_api/api_201.py`` (a ``torch.save``\\d dict ``{"meta_archs", "arch2infos",
  "evaluated_indexes"}``, ``arch2infos[index] = {"less": 12-epoch, "full": 200-epoch}``); the
  per-run records are the same ``ArchResults`` / ``ResultsCount`` state dicts as in NATS-Bench.
  Not checked on a real file. v1_0's 12-epoch results exist only for ``cifar10-valid``.

Cross-check (2026-11-23, one-off, not a test: the official packages are not dependencies): the
official APIs from PyPI, ``nats_bench`` 1.8 (``NATStopology``) and ``nas-bench-201`` 2.1
(``NASBench201API``), ``get_more_info(..., is_random=False)`` give exactly our values for all 9
metrics x 2 schedules of the three real sample cells, and for the small files that
``tests/bench/test_bench_formats.py`` writes in each format (NATS folder and single file, NB201
``.pth`` legacy and zip, v1_1 and v1_0 style), including "missing" where we read NaN.

Every per-run record (``ResultsCount`` state dict) holds ``epochs``, ``eval_acc1es`` keyed
``"<set>@<epoch>"`` and ``train_times`` keyed by epoch. We take, as the official API's
``get_metrics(..., is_random=False)`` does, the mean over seeds at the last epoch:

====================  ==========================  ==============================================
metric                cifar10                     cifar100 / ImageNet16-120
====================  ==========================  ==============================================
test_accuracy         ``cifar10`` ``ori-test``    ``x-test``
valid_accuracy        ``cifar10-valid`` ``x-valid``  ``x-valid``
train_time (seconds)  ``cifar10-valid`` training  training of the same runs as ``x-valid``
====================  ==========================  ==============================================

``train_time`` is the total training time of the whole schedule (sum of ``train_times``) of the runs
that give the validation accuracy (NAS-Bench-201's ``simulate_train_eval`` also charges a
validation pass, and shows one random seed's accuracy, not the mean: see budgetnas.search.simulate);
``*_12ep`` are the same from the 12-epoch schedule (hp ``"12"`` / ``"less"``).

The pickles can run code when loaded, so by default they are read with a restricted unpickler
(plain containers, numbers, strings and numpy scalars only) and, for ``.pth``, with
``torch.load(weights_only=True)``; anything else needs ``trust_pickle=True``.
"""

from __future__ import annotations

import bz2
import codecs
import collections
import csv
import io
import hashlib
import math
import os
import pickle
import re
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from budgetnas.bench._cell import standard_strings
from budgetnas.errors import ArchitectureError, DataError, user_stacklevel

N_CELLS = 15625
DATASETS: tuple[str, ...] = ("cifar10", "cifar100", "ImageNet16-120")
METRICS: tuple[str, ...] = ("test_accuracy", "valid_accuracy", "train_time", "test_accuracy_12ep",
                            "valid_accuracy_12ep", "train_time_12ep")

HOW_TO_GET = (
    "Get one of: the compact CSV of test accuracies (developers: ../shared/data/nb201/"
    "nats_tss_200ep_test.csv beside the repository; it is the NATS-Bench export published in "
    "github.com/v-tao/nats-bench-landscape), the official NAS-Bench-201 file "
    "NAS-Bench-201-v1_1-096897.pth or -v1_0-e61699.pth (download link in "
    "github.com/D-X-Y/NAS-Bench-201's README), or the NATS-Bench topology files "
    "NATS-tss-v1_0-3ffb9-simple/ or NATS-tss-v1_0-3ffb9.pickle.pbz2 (github.com/D-X-Y/NATS-Bench); "
    "then pass its path or set BUDGETNAS_NB201=/path/to/it"
)
TRUST_HINT = (
    "pickles can run arbitrary code when loaded, so budgetnas only accepts plain data from them by "
    "default; if you trust this file (you downloaded it yourself from the official release), load "
    "it with trust_pickle=True (CLI: --trust-pickle)"
)

# -- the compact CSV ------------------------------------------------------------------------------
_CSV_DATASET = {"cifar10": "CIFAR10", "cifar100": "CIFAR100", "ImageNet16-120": "ImageNet"}
_CSV_METRIC = {
    "test_accuracy": "TestAccuracy200Epochs",
    "valid_accuracy": "ValidAccuracy200Epochs",
    "train_time": "TrainSeconds200Epochs",
    "test_accuracy_12ep": "TestAccuracy12Epochs",
    "valid_accuracy_12ep": "ValidAccuracy12Epochs",
    "train_time_12ep": "TrainSeconds12Epochs",
}
CSV_COLUMNS: dict[tuple[str, str], str] = {
    (d, m): _CSV_DATASET[d] + _CSV_METRIC[m] for d in DATASETS for m in METRICS
}
CSV_ARCH = "ArchitectureString"
CSV_UNIQUE = "UniqueString"
CSV_REQUIRED = (*(CSV_COLUMNS[(d, "test_accuracy")] for d in DATASETS), CSV_ARCH)


@dataclass
class RawTable:
    """What a reader found: cells in index order and float64 metric columns (NaN = no result)."""

    source: str
    path: str
    ops: list[tuple[str, ...]]
    columns: dict[tuple[str, str], np.ndarray] = field(default_factory=dict)
    n_evaluated: int = N_CELLS


def cells_from_strings(strings: Iterable[Any], where: Callable[[int], str]) -> list[tuple[str, ...]]:
    """Op tuples for the 15,625 cell strings; DataError naming the row of a bad or repeated one."""
    table = standard_strings()
    out: list[tuple[str, ...]] = []
    seen: dict[tuple[str, ...], int] = {}
    for i, s in enumerate(strings):
        ops = table.get(s) if isinstance(s, str) else None
        if ops is None:
            try:
                from budgetnas.spaces.nb201 import NB201Space

                ops = NB201Space().parse(s)
            except ArchitectureError as e:
                raise DataError(f"{where(i)}: {e}") from None
        j = seen.setdefault(ops, i)
        if j != i:
            raise DataError(f"{where(i)} repeats the cell of {where(j)} ({s!r}); each of the "
                            f"{N_CELLS:,} NB201 cells must appear exactly once")
        out.append(ops)
    return out


def read_csv(path: Path) -> RawTable:
    """The compact CSV: one row per benchmark index, accuracies in percent."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            rows = list(csv.reader(f))
    except UnicodeDecodeError:
        raise DataError(f"{path} is neither a CSV text file nor a NAS-Bench-201/NATS-Bench file "
                        f"(not UTF-8 text, not a .pth or .pickle.pbz2); {HOW_TO_GET}") from None
    except csv.Error as e:
        raise DataError(f"{path} is not a readable CSV file ({e})") from None
    if not rows:
        raise DataError(f"{path} is empty; expected a header with columns {', '.join(CSV_REQUIRED)}")
    header = [h.strip() for h in rows[0]]
    missing = [c for c in CSV_REQUIRED if c not in header]
    if missing:
        raise DataError(f"{path} lacks column(s) {', '.join(missing)}; it has {', '.join(header) or 'none'}. "
                        f"The NB201 CSV needs {', '.join(CSV_REQUIRED)} (UniqueString optional), one row "
                        "per benchmark index")
    data = rows[1:]
    while data and not any(c.strip() for c in data[-1]):
        data.pop()  # trailing blank lines
    if len(data) != N_CELLS:
        raise DataError(f"{path} has {len(data):,} data rows; NB201 has {N_CELLS:,} cells, one row "
                        "each, row i being benchmark index i")
    width = len(header)
    for i, row in enumerate(data):
        if len(row) != width:
            raise DataError(f"{path} row {i} (line {i + 2}) has {len(row)} fields, the header {width}")
    col = {name: j for j, name in enumerate(header)}

    def where(i: int) -> str:
        return f"{path} row {i} (line {i + 2}, column {CSV_ARCH})"

    ops = cells_from_strings((r[col[CSV_ARCH]] for r in data), where)
    if order_digest(ops) != NB201_ORDER_SHA256:
        # (sorted in a spreadsheet, say: row i is then not benchmark index i, and every index shown,
        # queried or kept in a run is another cell's; the cells' own results stay right)
        warnings.warn(f"{path}: its rows are not in NAS-Bench-201's index order, so the indices read from it "
                      "are row numbers of this file, not the benchmark's (a cell's results are still its own); "
                      "use the file in its original row order to quote benchmark indices", stacklevel=user_stacklevel())
    columns: dict[tuple[str, str], np.ndarray] = {}
    for key, name in CSV_COLUMNS.items():
        if name in col:
            columns[key] = _floats([r[col[name]] for r in data], path, name)
    best = max((float(np.nanmax(c)) for (_, m), c in columns.items() if "accuracy" in m and np.isfinite(c).any()),
               default=None)
    if best is not None and best <= 1.0:
        raise DataError(f"{path}: its accuracies are at most {best:g}: fractions, where the NB201 CSV holds "
                        "percent (94.37, not 0.9437); multiply them by 100")
    for (dataset, metric), c in columns.items():
        # (a value of 9999 ranked first, and an empty field was read silently as missing: a review,
        # 2026-12-06)
        bad = np.flatnonzero(~np.isnan(c) & ((c < 0) | (c > 100))) if "accuracy" in metric else []  # (inf too)
        if len(bad):
            i = int(bad[0])
            raise DataError(f"{path} row {i} (line {i + 2}): {CSV_COLUMNS[(dataset, metric)]} is {c[i]:g}, outside "
                            f"0 to 100 percent{f' (and {len(bad) - 1} more rows)' if len(bad) > 1 else ''}; "
                            "correct the file, or get the original")
        gaps = np.flatnonzero(~np.isfinite(c))
        if len(gaps):
            warnings.warn(f"{path}: {CSV_COLUMNS[(dataset, metric)]} is missing in {len(gaps):,} row(s) (first: row "
                          f"{int(gaps[0])}, line {int(gaps[0]) + 2}); those cells have no value for it", stacklevel=user_stacklevel())
    return RawTable("csv", str(path), ops, columns)


# sha256 of NAS-Bench-201's cells in index order (order_digest of its meta_archs, as the shared CSV has them)
NB201_ORDER_SHA256 = "031e3f7c567b7036827f5cee6628d6653df6cc441ebf60dc6c72660130bf3e62"


def order_digest(ops: Sequence[tuple[str, ...]]) -> str:
    """A digest of the cells' order: one line of six ops per index."""
    return hashlib.sha256("\n".join("|".join(o) for o in ops).encode()).hexdigest()


def _floats(values: list[str], path: Path, name: str) -> np.ndarray:
    try:
        return np.array(values, dtype=np.float64)
    except ValueError:
        pass
    out = np.empty(len(values))
    for i, v in enumerate(values):
        v = v.strip()
        if v == "" or v.lower() == "nan":
            out[i] = math.nan
            continue
        try:
            out[i] = float(v)
        except ValueError:
            raise DataError(f"{path} row {i} (line {i + 2}), column {name}: {v!r} is not a number") from None
    return out


def write_csv(path: Path, ops: list[tuple[str, ...]], strings: list[str], unique: list[str],
              columns: Mapping[tuple[str, str], np.ndarray]) -> None:
    """The compact CSV plus any extra columns (valid accuracy, train seconds, 12-epoch results)."""
    keys = [k for k in CSV_COLUMNS if k in columns]
    header = [CSV_COLUMNS[k] for k in keys] + [CSV_ARCH, CSV_UNIQUE]
    cols = [columns[k] for k in keys]
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(header)
        for i in range(len(ops)):
            w.writerow([repr(float(c[i])) for c in cols] + [strings[i], unique[i]])


# -- restricted unpickling ------------------------------------------------------------------------
def _numpy_scalar() -> Callable[..., Any]:
    core = getattr(np, "_core", None)
    if core is not None:
        return core.multiarray.scalar
    return np.core.multiarray.scalar  # pragma: no cover - numpy < 2


class _Refused(pickle.UnpicklingError):
    def __init__(self, module: str, name: str) -> None:
        super().__init__(f"{module}.{name}")
        self.qualname = f"{module}.{name}"


def _safe_globals() -> dict[tuple[str, str], Any]:
    scalar = _numpy_scalar()
    return {
        ("collections", "OrderedDict"): collections.OrderedDict,
        ("numpy.core.multiarray", "scalar"): scalar,  # what numpy 1.x writes
        ("numpy._core.multiarray", "scalar"): scalar,  # what numpy 2.x writes
        ("numpy", "dtype"): np.dtype,
        ("_codecs", "encode"): codecs.encode,  # bytes in protocol 2
        ("builtins", "set"): set, ("__builtin__", "set"): set,
        ("builtins", "frozenset"): frozenset, ("__builtin__", "frozenset"): frozenset,
    }


class SafeUnpickler(pickle.Unpickler):
    """Unpickles only plain containers, numbers, strings, ``OrderedDict`` and numpy scalars.

    Any other global (a function or class, which is how pickles run code) raises an error before
    it is looked up, so nothing in the file is executed.
    """

    _allowed = _safe_globals()

    def find_class(self, module: str, name: str) -> Any:
        try:
            return self._allowed[(module, name)]
        except KeyError:
            raise _Refused(module, name) from None


def load_pickle_bz2(path: Path, trust: bool) -> Any:
    """A bz2-compressed pickle (NATS-Bench's ``.pickle.pbz2``), restricted unless ``trust``."""
    try:
        raw = bz2.decompress(path.read_bytes())
    except (OSError, EOFError, ValueError) as e:
        raise DataError(f"{path} is not a readable bz2 file ({e}); the download may be truncated "
                        f"or corrupt. {HOW_TO_GET}") from None
    return _unpickle(raw, path, trust)


def _unpickle(raw: bytes, path: Path, trust: bool) -> Any:
    try:
        if trust:
            return pickle.loads(raw)
        return SafeUnpickler(io.BytesIO(raw)).load()
    except _Refused as e:
        raise DataError(f"{path} refers to {e.qualname} while unpickling, which the safe reader "
                        f"does not allow; {TRUST_HINT}") from None
    except Exception as e:  # a corrupt pickle raises almost anything
        raise DataError(f"{path} is not a readable pickle ({type(e).__name__}: {e}); the file may "
                        f"be truncated or corrupt. {HOW_TO_GET}") from None


def load_pth(path: Path, trust: bool) -> Any:
    """A ``torch.save`` file: ``weights_only=True`` (plus numpy scalars) unless ``trust``."""
    import torch

    try:
        if trust:
            return torch.load(path, map_location="cpu", weights_only=False)
        scalar = _numpy_scalar()
        allowed = [
            (scalar, "numpy.core.multiarray.scalar"),
            (scalar, "numpy._core.multiarray.scalar"),
            np.dtype,
            *(type(np.dtype(c)) for c in "?bhilqBHILQefdgFDG"),
        ]
        with torch.serialization.safe_globals(allowed):
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        msg = str(e)
        if not trust and "weights only load failed" in msg.lower():
            # torch words it "Unsupported global: GLOBAL x.y" or "unsupported GLOBAL x.y whose module
            # x is blocked" (os.system, builtins.exec, ...)
            found = re.search(r"unsupported (?:global: )?GLOBAL ([\w.]+)", msg, re.IGNORECASE)
            if found:  # (anything else it refuses is a corrupt or foreign file, which trusting will not fix)
                name = found.group(1)
                name = {"posix.system": "os.system", "nt.system": "os.system"}.get(name, name)
                raise DataError(f"{path} refers to {name}, which torch.load(weights_only=True) does not allow; "
                                f"{TRUST_HINT}") from None
            why = next((line.strip() for line in msg.splitlines()[1:] if line.strip()
                        and "weights_only" not in line and "Re-running" not in line), "")
            raise DataError(f"{path} is not a readable torch file{f' ({why[:200]})' if why else ''}; the download "
                            f"may be truncated or corrupt. {HOW_TO_GET}") from None
        raise DataError(f"{path} is not a readable torch file ({msg.splitlines()[0] if msg else e!r}); "
                        f"the download may be truncated or corrupt. {HOW_TO_GET}") from None
    except Exception as e:
        raise DataError(f"{path} is not a readable torch file ({type(e).__name__}: {e}); the "
                        f"download may be truncated or corrupt. {HOW_TO_GET}") from None


# -- the official records ----------------------------------------------------------------------
def _as_dict(x: Any) -> dict[Any, Any]:
    """A state dict, also from an ``ArchResults``/``ResultsCount`` object (trusted pickles)."""
    if isinstance(x, Mapping):
        return x  # type: ignore[return-value]
    if hasattr(x, "__dict__"):
        return vars(x)
    raise TypeError(type(x).__name__)


# metric -> (12-epoch?, run dataset for cifar10, run dataset otherwise, eval set or None = train time)
_SPECS: dict[tuple[str, str], tuple[str, str, str | None]] = {}
for _ds in DATASETS:
    _c10 = _ds == "cifar10"
    for _suffix, _hp in (("", "200"), ("_12ep", "12")):
        _SPECS[(_ds, "test_accuracy" + _suffix)] = (_hp, _ds, "ori-test" if _c10 else "x-test")
        _SPECS[(_ds, "valid_accuracy" + _suffix)] = (_hp, "cifar10-valid" if _c10 else _ds, "x-valid")
        _SPECS[(_ds, "train_time" + _suffix)] = (_hp, "cifar10-valid" if _c10 else _ds, None)
_HP_ALIASES = {"200": ("200", "full"), "12": ("12", "less")}


def _mean_over_seeds(arch_results: Mapping[Any, Any], run_dataset: str, eval_set: str | None) -> float:
    seeds = arch_results.get("dataset_seed", {}).get(run_dataset)
    if not seeds:
        return math.nan
    vals = []
    for seed in seeds:
        r = _as_dict(arch_results["all_results"][(run_dataset, seed)])
        last = int(r["epochs"]) - 1
        if eval_set is None:
            times = r.get("train_times")
            if not times:
                return math.nan
            vals.append(float(sum(times[i] for i in range(last + 1))))
        else:
            acc = (r.get("eval_acc1es") or {}).get(f"{eval_set}@{last}")
            if acc is None:
                return math.nan
            vals.append(float(acc))
    return sum(vals) / len(vals)


def records_to_row(hp2results: Mapping[Any, Any]) -> dict[tuple[str, str], float]:
    """All metrics of one cell from its ``{hp: ArchResults state dict}`` record."""
    by_hp: dict[str, Mapping[Any, Any]] = {}
    for hp, names in _HP_ALIASES.items():
        for n in names:
            if n in hp2results:
                by_hp[hp] = _as_dict(hp2results[n])
                break
    row = {}
    for key, (hp, run_dataset, eval_set) in _SPECS.items():
        res = by_hp.get(hp)
        row[key] = math.nan if res is None else _mean_over_seeds(res, run_dataset, eval_set)
    return row


def _meta_cells(meta_archs: Any, path: Path) -> list[tuple[str, ...]]:
    if not isinstance(meta_archs, (list, tuple)) or len(meta_archs) != N_CELLS:
        n = len(meta_archs) if isinstance(meta_archs, (list, tuple)) else type(meta_archs).__name__
        raise DataError(f"{path}: 'meta_archs' should list the {N_CELLS:,} NB201 cell strings, "
                        f"found {n}; is this the topology (tss) benchmark? The size search space "
                        "(NATS-sss) is not an NB201 cell table")
    if meta_archs and isinstance(meta_archs[0], str) and "~" not in meta_archs[0]:
        raise DataError(f"{path}: 'meta_archs' holds {meta_archs[0]!r}, not NB201 cell strings; the "
                        "NATS-Bench size search space (sss) is not supported, use the topology one (tss)")
    return cells_from_strings(meta_archs, lambda i: f"{path} meta_archs[{i}]")


def _columns_from_records(records: Mapping[int, Any], path: Path) -> tuple[dict[tuple[str, str], np.ndarray], int]:
    columns = {k: np.full(N_CELLS, math.nan) for k in _SPECS}
    n = 0
    for index, rec in records.items():
        if not (isinstance(index, (int, np.integer)) and 0 <= index < N_CELLS):
            raise DataError(f"{path}: result key {index!r} is not a cell index 0..{N_CELLS - 1}")
        try:
            row = records_to_row(_as_dict(rec))
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise DataError(f"{path}: the results of cell {index} do not have the NAS-Bench-201/"
                            f"NATS-Bench layout (missing or odd {e}); the file may be from another "
                            "version or corrupt") from None
        for k, v in row.items():
            columns[k][index] = v
        n += 1
    if n == 0:
        raise DataError(f"{path} holds no evaluated cells; {HOW_TO_GET}")
    return {k: v for k, v in columns.items() if np.isfinite(v).any()}, n


def _warn_partial(n: int, path: Path) -> None:
    if n < N_CELLS:
        warnings.warn(f"{path} has results for {n:,} of {N_CELLS:,} cells; the others read as NaN",
                      stacklevel=user_stacklevel())


def _dict_file(data: Any, path: Path) -> RawTable | None:
    if not isinstance(data, Mapping) or not {"meta_archs", "arch2infos"} <= set(data):
        return None
    ops = _meta_cells(data["meta_archs"], path)
    arch2infos = data["arch2infos"]
    if not isinstance(arch2infos, Mapping):
        raise DataError(f"{path}: 'arch2infos' is {type(arch2infos).__name__}, expected a dict of "
                        "results per cell index")
    columns, n = _columns_from_records(arch2infos, path)
    _warn_partial(n, path)
    return RawTable("", str(path), ops, columns, n)


def read_nb201_pth(path: Path, trust: bool) -> RawTable:
    """``NAS-Bench-201-v1_[01]-*.pth``: ``{meta_archs, arch2infos{i: {less, full}}, evaluated_indexes}``."""
    table = _dict_file(load_pth(path, trust), path)
    if table is None:
        raise DataError(f"{path} is a torch file but not a NAS-Bench-201 benchmark (expected a dict "
                        f"with 'meta_archs' and 'arch2infos'). {HOW_TO_GET}")
    table.source = "nb201-pth"
    return table


def read_nats_file(path: Path, trust: bool, data: Any = None) -> RawTable:
    """``NATS-tss-v1_0-3ffb9.pickle.pbz2``: the whole benchmark in one bz2 pickle (or ``data``, the
    pickle already read: the same file decompressed)."""
    data = load_pickle_bz2(path, trust) if data is None else data
    table = _dict_file(data, path)
    if table is None:
        if isinstance(data, Mapping) and "meta_archs" in data:
            raise DataError(f"{path} is a NATS-Bench meta file (cell list without results); pass the "
                            "folder that holds it and the per-cell files instead")
        raise DataError(f"{path} is a pickle but not a NATS-Bench topology or NAS-Bench-201 benchmark (expected a "
                        f"dict with 'meta_archs' and 'arch2infos'). {HOW_TO_GET}")
    table.source = "nats-tss"
    return table


def read_nats_dir(path: Path, trust: bool, workers: int | None = None) -> RawTable:
    """``NATS-tss-v1_0-3ffb9-simple/``: ``meta.pickle.pbz2`` and one ``{index:06d}.pickle.pbz2`` per cell.

    Reading all 15,625 files takes minutes; save the result once with :meth:`NB201Table.save_csv`
    and load that CSV afterwards (it keeps every metric).
    """
    meta = load_pickle_bz2(path / "meta.pickle.pbz2", trust)
    if not isinstance(meta, Mapping) or "meta_archs" not in meta:
        raise DataError(f"{path / 'meta.pickle.pbz2'} is not a NATS-Bench meta file (no 'meta_archs')")
    ops = _meta_cells(meta["meta_archs"], path / "meta.pickle.pbz2")

    def cell_file(i: int) -> Path | None:
        for name in (f"{i:06d}.pickle.pbz2", f"{i}.pickle.pbz2"):
            if (p := path / name).is_file():
                return p
        return None

    files = {i: p for i in range(N_CELLS) if (p := cell_file(i)) is not None}
    if not files:
        raise DataError(f"{path} has meta.pickle.pbz2 but no per-cell files (000000.pickle.pbz2, ...); "
                        f"the folder is incomplete. {HOW_TO_GET}")

    def read(i: int) -> tuple[int, Any]:
        return i, load_pickle_bz2(files[i], trust)

    with ThreadPoolExecutor(max_workers=workers or min(8, os.cpu_count() or 1)) as pool:
        records = dict(pool.map(read, sorted(files)))
    columns, n = _columns_from_records(records, path)
    _warn_partial(n, path)
    return RawTable("nats-tss", str(path), ops, columns, n)


def read_any(path: Path, trust: bool) -> RawTable:
    """Pick the reader by what the path is (folder, bz2, torch or text)."""
    if path.is_dir():
        if (path / "meta.pickle.pbz2").is_file():
            return read_nats_dir(path, trust)
        raise DataError(f"{path} is a folder without meta.pickle.pbz2; expected a NATS-Bench topology "
                        f"folder such as NATS-tss-v1_0-3ffb9-simple/, or a file. {HOW_TO_GET}")
    with open(path, "rb") as f:
        head = f.read(len(TORCH_LEGACY_HEAD))
    name = path.name.lower()
    _refuse_other_archives(path, head)
    if head.startswith(b"BZh") or name.endswith(".pbz2"):
        return read_nats_file(path, trust)
    if head.startswith(b"PK\x03\x04") or head.startswith(TORCH_LEGACY_HEAD):
        return read_nb201_pth(path, trust)
    if head[:1] == b"\x80":
        # A plain pickle (the .pbz2 decompressed, say): the safe unpickler reads it; torch.load
        # refused it, and the refusal advised trusting the file (a review, 2026-12-06).
        return _read_plain_pickle(path, trust)
    if name.endswith(".pth"):
        return read_nb201_pth(path, trust)
    return read_csv(path)


def _refuse_other_archives(path: Path, head: bytes) -> None:
    """A compressed CSV or a zip of the benchmark's files: say so and what to do. (They were read
    as what their first bytes resemble and called corrupt downloads: a .csv.bz2 'not a readable
    pickle', a .zip 'not a readable torch file, truncated or corrupt': review F, 2026-12-07.)"""
    import bz2
    import zipfile

    unpack = None
    if head.startswith(b"\x1f\x8b"):
        unpack = "gzip-compressed: decompress it (gunzip) and pass the file it gives"
    elif head.startswith(b"BZh"):
        try:
            with bz2.open(path) as f:
                first = f.read(1)
        except (OSError, EOFError):
            return  # (left to the reader, which says what is wrong with the file)
        if first and first != b"\x80":  # (a pickle opens with its protocol byte)
            unpack = "bz2-compressed, but not a pickle (a CSV?): decompress it (bunzip2) and pass the file it gives"
    elif head.startswith(b"PK\x03\x04"):
        try:
            with zipfile.ZipFile(path) as z:
                names = z.namelist()
        except (OSError, zipfile.BadZipFile):
            return
        if not any(n.endswith("data.pkl") for n in names):  # (torch.save's zip holds <name>/data.pkl)
            unpack = (f"a zip archive ({len(names)} file(s): {', '.join(names[:3])}{', ...' if len(names) > 3 else ''}),"
                      " not a PyTorch file: unzip it and pass the CSV, .pth or NATS-Bench folder it holds")
    if unpack:
        raise DataError(f"{path} is {unpack}. {HOW_TO_GET}")


# torch.save's legacy (non-zip) format opens with its magic number, pickled (protocol 2, LONG1)
TORCH_LEGACY_HEAD = b"\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19"


def _read_plain_pickle(path: Path, trust: bool) -> RawTable:
    """A benchmark dict pickled without compression: NATS-Bench's file after ``bunzip2``, or
    NB201's records (``{less, full}`` per cell) pickled plainly."""
    data = _unpickle(path.read_bytes(), path, trust)
    records = data.get("arch2infos") if isinstance(data, Mapping) else None
    first = next(iter(records.values()), None) if isinstance(records, Mapping) and records else None
    table = read_nats_file(path, trust, data)
    if isinstance(first, Mapping) and "full" in first:
        table.source = "nb201-pth"
    return table
