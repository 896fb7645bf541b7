"""The search: propose (strategy), evaluate (train), record (Optuna storage), within a budget.

Data flows one way: data -> prepared tensors -> [strategy proposes an arch -> trainer scores it ->
record in the study] x budget -> final training of the best -> artifacts in the run directory.

The run directory holds ``study.db`` (Optuna, SQLite), ``config.json`` (the resolved config),
``best/`` (weights, architecture, metrics) and ``summary.json``. Running the same command on it
again resumes: finished trials are kept, a trial cut off by a crash is marked ``interrupted`` and
re-queued with the same architecture, and a changed config or changed data is refused.
"""

from __future__ import annotations

import contextlib
import fcntl
import gc
import hashlib
import json
import logging
import math
import os
import shutil
import socket
import statistics
import tempfile
import time
import signal
import threading
import traceback
import uuid
from dataclasses import dataclass, field, replace
from pathlib import Path
from collections.abc import Callable, Iterable
from typing import Any, NoReturn

import numpy as np
import optuna
import sqlalchemy.exc
import torch
from optuna.trial import TrialState

from budgetnas import __version__
from budgetnas._files import link_or_copy_atomic, stale_temporaries, write_text_atomic
from budgetnas.data import DataSplits, load_dataset, pixel_range
from budgetnas.errors import (BudgetError, BudgetNASError, ConfigError, DataError, ResumeError, RunDirError, TrialFailed,
                              first_line, plural)
from budgetnas.search.budget import Budget, CostModel, Spent, dollars, price_for
from budgetnas.search.config import METRIC_OBJECTIVES, SIZE_OBJECTIVES, SearchConfig
from budgetnas.search.ledger import (CELL_PREFIX, JOB_PREFIX, NON_TRIAL_PREFIXES, BudgetLedger, Slot, connect_args,
                                     database_failed, ended_claims)
from budgetnas.search.prepare import Prepared, prepare
from budgetnas.search.pruning import BasePruner, create_pruner, pruner_note, pruning_rule
from budgetnas.search.records import (final_partials, CACHEABLE, COUNTED, NETWORK_IO_KEY, PROGRESS_KEY, RECORD_VERSION, STATIC_KEY,
                                      TAKEN_OVER_KEY, UNAFFORDABLE_REASON, TrialView,
                                      counts_as_trial, final_candidates, final_epochs_trained, final_gap_note, paid_of, pareto, ranked, record_of, spent_of, status_of,
                                      to_jsonable)
from budgetnas.spaces import BaseSpace, check_space, create_space
from budgetnas.strategies import PARTIAL_SCORE, TrialSeeded, create_strategy
from budgetnas.strategies._proposer import UNSTARTED_STATUS
from budgetnas.train import (TRAINER_CHANGES, TRAINER_VERSION, Checkpointer, Preempted, TrainConfig,
                             eval_batch_size, evaluate, predict_logits, resolve_device, seeded_build, train,
                             warm_up)

log = logging.getLogger("budgetnas")
# Steps of the two probe runs on CUDA, whose difference gives a step's time: a replayed step takes
# milliseconds, about the run-to-run jitter of a run's one-off costs, so they differ by 20 steps.
PROBE_STEPS_CUDA = (4, 24)
# The final training's forecast over its probes' steady state: a whole run also pays what the
# probes' difference cancels (per-epoch shuffles, a partial last batch, checkpoints, the set-up).
# Measured on the CPU (2026-12-03, benchmarks/final_forecast.py): unmargined forecasts were 9% too
# cheap to 16% too dear; a reservation too cheap is a budget overrun, one too dear a trial fewer.
# The first forecast, from one probe of the costliest cell, is raised this much: an upper bound
# with room for the validation passes' overheads and a busy machine (the dry run, an estimate
# rather than a reserve, forecasts from the probes as timed).
PROBE_MARGIN = 1.15
SLOWER_THAN_FORECAST = 1.5  # a final training this many times its forecast is reported
FINAL_MARGIN = 1.1
# The final model's test, reserved beside its training: evaluating an image costs at most this
# share of training one (measured by benchmarks/eval_speed.py, see RESULTS.md).
EVAL_FRACTION = 1.0
STUDY_NAME = "budgetnas"
MAX_CONSECUTIVE_REPEATS = 50
MAX_REPEATS_UNDER_LIMIT = 2000  # the most, however few cells fit max_params (each is a stored trial)
MAX_RETRY_ROUNDS = 3  # times a shared search goes back to train trials re-queued while it waited
OPTUNA_NATIVE = ("random", "tpe", "gp")  # samplers whose RNG state lives only in the process
# Fingerprinted settings whose effect depends on the data or the device (None means "resolve it"):
# resuming compares them as resolved, not as written.
RESOLVED_FIELDS = ("resolution", "search_resolution", "hflip", "batch_size", "test_fraction")


class _FinalLost(Exception):
    """A shared study's final training taken over by another session while this one trained it
    (its claim's heartbeat lapsed: a paused machine): the training is the other's now, and this
    one drops it, writing neither its checkpoint nor a model. (It trained on to the end and
    replaced best/: the final model trained and paid twice, a workers review found, 2026-12-07.)"""


class _TrialLost(Exception):
    """A shared study's trial taken over by another worker while this one trained it (this
    worker's heartbeat lapsed for longer than the grace period: a paused VM, a suspended machine, a
    network partition): the trial and its slot are the other worker's now, and this one drops it
    without another write to either. ``seconds``: the device seconds this attempt used."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"taken over by another worker after {seconds:.1f} device-s here")
        self.seconds = seconds


@dataclass
class SearchResult:
    """What a finished (or budget-stopped) search returns."""

    run_dir: Path
    best_arch: str | None
    best_trial: int | None
    best_metrics: dict[str, float]
    test_metrics: dict[str, float]
    spent: Spent
    stop_reason: str
    top: list[TrialView] = field(default_factory=list)
    preempted: bool = False  # stopped by SIGTERM/SIGINT: run again to resume


def storage_url(run_dir: Path, storage: str | None = None) -> str:
    """The study's database: the given URL, or ``study.db`` (SQLite) in the run directory.

    A bare ``postgresql://`` URL means psycopg 3 to SQLAlchemy 2.1; when only psycopg2 (the
    ``postgres`` extra) is installed, it is used instead.
    """
    url = storage or f"sqlite:///{Path(run_dir) / 'study.db'}"
    if url.startswith("postgres://"):  # (Heroku's and others' spelling, which SQLAlchemy does not load)
        url = "postgresql://" + url[len("postgres://"):]
    if url.startswith("postgresql://"):
        import importlib.util

        if importlib.util.find_spec("psycopg") is None and importlib.util.find_spec("psycopg2") is not None:
            url = "postgresql+psycopg2://" + url[len("postgresql://"):]
    return url


def _safe_url(url: str) -> str:
    """The URL without its password, for messages."""
    scheme, sep, rest = url.partition("://")
    if "@" in rest:
        creds, _, host = rest.rpartition("@")
        rest = creds.split(":")[0] + "@" + host
    return scheme + sep + rest


class _AttrsOnce:
    """A study's user attributes read once. The final-training helpers read several of them per
    cell, and with an RDB storage every ``study.user_attrs`` is a query: choosing the final cell
    among hundreds of ranked trials read them hundreds of times."""

    def __init__(self, study: Any) -> None:
        self.user_attrs = study.user_attrs


def saved_config(run_dir: Path) -> SearchConfig:
    """The settings a run directory was searched with: its config.json, or, where that file cannot
    be read (cut short by a kill while written, by a budgetnas from before it was written whole,
    or edited by hand), the copy its local study keeps, with a warning. (A damaged config.json
    refused every later session and ``show`` until it was mended by hand: a kill-and-resume
    review, 2026-12-07.) The search writes config.json again when it resumes."""
    path = Path(run_dir) / "config.json"
    try:
        return SearchConfig.load(path)
    except ConfigError as damaged:
        if not (Path(run_dir) / "study.db").exists():
            raise
        try:
            kept = open_study(Path(run_dir)).user_attrs.get("config")
        except (ConfigError, optuna.exceptions.OptunaError):
            kept = None
        if not kept:
            raise damaged from None
        log.warning("%s; read the run's settings from its study instead (a resumed search writes the file again)",
                    damaged)
        return SearchConfig.from_dict(kept)


EARLIER_SOURCE = ".source"  # in best/earlier/K-.../: whose final model the folder holds (_final_identity)


def _final_identity(done: dict[str, Any]) -> str:
    """What tells one final model of a study from another: its cell, trial, settings and result."""
    return json.dumps({k: done.get(k) for k in ("arch", "trial", "epochs", "settings", "test_metrics",
                                                 "device_seconds")}, sort_keys=True)


def _same_content(a: Path, b: Path) -> bool:
    try:
        if os.path.samefile(a, b):
            return True
    except OSError:
        return False
    return a.stat().st_size == b.stat().st_size and _file_sha256(a) == _file_sha256(b)


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def open_study(run_dir: Path | None, directions: list[str] | None = None,
               sampler: optuna.samplers.BaseSampler | None = None, *, storage: str | None = None,
               study_name: str = STUDY_NAME) -> optuna.Study:
    """The run's Optuna study (created when ``directions`` is given and it does not exist)."""
    import sqlalchemy.exc

    url = storage_url(run_dir or Path("."), storage)
    local = sqlite_path(url)
    if directions is None and local is not None and not Path(local).exists():
        raise ConfigError(f"there is no study database at {local}; give the run directory "
                          "or storage URL of an existing search")
    kwargs: dict[str, Any] = {"connect_args": connect_args(url)}
    if not url.startswith("sqlite"):
        kwargs["pool_pre_ping"] = True
    try:
        for attempt in range(5):
            try:
                rdb = optuna.storages.RDBStorage(url, engine_kwargs=kwargs)
                break
            except sqlalchemy.exc.SQLAlchemyError as e:
                # Workers starting together on a new database race to create Optuna's tables
                # (SQLite: "table ... already exists"; PostgreSQL: that, or a duplicate key in
                # its catalog): the loser opens the tables the winner made.
                if attempt == 4 or not (isinstance(e, sqlalchemy.exc.IntegrityError)
                                        or "already exists" in str(e)):
                    raise
                time.sleep(0.2 * (attempt + 1))
        if directions is None:
            return optuna.load_study(study_name=study_name, storage=rdb)
        return optuna.create_study(study_name=study_name, storage=rdb, directions=directions,
                                   sampler=sampler, load_if_exists=True)
    except KeyError:
        raise ConfigError(f"no study named {study_name!r} in {_safe_url(url)}; start it with "
                          "`budgetnas search ... --storage URL` first") from None
    except ImportError as e:
        raise ConfigError(f"cannot open the storage {_safe_url(url)}: the database driver is missing ({e}); "
                          "for PostgreSQL: pip install 'budgetnas[postgres]'") from None
    except (sqlalchemy.exc.SQLAlchemyError, optuna.exceptions.StorageInternalError) as e:
        first = first_line(e)
        if local is not None:
            raise ConfigError(f"cannot open the study database {local}: {first}; "
                              f"{sqlite_trouble(local, first)[0]}") from None
        raise ConfigError(f"cannot open the study database {_safe_url(url)}: {first}; check the URL, that "
                          "the server is running and that you may write there") from None


def sqlite_path(url: str) -> str | None:
    """The file of a SQLite storage URL (None for another database)."""
    return url[len("sqlite:///"):] if url.startswith("sqlite:///") else None


def sqlite_trouble(path: str, error: str) -> tuple[str, bool]:
    """What to do about a SQLite study file that cannot be read or written, by SQLite's message,
    and whether the trouble lasts (trying again later cannot help). (A damaged file was met with
    "check the URL, that the server is running", which fits a PostgreSQL server, not a local
    file, 2026-12-06.)"""
    if "not a database" in error or "malformed" in error:
        return (f"the file is damaged or is not a budgetnas study. Restore it from a copy, or move it aside "
                f"(mv {path} {path}.damaged) to start a new study in this run directory: its "
                "finished trials are known only to that file"), True
    if "readonly" in error or "read-only" in error:
        return f"make {path} and its folder writable by this user (or give another --run-dir)", True
    if "disk is full" in error or "disk I/O" in error:
        return (f"free space on the disk that holds {path} (or check the disk), then run the same command "
                "again"), False
    if "locked" in error:
        return ("another process held the file for over a minute: wait for it (a `budgetnas search` "
                "on this run directory, or a program reading the file), then run the same command again"), False
    if "unable to open" in error:
        return f"check that the folder of {path} exists and that this user may write there", True
    return f"check that {path} is a budgetnas study and that this user may read and write it", False


def _directions(objectives: list[str]) -> list[str]:
    return ["maximize" if o in METRIC_OBJECTIVES else "minimize" for o in objectives]


class RunLock:
    """An exclusive lock on a run directory, so two processes never drive one local study."""

    def __init__(self, run_dir: Path) -> None:
        self.path = run_dir / ".lock"
        self._fh: Any = None

    def __enter__(self) -> "RunLock":
        self._fh = open(self.path, "a+")
        try:
            fcntl.flock(self._fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self._fh.seek(0)
            holder = self._fh.read().strip() or "another process"
            self._fh.close()
            raise RunDirError(
                f"run directory {self.path.parent} is in use by {holder}; wait for it to finish, "
                "stop it, or choose another --run-dir"
            ) from None
        self._fh.seek(0)
        self._fh.truncate()
        self._fh.write(f"pid {os.getpid()} on {socket.gethostname()}")
        self._fh.flush()
        return self

    def __exit__(self, *exc: object) -> None:
        fcntl.flock(self._fh, fcntl.LOCK_UN)
        self._fh.close()

    @staticmethod
    def holder(run_dir: Path) -> str | None:
        """Who holds ``run_dir``'s lock now (``"pid N on HOST"``), or None when no process does."""
        path = run_dir / ".lock"
        if not path.exists():
            return None
        with open(path) as fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except OSError:
                return fh.read().strip() or "another process"
            fcntl.flock(fh, fcntl.LOCK_UN)
        return None


def _check_writable(run_dir: Path, what: str = "run directory", flag: str = "--run-dir") -> None:
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        # (a name of its own: workers sharing a run directory, started together, each deleted the
        # other's fixed-name probe and refused the directory as unwritable)
        fd, probe = tempfile.mkstemp(prefix=".write-test-", dir=run_dir)
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise RunDirError(
            f"cannot write to the {what} {run_dir}: {e.strerror or e}; choose a writable "
            f"{flag} (or fix its permissions)"
        ) from None


def _read_box(resolution: int | None) -> int:
    """The largest side image folders are shrunk to while read: twice the largest side trained at
    (photos at full size would fill the memory; the network sees at most that resolution)."""
    return 2 * max(resolution if isinstance(resolution, int) else 32, 4)


def _remove_if_only_lock(run_dir: Path) -> None:
    """Remove a run directory that holds nothing but its lock file (a run refused at once)."""
    try:
        if {p.name for p in run_dir.iterdir()} <= {".lock"}:
            (run_dir / ".lock").unlink(missing_ok=True)
            run_dir.rmdir()
    except OSError:
        pass  # (another process made something there meanwhile: it stays)


class Search:
    """A budgeted architecture search over one run directory.

    Example::

        cfg = SearchConfig(data="digits", run_dir="runs/demo", max_trials=6, epochs=4)
        result = Search(cfg).run()
        print(result.best_arch, result.test_metrics)
    """

    def __init__(self, config: SearchConfig, *, data: DataSplits | None = None,
                 data_name: str | None = None, progress: bool = True,
                 candidates: list[str] | None = None, record_config: bool = True) -> None:
        """``candidates``: cell strings to evaluate first, in order (e.g. a benchmark's top-k);
        the strategy proposes only after they are all tried. ``record_config=False`` (a worker
        joining a shared study) leaves the study's saved configuration as the search set it."""
        self.config = config
        self.record_config = record_config
        if config.storage is not None and config.artifacts_dir is None:
            # Shared studies keep checkpoints where the study was started, so every worker (given
            # a shared filesystem there) resumes the others' trials; --artifacts-dir overrides.
            config.artifacts_dir = str(Path(config.run_dir).resolve())
        self.artifacts_dir = Path(config.artifacts_dir or config.run_dir)
        self._stop_flag = False
        self._inflight: dict[str, threading.Event] = {}  # cache keys being trained (concurrent mode)
        self._inflight_lock = threading.Lock()
        self._streams = threading.local()  # each concurrent trainer thread's CUDA stream
        self._signal_name: str | None = None
        # A second SIGTERM/SIGINT exits the process at once (a command line's Ctrl-C twice). False
        # (the Python API): never, since os._exit in a notebook took the kernel and every variable
        # in it (a review, 2026-12-07); a second SIGINT raises KeyboardInterrupt before the study is
        # open, and once it is, lets the clean stop finish (see _on_signal).
        self.second_signal_exits = True
        self._study_open = False
        self._paid_at_start = math.inf  # (the study's device seconds when this session began: _record_price)
        # (during a session's search loop) the search's wall time so far, written with each trial's
        # progress: a session killed outright (SIGKILL, a spot instance gone) records no more
        self._wall_now: Callable[[], float] | None = None
        self._stopped_for_others = False  # the last _search stopped for what other workers hold
        self.run_dir = Path(config.run_dir)
        self._data = data
        self._data_name = data_name or config.data
        self.progress = progress
        self.space: BaseSpace = create_space(config.space, C=config.C, N=config.N)
        self.final_space: BaseSpace = create_space(config.space, C=config.final_C, N=config.final_N)
        self.candidates = [self.space.format(self.space.parse(c)) for c in (candidates or [])]
        # Whether the data's 4-D arrays were (N, C, H, W), as the final model file says for
        # load_model (None: as config.channels_first says; ImageClassifier.fit sets it)
        self.channels_first: bool | None = None
        # the integer labels ImageClassifier.fit was given, in the order of the classes (None: names)
        self.label_values: list[int] | None = None
        # whether the training pixels were given as integers (ImageClassifier.fit sets it; None:
        # unknown): a model of uint16 pixels and one of 0..255 floats read alike otherwise
        self.integer_pixels: bool | None = None
        self.candidates_only = False  # True: stop once the queued cells are evaluated (finetune)
        # what chose the candidates (finetune's benchmark selection), kept in the study: a resumed
        # run must evaluate the same cells, or its ranking would mix two selections
        self.selection: dict[str, Any] | None = None
        self.device = resolve_device(config.device)
        name = torch.cuda.get_device_name(self.device) if self.device.type == "cuda" else "cpu"
        self.device_name = name
        self.price, self.price_source = price_for(config.device_preset, config.gpu_price, name)
        self.budget = Budget(max_trials=config.max_trials, max_time=config.max_time,
                             max_device_hours=config.max_device_hours, max_cost=config.max_cost,
                             price_per_hour=self.price)
        self.train_config = TrainConfig(epochs=config.epochs, batch_size=config.batch_size, lr=config.lr,
                                        step_mode=config.step_mode, fuse=config.fuse == "all")
        self.prepared: Prepared | None = None
        self._fit_share_cached: float | None = None  # (see _fit_share)

    # -- set-up ---------------------------------------------------------------------------------
    def _load(self) -> Prepared:
        if self.prepared is None:
            # (image folders are shrunk while read: see _read_box)
            splits = self._data if self._data is not None else load_dataset(
                self.config.data, root=self.config.data_root,
                channels_last=False if self.config.channels_first else None,
                max_side=_read_box(self.config.resolution))
            # (what an existing run resolved before, read once: only settings left to the data need it)
            stored = self._stored_attrs() if self.config.hflip is None or self.config.subset < 1 else {}
            self.prepared = prepare(splits, self._with_run_hflip(stored), data_name=self._data_name,
                                    device_type=self.device.type, shrink_val=self._run_shrinks_val(stored))
            p = self.prepared
            if hasattr(self.space, "check_resolution"):
                self.space.check_resolution(p.search_resolution)
                self.final_space.check_resolution(p.resolution)
            self.train_config = TrainConfig(epochs=self.config.epochs, batch_size=self.config.batch_size,
                                            lr=self.config.lr, hflip=p.hflip, step_mode=self.config.step_mode,
                                            fuse=self.config.fuse == "all")
        return self.prepared

    def _stored_attrs(self) -> dict[str, Any]:
        """The existing run's study attributes: {} for a new run, or one unreadable here (the
        run's own checks say why, later)."""
        try:
            existing = self._existing_study()
        except BudgetNASError:
            return {}
        return existing.user_attrs if existing is not None else {}

    def _with_run_hflip(self, attrs: dict[str, Any]) -> SearchConfig:
        """The settings, with the flip the run (study attributes ``attrs``) resolved before where
        it is left to the data: which data flips was decided differently before 2026-12-06 (by how
        --data was spelled), and a run's trials must all train the same way."""
        if self.config.hflip is not None:
            return self.config
        stored = (attrs.get("fingerprint_fields") or {}).get("hflip")
        return self.config if stored is None else replace(self.config, hflip=bool(stored))

    def _run_shrinks_val(self, attrs: dict[str, Any]) -> bool:
        """Whether the search scores a subset of the validation images under --subset: yes, unless
        the run (study attributes ``attrs``) began before it did (its settings were fingerprinted
        without ``search_val_images`` while on a subset), whose trials must all be scored alike."""
        if self.config.subset >= 1:
            return True
        if "fingerprint" not in attrs:
            return True
        fields = attrs.get("fingerprint_fields") or {}
        return "search_val_images" in fields or float(fields.get("subset", attrs.get("config", {}).get("subset", 1.0))) >= 1

    def _final_cost(self, arch: Any) -> Any:
        p = self._load()
        return self.final_space.cost(arch, in_channels=p.in_channels, num_classes=p.num_classes,
                                     resolution=p.resolution)

    def _fit_share(self) -> float:
        """The share of the space's cells whose final network is under max_params (1 without a
        limit), estimated from 2,000 seeded uniform samples."""
        if self.config.max_params is None:
            return 1.0
        if self._fit_share_cached is None:
            rng = np.random.default_rng(self.config.seed + 7)
            fits = [self._final_cost(self.space.sample(rng)).params <= self.config.max_params for _ in range(2000)]
            self._fit_share_cached = max(sum(fits), 1) / len(fits)
        return self._fit_share_cached

    def _repeat_limit(self) -> int:
        """How many proposals in a row may be repeats or rejections before the space counts as
        exhausted: MAX_CONSECUTIVE_REPEATS, or more when few cells fit max_params, so that a
        strategy drawing uniformly misses every fitting cell that many times with odds of 1 in 1,000
        (it stopped after 4 trials with 4.8 % of the cells fitting)."""
        share = self._fit_share()
        if share >= 1.0:
            return MAX_CONSECUTIVE_REPEATS
        return min(MAX_REPEATS_UNDER_LIMIT,
                   max(MAX_CONSECUTIVE_REPEATS, math.ceil(math.log(1e-3) / math.log(1 - share))))

    def _fit_note(self) -> str:
        if self.config.max_params is None:
            return ""
        return (f" (about {self._fit_share():.1%} of its cells fit --max-params {self.config.max_params:,}: "
                "raise it to search more)")

    def _search_macs(self, arch: Any) -> int:
        p = self._load()
        return self.space.cost(arch, in_channels=p.in_channels, num_classes=p.num_classes,
                               resolution=p.search_resolution).macs

    def _check_resume(self) -> None:
        saved_path = self.run_dir / "config.json"
        if not saved_path.exists():
            return
        saved = saved_config(self.run_dir)
        old, new = saved.fingerprint_fields(), self.config.fingerprint_fields()
        # (settings that resolve against the data and device are compared as resolved, once the
        # data is loaded: see _check_study)
        given_val = self._data is not None and self._data.val is not None  # (then val_fraction is unused:
        if given_val:  # the run's is kept, for a later session without the validation set to compare)
            self.config.val_fraction = saved.val_fraction
        diffs = [f"{k}: {old[k]!r} in the run, {new[k]!r} now" for k in new
                 if k not in RESOLVED_FIELDS and old.get(k) != new[k] and not (given_val and k == "val_fraction")]
        sizes = [o for o in self.config.objectives if o in SIZE_OBJECTIVES]
        if sizes:
            # A size objective is the final network's size, stored with each trial: another final
            # network would put two networks' sizes on one Pareto front.
            diffs += [f"{k}: {getattr(saved, k)!r} in the run, {getattr(self.config, k)!r} now (the "
                      f"{' and '.join(sizes)} objective{'s are' if len(sizes) > 1 else ' is'} the final "
                      "network's size)"
                      for k in ("final_C", "final_N") if getattr(saved, k) != getattr(self.config, k)]
        if diffs and old.get("objectives") == new.get("objectives") and self._nothing_trained():
            # e.g. a budget refused as too small, rerun with cheaper settings as it advised (not
            # other objectives: the study's optimisation directions are fixed when it is made)
            log.warning("%s: no trial was trained with its earlier settings (%s); starting it with these",
                        self.run_dir, "; ".join(diffs))
            return
        if diffs:
            raise ResumeError(
                f"{self.run_dir} holds a search with a different configuration ({'; '.join(diffs)}). "
                "Results measured under other settings must not be mixed: use the run's settings "
                "to resume it, or a new --run-dir for a new search"
            )

    def _probe(self, arch: Any, space: BaseSpace, resolution: int, n: int, *, k: int = 1,
               steps: tuple[int, int] | None = None, stoppable: bool = False,
               fixed: list[float] | None = None) -> float:
        """Seconds per training image in steady state for ``arch``, on random inputs; with ``k``
        > 1, of k copies trained at once (threads, each on its own CUDA stream), per image of all.

        Two short runs of different lengths: their difference cancels what every run pays once
        (moving the model, building the optimizer, capturing the CUDA graph), which the cost
        model learns from the real trials instead. On CUDA the runs are longer (4 and 24 steps):
        a replayed step takes milliseconds, about what the set-up's run-to-run noise is, so a
        difference of 4 steps could come out near zero or negative. ``stoppable``: a stop request
        (a signal) interrupts it with :class:`Preempted`, as it does a trial. ``fixed``: a list
        that gets what a run paid once (the shorter run less its steps), for a dry run's forecast.
        """
        if steps is None:
            steps = PROBE_STEPS_CUDA if self.device.type == "cuda" else (2, 6)
        p = self._load()
        bs = self.train_config.resolved_batch_size(n, self.device.type)
        # The step mode the trials and the final training run in: on CUDA an eager step costs
        # several times a replayed one, so a probe in the default (graph) mode would forecast an
        # eager search's final training far too cheap (on the CPU both modes are the same step).
        cfg = TrainConfig(epochs=1, batch_size=bs, lr=self.config.lr, warmup_epochs=0,
                          step_mode=self.config.step_mode)
        seconds = []
        for m in steps:
            x = torch.randn(bs * m, p.in_channels, resolution, resolution)
            y = torch.randint(0, p.num_classes, (bs * m,))

            def one() -> float:
                return self._timed_training(arch, space, x, y, cfg, stoppable)
            seconds.append(one() if k == 1 else self._wall_of_together(one, k))
        per_step = (seconds[1] - seconds[0]) / (steps[1] - steps[0])
        if per_step <= 0:  # timer noise on a very fast step: fall back to the plain average
            per_step = seconds[1] / steps[1]
        if fixed is not None:
            fixed.append(max(0.0, seconds[0] - per_step * steps[0]))
        return per_step / (k * bs)

    def _compile_seconds(self, final: bool = True) -> float:
        """Seconds --fuse adds to a final training once, before its first step: torch.compile's
        compilation of the final network, timed as two-step trainings of its costliest cell (the
        most layers to compile) with and without it. The probes time steady steps, which leave it
        out: a final training forecast at 0.28 s took 31 s under --fuse final and overran a 30 s
        budget by that much (a docs review, 2026-12-06, 2-core CPU). ``final=False``: the same for
        a trial's network (--fuse all compiles every trial's)."""
        p = self._load()
        space, resolution = (self.final_space, p.resolution) if final else (self.space, p.search_resolution)
        macs = (lambda a: self._final_cost(a).macs) if final else self._search_macs
        arch = max(self._uniform_archs(space), key=macs)
        n = len(p.train) + len(p.val) if final else len(p.search_train_y)
        bs = self.train_config.resolved_batch_size(n, self.device.type)
        x = torch.randn(bs * 2, p.in_channels, resolution, resolution)
        y = torch.randint(0, p.num_classes, (bs * 2,))
        took = [self._timed_training(arch, space, x, y,
                                     TrainConfig(epochs=1, batch_size=bs, lr=self.config.lr, warmup_epochs=0,
                                                 step_mode=self.config.step_mode, fuse=fuse), stoppable=True)
                for fuse in (False, True)]
        return max(0.0, took[1] - took[0])

    def _iteration_overhead(self, repeats: int = 3, epochs: int | None = None) -> float:
        """Wall seconds the search loop spends on a trial outside its training, timed as the loop
        does it on a scratch SQLite study: an Optuna proposal and result, the trial's records and
        the ledger's reservation, and each epoch a progress write and a checkpoint of the costliest
        network with its optimizer's state. What a time limit pays per trial beside the trial
        itself; a lower bound (a shared PostgreSQL study's writes and TPE's proposals late in a long
        search cost more). ``epochs``: how many epochs' writes (the search's by default; 0 for a
        proposal of a cell already trained, which takes an iteration and trains nothing)."""
        from optuna.distributions import CategoricalDistribution

        p = self._load()
        fixed = {name: CategoricalDistribution(list(c)) for name, c in self.space.decisions()}
        _, dear = self._extreme_archs()
        net = self.space.build(dear, in_channels=p.in_channels, num_classes=p.num_classes)
        state = {"model": net.state_dict(), "momentum": [q.detach().clone() for q in net.parameters()]}
        with tempfile.TemporaryDirectory() as tmp:
            storage = optuna.storages.RDBStorage(f"sqlite:///{Path(tmp) / 'probe.db'}")
            study = optuna.create_study(storage=storage, sampler=optuna.samplers.RandomSampler(seed=0))
            took = []
            for _ in range(repeats + 1):  # (the first pays the storage's set-up: left out)
                t0 = time.perf_counter()
                trial = study.ask(fixed)
                for key in ("trial_key", STATIC_KEY, "status", "reserved", "heartbeat", "committed"):
                    trial.set_user_attr(key, {"x": 1.0})
                for epoch in range(self.config.epochs if epochs is None else epochs):
                    trial.set_user_attr(PROGRESS_KEY, {"curve": [{"epoch": e} for e in range(epoch + 1)]})
                    torch.save(state, Path(tmp) / "checkpoint.ckpt")
                study.tell(trial, 0.5)
                study.get_trials(deepcopy=False)  # (the loop reads the study once a trial)
                took.append(time.perf_counter() - t0)
            storage.engine.dispose()
        return min(took[1:])

    @staticmethod
    def _trial_compilations(trials: Iterable[Any]) -> list[float]:
        """What compiling each trial's network took (--fuse all), as the trials measured it."""
        return [float(record_of(t)["compile_seconds"]) for t in trials
                if status_of(t) in ("complete", "pruned") and record_of(t).get("compile_seconds")]

    @staticmethod
    def _trial_compile_mean(seen: list[float], probe: float) -> float:
        """Seconds compiling a trial's network takes (--fuse all), which the cost model (per image)
        leaves out: as the trials measured it (their mean) or, before any did, as the probe timed
        it. The run and its dry run both add it (with the forecasts' margin) to a trial's forecast."""
        seen = seen or [probe]
        return sum(seen) / len(seen)

    def _timed_training(self, arch: Any, space: BaseSpace, x: torch.Tensor, y: torch.Tensor, cfg: TrainConfig,
                        stoppable: bool) -> float:
        """Device seconds of training ``arch`` (built afresh, seeded) on ``x, y`` under ``cfg``, as
        the probes time it. A loss that diverges on these random inputs (a huge --lr) is timed all
        the same: it is for the trials to meet and record as failures, not a reason to stop the
        search before any trial (a rerun failed the same way each time). ``stoppable``: a stop
        request interrupts it with :class:`Preempted`."""
        p = self._load()
        model = seeded_build(lambda: space.build(arch, in_channels=p.in_channels, num_classes=p.num_classes), 0)
        t0 = time.perf_counter()
        try:
            return train(model, x, y, None, None, cfg, num_classes=p.num_classes, device=self.device,
                         should_stop=self._stop_requested if stoppable else None).device_seconds
        except TrialFailed as e:
            if "diverged" not in str(e):
                raise
            if self.device.type == "cuda":
                torch.cuda.synchronize(self.device)
            return time.perf_counter() - t0

    def _time_validation(self, arch: Any, p: Prepared) -> float:
        """Seconds one validation pass of an (untrained) ``arch`` takes on the search's validation
        images, timed on up to 1024 of them: a trial pays one every epoch (a dry run left it out,
        and forecast trials on a large validation set several times too cheap)."""
        n = len(p.val_y)
        if not n:
            return 0.0
        m = min(n, 1024)
        model = seeded_build(lambda: self.space.build(arch, in_channels=p.in_channels,
                                                      num_classes=p.num_classes), 0)
        t0 = time.perf_counter()
        evaluate(model, p.val_x[:m], p.val_y[:m], num_classes=p.num_classes, device=self.device)
        return (time.perf_counter() - t0) * n / m

    def _wall_of_together(self, fn: Callable[[], Any], k: int) -> float:
        """Wall seconds for ``k`` threads to run ``fn`` at once (each on its own CUDA stream on a
        GPU); the first error of any of them is raised here."""
        errors: list[BaseException] = []

        def run() -> None:
            try:
                stream = torch.cuda.stream(torch.cuda.Stream(self.device)) if self.device.type == "cuda" \
                    else contextlib.nullcontext()
                with stream:
                    fn()
            except BaseException as e:  # raised in the calling thread below
                errors.append(e)
        threads = [threading.Thread(target=run) for _ in range(k)]
        t0 = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if errors:
            raise errors[0]
        return time.perf_counter() - t0

    # -- the loop -------------------------------------------------------------------------------
    def dry_run(self) -> dict[str, Any]:
        """Forecast what one trial costs and how many trials the budget buys; trains nothing."""
        self.config.check_session()
        p = self._load()
        warm_up(self.device)  # (else the first probe's "paid once" is mostly an import, which each trial does not pay)
        self._check_spaces(p)
        self._check_max_params()  # (as the run checks it first: a dry run said a refused run was fine)
        existing = self._existing_study()
        if existing is not None:
            self._check_study_kind(existing)  # (another program's study, or other directions: refused)
        if existing is not None and not self._nothing_trained(existing):
            # The checks the real run makes first: a dry run on a run it would refuse says so.
            self._check_resume()
            self._check_same_data(existing, p)
            if existing.user_attrs.get("fingerprint", p.fingerprint) != p.fingerprint:
                # (the settings as resolved, and the trainer: a dry run said a run of an older
                # trainer, refused by the run, was fine, 2026-12-06)
                self._refuse_other_settings(existing.user_attrs, p)
        if existing is not None and not self._nothing_trained(existing) and self.selection is not None:
            self._check_selection(existing, record=False)  # (a finetune's cells chosen otherwise: refused, as the run would)
        trials = existing.get_trials(deepcopy=False) if existing is not None else []  # (read once, used below)
        n = len(p.search_train_y)
        n_final = len(p.train) + len(p.val)
        # A finetune trains only its candidates: forecast its cheapest and costliest, not the space's.
        only = self.candidates_only and bool(self.candidates)
        cheap, dear = self._extreme_archs(only_candidates=only)
        # The cells with one op on every edge (a finetune: its cheapest and costliest): a random
        # cell costs about their mean (a cell's cost is about the sum of its edges'), which the
        # mean of the cheapest and the costliest alone put too low (pooling costs a CPU more than
        # its MACs say).
        archs = [cheap, dear] if only else sorted(self._uniform_archs(), key=self._search_macs)
        per_trial, probes, final_probes, compile_s, trial_compile = {}, 0.0, 0.0, 0.0, 0.0
        compile_probe = 0.0
        if self.config.fuse == "all":  # as the run forecasts it: its trials' compilations, or its probe's
            known = self._trial_compilations(trials)
            probed = ((existing.user_attrs.get("probe") or {}) if existing is not None else {}).get(
                "trial_compile_seconds")
            if not known and probed is None:  # (timed once per run, with the probes: a dry run of a run not yet probed pays it)
                t0 = time.perf_counter()
                probed = self._compile_seconds(final=False)
                compile_probe = time.perf_counter() - t0
            trial_compile = self._trial_compile_mean(known, float(probed or 0.0))
        validation = {}
        for i, arch in enumerate(archs):
            label = "cheapest" if i == 0 else "costliest" if i == len(archs) - 1 else f"cell {i}"
            # the faster of two probes: a busy machine slows one, never speeds it up
            took, fixed, walls = [], [], []
            for _ in range(2):
                t0 = time.perf_counter()
                took.append(self._probe(arch, self.space, p.search_resolution, n, fixed=fixed))
                walls.append(time.perf_counter() - t0)
            if label == "costliest":
                probes += walls[0]  # (the run probes the costliest cell once)
            elif label == "cheapest":  # ... as the first work of its process: the warm-up paid here
                probes += max(0.0, walls[0] - walls[1])
            # A trial: its steps, what a run pays once (building, moving, the first step), and a
            # validation pass every epoch. (Priced by steps alone, a dry run promised about twice
            # the trials a run of short trials got: a review, 2026-12-06.)
            validation[label] = min(self._time_validation(arch, p) for _ in range(2))
            per_trial[label] = ((min(took) * n + validation[label]) * self.config.epochs + min(fixed, default=0.0)
                                + FINAL_MARGIN * trial_compile)
        finals = {"cheapest": 0.0, "average": 0.0, "costliest": 0.0}
        if self.config.final_training:
            # As the run forecasts them: the final network timed with each op on every edge, a
            # cell's cost the average over its edges. The final training reserved is that of the
            # best cell so far, so what the budget buys depends on which cell that is.
            t0 = time.perf_counter()
            times = [self._probe(a, self.final_space, p.resolution, n_final)
                     for a in self._uniform_archs(self.final_space)]
            final_probes = time.perf_counter() - t0
            cells = [self.final_space.parse(c) for c in self.candidates] if only else \
                self._uniform_archs(self.final_space)  # (their mean is a random cell's expectation)
            scale = FINAL_MARGIN * self._final_images(p)
            if self.config.fuse != "off":  # (as the run times it: once, with the probes)
                t0 = time.perf_counter()
                compile_s = self._compile_seconds()
                final_probes += time.perf_counter() - t0
            each = [self._per_edge_seconds(times, a) * scale + FINAL_MARGIN * compile_s for a in cells]
            finals = {"cheapest": min(each), "average": sum(each) / len(each), "costliest": max(each)}
        # (by MACs the cells are cheapest and costliest; timed on a busy machine the probes can
        # come out the other way round: the range is reported low to high)
        mid = sum(per_trial.values()) / len(per_trial)
        per_trial = {"cheapest": min(per_trial.values()), "average": mid, "costliest": max(per_trial.values())}
        validation = {"cheapest": min(validation.values()), "costliest": max(validation.values())}
        spent = Spent()  # (a run that exists has used part: read below)
        if existing is not None:  # what the run probes again (see _search): the rest it has
            prev = existing.user_attrs.get("probe") or {}
            if any(status_of(t) in ("complete", "pruned") and record_of(t).get("device_seconds")
                   for t in trials) or self._search_probe_stands(prev):
                probes = 0.0  # (measured trials, or a probe on this device: no search probe)
            if self._final_probes_stand(prev):
                final_probes = 0.0
        probes += final_probes + compile_probe
        reserve = finals["average"]
        if existing is not None:
            # As the run counts them: the wall time of final trainings done, and the final training
            # of the best cell so far reserved (none if it is trained), not an average cell's.
            spent = self._spent_with_finals(existing)
            best, _ = self._final_choice(existing, spent) if self.config.final_training else (None, None)
            if best is not None and not final_probes:  # (re-probed: the study's probes are of another network)
                reserve = 0.0 if self._final_done(existing, best.arch) else self._final_to_come(existing, best.arch)
        device_left = self.budget.device_seconds_left(spent) - probes
        wall_left = self.budget.wall_seconds_left(spent) - probes
        # A time limit also pays what the loop does around each trial (the strategy's proposal, the
        # storage's writes, checkpoints): priced by its trials alone, a dry run of 0.2 s trials
        # promised 608 where 181 trained in the 2 minutes (a user review, 2026-12-06).
        overhead = self._iteration_overhead() if not math.isinf(wall_left) else 0.0
        if overhead and existing is not None:
            # ... and its proposals of cells already trained (or over --max-params): an iteration
            # each that trains nothing, as often per trial as the run has met them so far (a
            # measured run, 2026-12-06: 44 cache hits beside 60 trials in 60 s, digits at C=4 N=1).
            kinds = [status_of(t) for t in trials]
            trained = sum(k in ("complete", "pruned", "failed") for k in kinds)
            repeats = sum(k in ("cached", "rejected") for k in kinds)
            if trained and repeats:
                overhead += repeats / trained * self._iteration_overhead(epochs=0)

        def buys(final: float, each: float | None = None) -> int | float:
            each = each or mid
            by_device = math.inf if math.isinf(device_left) else max(0, int((device_left - final) // each))
            by_wall = math.inf if math.isinf(wall_left) else max(0, int((wall_left - final) // (each + overhead)))
            by_budget = min(by_device, by_wall)
            return by_budget if self.budget.max_trials is None else \
                max(0, min(self.budget.max_trials - spent.trials, by_budget))
        return {"device": self.device_name, "price_per_hour": self.price, "price_source": self.price_source,
                "seconds_per_trial": per_trial, "final_training_seconds": finals,
                "final_training_seconds_max": finals["costliest"], "probe_seconds": probes,
                "final_compile_seconds": compile_s, "trial_compile_seconds": trial_compile,
                "iteration_overhead_seconds": overhead,
                "final_training_reserved": reserve, "trials_affordable": buys(reserve),
                "trials_range": [buys(finals["costliest"]), buys(finals["cheapest"])],
                # (a strategy that learns the costly cells score best, as TPE often does on images,
                # pays more than an average cell a trial: measured 2026-12-06, digits, a 0.004
                # device-h budget: about 70 trials forecast at an average cell, 44 trained)
                "trials_if_costliest": buys(reserve, per_trial["costliest"]),
                "budget": self.budget.describe(), "spent": spent.to_dict(),
                "data": {"classes": len(p.classes), "image_shape": list(p.train.shape),
                         "train_images": len(p.train), "validation_images": len(p.val),
                         "test_images": len(p.test) if p.test is not None else 0},
                "search_images": n, "validation_images": len(p.val_y), "validation_seconds": validation,
                "resolution": p.resolution, "search_resolution": p.search_resolution}

    def _existing_study(self) -> optuna.Study | None:
        """The run's study if it exists (None for a new run); creates nothing."""
        if self.config.storage is None and not (self.run_dir / "study.db").exists():
            return None
        try:
            return open_study(self.run_dir, storage=self.config.storage, study_name=self.config.study_name)
        except ConfigError:  # no such study yet
            return None

    def _uniform_archs(self, space: BaseSpace | None = None) -> list[Any]:
        """The cells that make every decision the same way, one per choice, in choice order (for
        NB201 the five cells with one op on all six edges). A decision with fewer choices than
        another takes its last one in the cells beyond them (a space with uneven decisions failed
        every search with an IndexError: a plugin review, 2026-12-08)."""
        decisions = (space or self.space).decisions()
        return [(space or self.space).from_decisions({n: c[min(i, len(c) - 1)] for n, c in decisions})
                for i in range(max(len(c) for _, c in decisions))]

    def _extreme_archs(self, only_candidates: bool = False) -> tuple[Any, Any]:
        archs = [self.space.parse(c) for c in self.candidates] if only_candidates else self._uniform_archs()
        archs.sort(key=self._search_macs)
        return archs[0], archs[-1]

    def _check_spaces(self, p: Prepared) -> None:
        """The search and final spaces do what the search needs of them (spaces.check_space),
        before anything is trained or written."""
        check_space(self.space, in_channels=p.in_channels, num_classes=p.num_classes,
                    resolution=p.search_resolution, seed=self.config.seed)
        check_space(self.final_space, in_channels=p.in_channels, num_classes=p.num_classes,
                    resolution=p.resolution, seed=self.config.seed)

    def _check_max_params(self) -> None:
        cfg = self.config
        if cfg.max_params is None:
            return
        smallest = min(self._final_cost(a).params for a in self._extreme_archs())
        if smallest > cfg.max_params:
            raise ConfigError(
                f"max_params {cfg.max_params:,} is below the smallest network this space builds "
                f"({smallest:,} parameters with C={cfg.final_C}, N={cfg.final_N}); raise it or "
                "lower --final-C/--final-N"
            )

    def _stop_requested(self) -> bool:
        return self._stop_flag

    def request_stop(self, reason: str = "request") -> None:
        """Ask the search to checkpoint the running trial and stop (what SIGTERM does)."""
        self._signal_name = reason
        self._stop_flag = True

    def _on_signal(self, signum: int, frame: Any) -> None:
        raises = not self.second_signal_exits and signum == signal.SIGINT
        if self._stop_flag:  # the second signal: stop at once (the trial resumes from its last checkpoint)
            if not raises:
                os._exit(128 + signum)
            if not self._study_open:  # (reading the data, say: nothing to record)
                raise KeyboardInterrupt(f"interrupted again, at once; nothing was recorded yet in {self.run_dir}")
            # With the study open, a KeyboardInterrupt raised at any line could cut a database
            # transaction, whose lock then held every write after it (the trial's records, the
            # next fit's) for a minute, to fail with "database is locked" (a test, 2026-12-07):
            # the clean stop already asked for goes on, at the trial's next step.
            log.warning("already stopping: the running trial saves a checkpoint at its next step and fit "
                        "then stops with KeyboardInterrupt (to stop the process itself, restart it: the "
                        "search resumes from its last checkpoint)")
            return
        name = signal.Signals(signum).name
        _SIGNALS.append(name)
        log.warning("%s received: saving a checkpoint and stopping; %s", name,
                    "fit then stops with KeyboardInterrupt" if raises else "send it again to exit at once")
        self.request_stop(name)

    def run(self) -> SearchResult:
        """Search until the budget is spent, then train, test and save the best architecture.

        SIGTERM or SIGINT (Ctrl-C) checkpoints the running trial and returns early with
        ``result.preempted`` set; running again resumes, continuing that trial from its checkpoint.
        """
        self.config.check_session()
        created = not self.run_dir.exists()
        _check_writable(self.run_dir)
        if self.artifacts_dir.resolve() != self.run_dir.resolve():  # checkpoints go there
            _check_writable(self.artifacts_dir / "checkpoints", "artifacts directory", "--artifacts-dir")
        self._stop_flag, self._signal_name = False, None  # a Search can run again after a stop
        self._study_open = False
        handlers = {}
        if threading.current_thread() is threading.main_thread():
            handlers = {sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
        cut: str | None = None
        try:
            return self._run_locked()
        except BudgetNASError:
            if created:  # refused before anything was written: leave no run directory behind
                _remove_if_only_lock(self.run_dir)
            raise
        except KeyboardInterrupt as e:
            if self.second_signal_exits:
                raise
            cut = str(e)  # (raised below, once the frames it cut through are gone)
        finally:
            for sig, old in handlers.items():
                signal.signal(sig, old)
            self._study_open = False
        # A KeyboardInterrupt raised anywhere (the API's second Ctrl-C before the study opened; one
        # raised by other code, a thread's) can cut a database transaction: the frames of its traceback then keep that connection, and its lock on the
        # study file, alive, and the same process's next fit failed with "database is locked" after
        # a minute (a test, 2026-12-07). Raised anew, without them, once they are collected.
        gc.collect()
        raise KeyboardInterrupt(cut)

    def _run_locked(self) -> SearchResult:
        # A local SQLite study has one driver, guarded by a lock; a shared storage has many workers.
        lock = RunLock(self.run_dir) if self.config.storage is None else contextlib.nullcontext()
        with lock:
            self._check_resume()
            p = self._load()
            self._check_spaces(p)
            self._check_max_params()  # before anything is written: a bad limit leaves no trace
            self._study_open = True
            study = open_study(self.run_dir, _directions(self.config.objectives),
                               storage=self.config.storage, study_name=self.config.study_name)
            try:
                self.ledger = BudgetLedger(storage_url(self.run_dir, self.config.storage), self.config.study_name,
                                           heartbeat_interval=self.config.heartbeat_interval)
            except sqlalchemy.exc.SQLAlchemyError as e:
                raise ConfigError(f"cannot use the study database for the budget ledger: "
                                  f"{str(e).splitlines()[0]}") from None
            if self.config.storage is not None:
                self._check_clock()
            try:
                return self._run_study(study, p)
            finally:
                self.ledger.close()

    def _run_study(self, study: optuna.Study, p: Prepared) -> SearchResult:
        # Optuna's own samplers draw from one RNG seeded at creation: made anew for every trial,
        # seeded from (seed, the trial's proposal index: retries and unstarted proposals left out),
        # a search killed and resumed proposes what one run straight through would have, as our
        # proposer-based strategies (rea, reinforce, local) do by deriving every draw the same way.
        # Workers on a shared study draw differently (their trials' indexes differ).
        name, seed = self.config.strategy, self.config.seed
        if name in OPTUNA_NATIVE:
            study.sampler = TrialSeeded(lambda s: create_strategy(name, seed=s, space=self.space), seed=seed)
        else:
            study.sampler = create_strategy(name, seed=seed, space=self.space)
        self._check_study_kind(study)  # (reads only: no lock; first, as every check after it assumes our study)
        # The selection before _check_study, which records this session's settings in the study (its
        # budget, its strategy) for workers and `show`: a finetune refused here had stored them (review A,
        # 2026-12-07: a worker then trained to the refused finetune's k trials).
        self._check_selection(study)
        self._check_study(study, p)
        self.config.save(self.run_dir / "config.json")  # (only once the study accepted the settings)
        if self.config.storage is None:
            self._reconcile_ledger(study)
            # What a killed process left half-written (a checkpoint's or a model's temporary file,
            # full-size, kept through every later session: a kill-and-resume review, 2026-12-07).
            # Only here, with the run's lock: no other process writes to these folders.
            earlier = sorted(p for p in (self.run_dir / "best" / "earlier").glob("*") if p.is_dir())
            for folder in (self.run_dir, self.run_dir / "best", self.artifacts_dir / "checkpoints", *earlier):
                for path in stale_temporaries(folder, this_process_too=True):  # (a notebook's last fit's too)
                    path.unlink(missing_ok=True)
            for folder in earlier:  # a kill between making a folder of earlier/ and its first file
                if not any(folder.iterdir()):
                    folder.rmdir()
        self._recover_interrupted(study)
        self._enqueue_candidates(study)
        reason = self._search(study, p)
        if self.config.storage is not None:
            def queued_retries() -> set[int]:
                return {t.number for t in study.get_trials(deepcopy=False, states=(TrialState.WAITING,))
                        if "retry_of" in t.user_attrs}

            for _ in range(MAX_RETRY_ROUNDS):
                before = queued_retries()  # (this session's own: cut by the budget, or unaffordable)
                if self.config.final_training:
                    self._wait_for_other_workers(study)
                elif self._stopped_for_others:  # (a worker's: the budget others hold, or their cells)
                    self._wait_for_silent_workers(study)
                # A dead worker's trial, re-queued while waiting, is trained before the final
                # training chooses its cell (it was going to pick from the others, and a rerun
                # would have trained it and then a second final model); by a worker, before it
                # stops (its slot held the budget this one stopped for).
                requeued = queued_retries() - before
                if not requeued or self._stop_flag:
                    break
                log.info("%s of a worker that stopped re-queued: training %s%s", plural(len(requeued), "trial"),
                         "it" if len(requeued) == 1 else "them",
                         " before the final training" if self.config.final_training else "")
                done = spent_of(study).trials
                again = self._search(study, p)
                if self._stop_flag:  # (a signal during it: the reason is the signal's)
                    reason = again
                    break
                if spent_of(study).trials == done:
                    break  # the budget paid for none of them: why the search stopped is as it was
                reason = again
        best, why_not_best = self._agreed_final_choice(study, self._spent_with_finals(study))
        if why_not_best is not None and not self._stop_flag:
            log.warning(why_not_best)
            reason += f"; {why_not_best}"
        test_metrics: dict[str, float] = {}
        if best is not None and self.config.final_training and not self._stop_flag:
            # With shared storage several `search` processes may reach this point; exactly one
            # trains the final model (the others would pay for it again).
            shared = self.config.storage is not None
            job = JOB_PREFIX + hashlib.blake2b(json.dumps([best.arch, self._final_settings()]).encode(),
                                             digest_size=8).hexdigest()
            claim = self.ledger.claim_job(job, _worker_name(), self.config.heartbeat_grace) if shared \
                else "claimed"
            told = False
            while claim == "running" and not self._stop_flag:
                # Another worker trains it: wait for its result, or for its heartbeat to stop
                # (a killed worker's claim is taken over after the grace period), rather than
                # end this session without a tested model.
                if not told:
                    log.info("waiting for the final training of %s, which another worker of this study "
                             "is running (taken over if its heartbeat stops for %.0f s)", best.arch,
                             self.config.heartbeat_grace)
                    told = True
                time.sleep(min(2.0, self.config.heartbeat_interval))
                claim = self.ledger.claim_job(job, _worker_name(), self.config.heartbeat_grace)
            keep = self._why_keep_final(study, best) if claim == "claimed" else None
            unpaid = self._why_no_final(study, best) if claim == "claimed" and keep is None else None
            if unpaid is not None:
                log.warning(unpaid)
                reason += f"; {unpaid}"
                if shared:
                    self.ledger.finish_job(job, done=False)
            elif keep is not None:
                log.warning(keep)
                reason += f"; {keep}"
                test_metrics = dict((study.user_attrs.get("final") or {}).get("test_metrics", {}))
                if shared:
                    self.ledger.finish_job(job, done=False)
            elif claim == "claimed":
                trained = False
                try:
                    test_metrics = self._final(study, best, claim=job if shared else None)
                    trained = not (study.user_attrs.get("final") or {}).get("shortened")
                except Preempted as e:
                    reason = f"stopped by {self._signal_name} during the final training ({e})"
                except _FinalLost:
                    reason += "; the final training was taken over by another session of this study (this one's " \
                              "heartbeat lapsed): it trains and records the final model"
                finally:
                    if shared:  # done, or handed back for another session to claim (one shortened
                        # by the budget too: a session with the budget for all of it trains it in full);
                        # only while the claim is still this session's
                        self.ledger.finish_job(job, done=trained, worker=_worker_name())
            else:
                done = study.user_attrs.get("final") or {}
                if claim == "done" and self._final_done(study, best.arch, full=False):
                    test_metrics = dict(done.get("test_metrics", {}))
                log.info("the final training of %s is %s by another worker of this study; not repeating it",
                         best.arch, "done" if claim == "done" else "being run")
            final = study.user_attrs.get("final") or {}
            if keep is None and test_metrics and final.get("arch") == best.arch and final.get("shortened"):
                reason += "; " + _shortened_note(final)
        if not test_metrics and best is not None and self._final_done(study, best.arch, full=False):
            # (a worker, which trains no final model, or a session that kept it: the study's test
            # result, which summary.json and `show --json` would lose otherwise: a review, 2026-12-06)
            test_metrics = dict((study.user_attrs.get("final") or {}).get("test_metrics", {}))
        result = self._result(study, best, test_metrics, reason)
        result.preempted = self._stop_flag
        if self.record_config and result.spent.device_seconds > self._paid_at_start:
            self._record_price(study, paid=True)
        write_text_atomic(self.run_dir / "summary.json", json.dumps(to_jsonable({
            "best_arch": result.best_arch, "best_trial": result.best_trial,
            "best_search_metrics": result.best_metrics, "test_metrics": result.test_metrics,
            "spent": result.spent.to_dict(), "stop_reason": reason,
            **({"price": price} if (price := study.user_attrs.get("price")) else {}),
            "objectives": list(self.config.objectives), "ranked_by": self.config.metric,
            **({"pareto_front": front} if (front := sorted(pareto(study))) else {}),
        }), indent=2) + "\n")
        return result

    def _check_clock(self) -> None:
        """Warn when this machine's clock and the shared study's database's disagree by more than
        a quarter of the heartbeat's grace: heartbeats go by the database's clock, but Optuna
        stamps a trial's start by this machine's, which decides how soon a trial whose worker
        never took its slot is re-queued."""
        try:
            off = self.ledger.clock_offset()
        except sqlalchemy.exc.SQLAlchemyError:
            return  # (the search's own first writes will say what is wrong with the database)
        if abs(off) > self.config.heartbeat_grace / 4:
            log.warning("this machine's clock is %.0f s %s the study database's: synchronise it (NTP); "
                        "heartbeats go by the database's clock, but trials' start times by this machine's",
                        abs(off), "behind" if off > 0 else "ahead of")

    def _nothing_trained(self, study: optuna.Study | None = None) -> bool:
        """True for a local run whose study trained nothing yet (only probes, or no study): its
        settings may then change. A shared study's workers must agree, so it never qualifies."""
        if self.config.storage is not None:
            return False
        if study is None:
            study = self._existing_study()
        if study is None:
            return True
        if any((self.artifacts_dir / "checkpoints").glob("*.ckpt")):  # e.g. a first epoch cut off
            return False
        return not any(status_of(t) in COUNTED or record_of(t).get("device_seconds", 0) > 0
                       for t in study.get_trials(deepcopy=False))

    def _check_same_data(self, study: optuna.Study, p: Prepared) -> None:
        attrs = study.user_attrs
        if attrs.get("data_fingerprint", p.data_fingerprint) != p.data_fingerprint:
            before = (attrs.get("config") or {}).get("data")
            named = f": {before!r} there, {self.config.data!r} now" if before and before != self.config.data else ""
            where = _data_path(before, attrs) if before else None
            if before == "arrays" and self.config.data != "arrays" and where is not None and not Path(where).exists():
                # (images ImageClassifier.fit was given in memory: "point --data at the original data",
                # at a folder 'arrays' that never was, could not be followed: review A, 2026-12-07)
                raise ResumeError(
                    f"{self.run_dir} was made by ImageClassifier.fit from images given in memory, not {self.config.data!r}: "
                    f"resume it in Python, ImageClassifier(run_dir={str(self.run_dir)!r}, ...).fit(x, y) with the same "
                    "images, or use a new --run-dir for this data")
            if where is not None and (named or attrs.get("cwd") != os.getcwd()):
                # (a relative --data named no place: "point --data at the original data" could not
                # be followed, a user review found, 2026-12-06; nor when the same words were given
                # from another folder, a diff review found)
                named = f": {before!r} there (from {attrs.get('cwd')}: {where}), {self.config.data!r} now"
            parts = attrs.get("data_parts") or {}
            if parts.get("train") == p.data_parts["train"] and parts.get("test") == p.data_parts["test"] \
                    and parts.get("val") != p.data_parts.get("val"):
                then, now = (("a validation set", "none") if p.data_parts.get("val") is None else
                             ("none", "a validation set") if parts.get("val") is None else ("one validation set",
                                                                                        "another"))
                raise ResumeError(
                    f"{self.run_dir} was searched on the same training images but a different validation set "
                    f"({then} given there, {now} now); every trial was scored on it: give the original "
                    "validation data (or none, as then), or use a new --run-dir")
            if parts.get("train") == p.data_parts["train"]:  # (runs before 2026-12-06 did not keep the parts)
                then, now = (("a test split", "none") if p.data_parts["test"] is None else
                             ("none", "a test split") if parts.get("test") is None else ("one test split", "another"))
                raise ResumeError(
                    f"{self.run_dir} was searched on the same training images but a different test set ({then} "
                    f"given there, {now} now); the test set is part of what a run measures: give the "
                    f"original test data (or none, as then), or use a new --run-dir{self._val_folder_note(before)}")
            saved = attrs.get("config") or {}
            then, now_res = saved.get("resolution"), self.config.resolution
            # (only images the smaller of the two boxes shrank are read otherwise at the other resolution)
            shrunk = max(p.train.shape[1:]) >= min(_read_box(then), _read_box(now_res))
            shown = lambda v: "default" if v is None else v  # noqa: E731
            sizes = [f"--resolution {shown(then)} there, {shown(now_res)} now"] if then != now_res and shrunk else []
            if sizes and not named:
                # (large images are shrunk while read, to a size set by the resolution: the same files
                # read at another resolution are other pixels)
                raise ResumeError(
                    f"{self.run_dir} was searched at another image size ({'; '.join(sizes)}): the resolution "
                    "changes what every trial measures, so the run cannot go on with it. Use the resolution "
                    "given then, or a new --run-dir")
            raise ResumeError(
                f"{self.run_dir} was searched on different data{named} (fingerprint "
                f"{attrs.get('data_fingerprint')} there, {p.data_fingerprint} now). Mixing results from "
                "two datasets would make them meaningless: point --data at the original data, or use "
                f"a new --run-dir{self._val_folder_note(before) if not named else ''}"
            )

    def _val_folder_note(self, before: str | None) -> str:
        """Why a run on a folder with a val/ beside train/ may read other data now (or ""): only
        where ``before``, the run's --data, is this one (other data is simply other data)."""
        from budgetnas.data._datasets import labelled_val_dir

        if before is not None and before != self.config.data:
            return ""
        root = Path(self.config.data_root or ".").expanduser() / self.config.data
        try:  # (the folder the loader reads, no looser: an empty val/ or one beside no train/ is not)
            found = root.is_dir() and labelled_val_dir(root) is not None
        except OSError:
            return ""
        return (". (Since 2026-12-06 a labelled val/ folder beside train/ is read, as the test set where "
                "there is no test/, else as more training images: a run made before read neither; move "
                "the val/ folder out of the data folder to go on with it)") if found else ""

    def _attrs_held(self) -> Any:
        """The study-wide lock for a read-modify-write of the study's user attributes: Optuna
        writes them key by key, last writer wins, so two workers of a shared study that read the
        same value would both take a new study for their own, or lose each other's additions."""
        return self.ledger.hold("study_attrs", _worker_name(), self.config.heartbeat_grace)

    def _add_to_attr(self, study: optuna.Study, key: str, seconds: float, **fields: Any) -> dict[str, Any]:
        """Add ``seconds`` (and their cost) to the record ``key`` of the study, with ``fields``
        set in it, reading the record under the lock (not a copy read earlier); the new record."""
        with self._attrs_held():
            rec = dict(study.user_attrs.get(key) or {})
            rec.update(fields)
            rec["device_seconds"] = float(rec.get("device_seconds", 0.0)) + seconds
            rec["cost"] = float(rec.get("cost", 0.0)) + self.budget.cost_of(seconds)
            study.set_user_attr(key, rec)
        return rec

    def _set_final_partial(self, study: optuna.Study, key: str, seconds: float | None) -> None:
        """What the final training ``key`` has trained so far (None: finished), beside those of
        other final trainings (other cells or settings, other workers), under the lock."""
        with self._attrs_held():
            partials = final_partials(study)
            if seconds is None:
                partials.pop(key, None)
            else:
                partials[key] = float(seconds)
            study.set_user_attr("final_partial", partials)

    def _record_wall(self, study: optuna.Study, seconds: float) -> None:
        """Record the search's wall time so far (this session's start value plus its time): never
        lower than what another worker recorded meanwhile (it started from a later value)."""
        with self._attrs_held():
            if seconds > float(study.user_attrs.get("wall_seconds", 0.0)):
                study.set_user_attr("wall_seconds", seconds)

    def _check_study(self, study: optuna.Study, p: Prepared) -> None:
        with self._attrs_held():  # the first worker of a shared study writes its fingerprint, alone
            self._check_study_locked(study, p)

    def _check_study_kind(self, study: optuna.Study) -> None:
        """Refuse a study budgetnas did not make, or one made for other objective directions (the
        run and its dry run alike)."""
        attrs = study.user_attrs
        where = f"study {study.study_name!r} in " + (_safe_url(self.config.storage) if self.config.storage
                                                     else str(self.run_dir / "study.db"))
        if "fingerprint" not in attrs and any("trial_key" not in t.user_attrs
                                              for t in study.get_trials(deepcopy=False)):
            raise ResumeError(f"{where} holds trials budgetnas did not make (another program's Optuna "
                              "study?); it is left as it is: give a new --run-dir, or another --study-name")
        saved = attrs.get("config") or {}
        if self.config.storage is not None and saved and not saved.get("storage"):
            # (a local run's study.db given as shared storage: its run lock was bypassed, and its
            # run directory's model and summary fell out of step with its study)
            raise ResumeError(f"{where} belongs to the single local search in {saved.get('run_dir')} (started "
                              "without --storage, guarded by its run directory's lock): resume it with "
                              f"`budgetnas search --run-dir {saved.get('run_dir')}`, or give a new database "
                              "for a shared study")
        wanted = _directions(self.config.objectives)
        if [d.name.lower() for d in study.directions] != wanted:
            raise ResumeError(f"{where} was made to {', '.join(d.name.lower() for d in study.directions)} "
                              f"{'its objectives' if len(study.directions) > 1 else 'its objective'}, and "
                              f"--objective {','.join(self.config.objectives)} needs {', '.join(wanted)}: "
                              "give a new --run-dir (or --study-name) for these objectives")

    def _check_study_locked(self, study: optuna.Study, p: Prepared) -> None:
        attrs = study.user_attrs  # (its kind checked by _run_study first)
        if "fingerprint" in attrs and attrs["fingerprint"] != p.fingerprint and self._nothing_trained(study):
            # Nothing was measured under the old settings: take the new ones; the probes' cost
            # stays on the ledger, their timings (of other settings) are taken again.
            probe = attrs.get("probe") or {}
            study.set_user_attr("probe", {k: probe[k] for k in ("device_seconds", "cost") if k in probe})
            del attrs["fingerprint"]
        if "fingerprint" not in attrs:
            study.set_user_attr("fingerprint", p.fingerprint)
            study.set_user_attr("fingerprint_fields", to_jsonable(p.fingerprint_fields))
            study.set_user_attr("data_fingerprint", p.data_fingerprint)
            study.set_user_attr("data_parts", p.data_parts)
            study.set_user_attr("record_version", RECORD_VERSION)
            study.set_user_attr("budgetnas_version", __version__)
            study.set_user_attr("classes", list(p.classes))
            study.set_user_attr(NETWORK_IO_KEY, {"in_channels": p.in_channels, "num_classes": p.num_classes})
            study.set_user_attr("config", to_jsonable(self.config.to_dict()))
            study.set_user_attr("cwd", os.getcwd())  # (what the config's relative paths are relative to)
            self._record_price(study)
            return
        self._check_same_data(study, p)
        if attrs["fingerprint"] == p.fingerprint:
            if self.config.storage is not None and self.record_config:
                self._say_other_budget(study, attrs.get("config") or {})
            saved = attrs.get("config") or {}
            changed = [k for k in ("strategy", "pruner")
                       if self.record_config and k in saved and saved[k] != getattr(self.config, k)]
            if changed:  # (allowed, and was unsaid: review A, 2026-12-07)
                log.info("this session searches with another %s than the last (%s): it takes over from every "
                         "result so far", " and ".join(changed),
                         "; ".join(f"--{k} {saved[k]} before, {getattr(self.config, k)} now" for k in changed))
            if NETWORK_IO_KEY not in attrs:  # (runs before 2026-12-08: `show` sizes cells with it)
                study.set_user_attr(NETWORK_IO_KEY, {"in_channels": p.in_channels, "num_classes": p.num_classes})
            if self.record_config:  # the latest search session's budget: what workers and `show` read
                study.set_user_attr("config", to_jsonable(self.config.to_dict()))
                study.set_user_attr("cwd", os.getcwd())
                self._record_price(study)
            return
        self._refuse_other_settings(attrs, p)

    def _refuse_other_settings(self, attrs: dict[str, Any], p: Prepared) -> NoReturn:
        """Raise why a run whose fingerprint (in its study's ``attrs``) is not ``p``'s cannot go
        on with these settings: trials of another trainer, or the settings that differ."""
        trained_by = (attrs.get("fingerprint_fields") or {}).get("trainer")
        if trained_by != TRAINER_VERSION:
            # (a run without the version is from before it was kept, 2026-12-06: version 1 or, made
            # the same day, already 2; which, the run does not say, so it is refused as unknown)
            since = 1 if trained_by is None else int(trained_by)
            changes = "; ".join(TRAINER_CHANGES.get(v, "?") for v in range(since + 1, TRAINER_VERSION + 1))
            which = (f"an earlier budgetnas trainer (version {trained_by}" if trained_by is not None else
                     "a budgetnas trainer from before trainers were versioned (which may be version 1")
            raise ResumeError(
                f"{self.run_dir} holds trials trained by {which}; this one is version {TRAINER_VERSION}: "
                f"{changes}), so the same cell may score differently: its results and new ones must not be "
                "ranked together. Start a new --run-dir (`budgetnas show` the old one for its best cells), or "
                "continue it with the budgetnas that started it")
        # (a run from before resolved settings were kept, 2026-12-02, has none: a version-1 run, refused above)
        old, new = attrs["fingerprint_fields"], to_jsonable(p.fingerprint_fields)
        changed = [k for k, v in new.items() if old.get(k) != v]
        diffs = [f"{k}: {old.get(k)!r} in the run, {new[k]!r} now" for k in changed]
        diffs += [f"{k}: {old[k]!r} in the run, no longer a setting of the search now" for k in old if k not in new]
        if "search_resolution" in changed and self.config.search_resolution is None:
            diffs[changed.index("search_resolution")] += (
                " (it follows --resolution unless --search-resolution is given: give --search-resolution "
                f"{old.get('search_resolution')} to change only the final training's)")
        device = " (precision differs between a GPU and a CPU)" if "precision" in changed else ""
        raise ResumeError(
            f"{self.run_dir} holds a search whose settings, as they take effect on this data and device, "
            f"differ from these ({'; '.join(diffs) or 'fingerprint ' + attrs['fingerprint'] + ' vs ' + p.fingerprint}). "
            f"Results measured under other settings must not be mixed{device}: use the run's settings"
            f"{' and device' if device else ''} to resume it, or a new --run-dir"
        )

    def _record_price(self, study: optuna.Study, paid: bool = False) -> None:
        """The hourly price this session's costs are at, and where it came from, for `show`; with
        ``paid`` (at its end, if it paid anything), its rate joins ``rates``, every distinct rate
        sessions paid at. (Rates were recorded as sessions began, so one that paid nothing showed
        as a rate paid at: a diff review, 2026-12-06.)"""
        before = study.user_attrs.get("price") or {}
        now = spent_of(study).device_seconds
        earlier: list[float] = []
        if not paid and self.config.storage is None and "per_hour" in before and now > before.get("paid_from", now):
            # The session before ended without recording its rate (killed: SIGKILL, a spot instance
            # reclaimed) yet paid: `show` named only later rates for its seconds (review D, 2026-12-07).
            # (A local run: one session at a time, so what the study gained since was that session's.)
            earlier = [before["per_hour"]]
        rates = sorted({*before.get("rates", []), *earlier, *([self.price] if paid else [])})
        study.set_user_attr("price", {"per_hour": self.price, "source": self.price_source,
                                      "device": self.device_name, "rates": rates,
                                      **({} if paid else {"paid_from": now})})
        if not paid:  # (the session begins: what it pays is what the study holds at its end beyond this)
            self._paid_at_start = now

    def _say_other_budget(self, study: optuna.Study, saved: dict[str, Any]) -> None:
        """Warn when sessions of a shared study are running (trials in flight) under another budget
        or other final settings than this one's: each stops at its own limits, counted over the
        whole study, and each final-settings variant trains its own final model (a review,
        2026-12-06: one session with --max-trials 3 beside one with 12 ran to 12, and the first
        said only, at its end, that there were more trials than its limit)."""
        keys = ("max_trials", "max_time", "max_device_hours", "max_cost", "gpu_price", "final_epochs",
                "final_training")
        now = self.config.to_dict()
        differ = [f"{k} {saved.get(k)!r} there, {now.get(k)!r} here" for k in keys if saved.get(k) != now.get(k)]
        if differ and study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            log.warning("another session of this shared study is running with other settings (%s): each session "
                        "stops at its own budget, counted over the whole study, and final trainings with other "
                        "settings are each trained; give every session the same budget and final settings",
                        "; ".join(differ))

    def _check_selection(self, study: optuna.Study, record: bool = True) -> None:
        """Refuse to resume a run whose cells were chosen otherwise (another benchmark selection, or
        a strategy's search where a finetune comes now, or the reverse); nothing trained: take it.
        ``record``: keep the selection in the study where it is taken (not by a dry run, which
        changes nothing)."""
        attrs = study.user_attrs
        keep = study.set_user_attr if record else (lambda key, value: None)
        saved, now = attrs.get("selection"), self.selection
        if _same_selection(saved, now):
            if saved != now:
                keep("selection", now)  # (kept as spelled now: one spelling from here on)
            return
        if "selection" not in attrs and now is not None:
            # first finetune session, or one from before selections were kept: every cell the run
            # holds must be one of these candidates
            cells = set(self.candidates)
            held = [self._cell_params(t) for t in study.get_trials(deepcopy=False)]
            if all(h is not None and self.space.format(self.space.from_decisions(h)) in cells for h in held):
                keep("selection", now)
                return
        elif self._nothing_trained(study):
            keep("selection", now)
            return
        def say(sel: Any) -> str:
            if sel is None:
                return "a search by the strategy"
            return (f"{sel.get('mode')} selection of {len(sel.get('cells') or [])} cells on {sel.get('dataset')} "
                    f"by {sel.get('metric')} (k={sel.get('k')}, max_params={sel.get('max_params')}, "
                    f"diverse={sel.get('diverse')}; cells {sel.get('cells')})")
        raise ResumeError(
            f"{self.run_dir} holds {say(saved) if 'selection' in attrs else 'cells chosen otherwise'}, and "
            f"this run asks for {say(now)}. Mixing them would rank cells of two selections together: "
            "repeat the run's options to resume it, or use a new --run-dir"
        )

    def _refused(self, study: optuna.Study, error: BudgetError) -> BudgetError:
        """``error``, recorded in the study, so that `show` says the session was refused and why
        rather than advise running the same command again."""
        study.set_user_attr("refused", {"reason": str(error), "trials": spent_of(study).trials})
        return error

    def _wait_for_other_workers(self, study: optuna.Study) -> None:
        """Before the final training of a shared study: let the trials that other workers are
        still training finish, so that every process picks the same best cell (and only one of
        them trains it). A dead worker's trial is re-queued by the heartbeat check meanwhile."""
        told = False
        while not self._stop_flag:
            running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
            if not running:
                return
            if not told:
                log.info("waiting for %d trial(s) that other workers are training before the final "
                         "training", len(running))
                told = True
            self._recover_interrupted(study)
            time.sleep(min(2.0, self.config.heartbeat_interval))

    def _wait_for_silent_workers(self, study: optuna.Study) -> None:
        """A worker's end (or a ``search --no-final``'s): the trials whose workers have missed two
        heartbeats are probably a dead worker's, and their slots hold the budget this session
        stopped for. Wait for them to go stale (the heartbeat grace, within the time budget) and
        re-queue them, rather than leave them, untrained, to the final ``search`` (every worker
        quit with "budget spent by all workers" while a killed worker's slot held it: found
        2026-12-07). A worker killed a moment ago looks alive until it misses its beats: the
        running trials are watched for two heartbeat intervals first; a live worker's trial is not
        waited for beyond that (it beats every interval)."""
        cfg = self.config
        wall_left = self.budget.wall_seconds_left(self._spent_with_finals(study))
        wall_before, start = spent_of(study).wall_seconds, time.perf_counter()
        deadline = start + min(cfg.heartbeat_grace + 2 * cfg.heartbeat_interval, wall_left)
        watched = start + 2 * cfg.heartbeat_interval + 1.0  # (two beats, and a second for the database)
        told = False
        try:
            while not self._stop_flag and time.perf_counter() < deadline:
                silent = self.ledger.silent(2 * cfg.heartbeat_interval)
                if not silent and (time.perf_counter() > watched or not self.ledger.silent(0.0)):
                    return  # (every running trial's worker beats; or none runs)
                if silent:
                    if not told:
                        log.info("%s of this study %s missed two heartbeats (a worker that stopped?): waiting up "
                                 "to %.0f s for %s to be re-queued, to train %s here", plural(len(silent), "trial"),
                                 "has" if len(silent) == 1 else "have", cfg.heartbeat_grace,
                                 "it" if len(silent) == 1 else "them", "it" if len(silent) == 1 else "them")
                        told = True
                    self._recover_interrupted(study)
                time.sleep(min(1.0, cfg.heartbeat_interval))
        finally:  # (the wait is the search's wall time: a time budget and `show` count it)
            self._record_wall(study, wall_before + time.perf_counter() - start)

    def _enqueue_candidates(self, study: optuna.Study) -> None:
        """Queue the given cells once each; a resumed run finds them queued or done already."""
        known = set()
        for t in study.get_trials(deepcopy=False):
            params = self._cell_params(t)
            if params is not None:
                known.add(self.space.format(self.space.from_decisions(params)))
        for text in self.candidates:
            if text not in known:
                study.enqueue_trial(self.space.to_decisions(self.space.parse(text)),
                                    user_attrs={"candidate": True})
                known.add(text)

    def _epochs_left(self, t: Any, trials: list[Any]) -> int:
        """The epochs a trial has to train: all of them, or, for a retry, those after the epochs
        the trial it retries recorded (its checkpoint holds them: at most the epoch in progress at
        a kill is lost, and a trial that outruns its forecast is cut with a checkpoint at the
        budget's end, not over it). At least one (what is left to do then is its evaluation)."""
        of = t.user_attrs.get("retry_of")
        if of is None:
            return self.config.epochs
        done = next((len(record_of(r).get("curve") or []) for r in trials if r.number == of), 0)
        return max(self.config.epochs - done, 1)

    def _queue_rank(self) -> Callable[[Any], float] | None:
        """A queued trial's place among the given cells (``candidates``: a finetune's, best first);
        None without them."""
        if not self.candidates:
            return None
        place = {self.space.format(self.space.parse(text)): i for i, text in enumerate(self.candidates)}

        def rank(t: Any) -> float:
            params = self._cell_params(t)
            if params is None:
                return math.inf
            return float(place.get(self.space.format(self.space.from_decisions(params)), math.inf))
        return rank

    def _cell_params(self, t: Any) -> dict[str, Any] | None:
        """A trial's cell as the space's decisions: those it suggested, or, not yet suggested, the
        ones it was queued with; None when neither names every decision."""
        names = {name for name, _ in self.space.decisions()}
        for params in (t.params, t.system_attrs.get("fixed_params") or {}):
            if set(params) == names:
                return params
        return None

    def _reconcile_ledger(self, study: optuna.Study) -> None:
        """A local run's session start (every earlier process is dead): close the slots a kill left
        open between a trial's end and its slot's commit (else their forecasts stay reserved for
        good), and queue again a cell whose kill fell between closing its trial and re-queuing it.
        A slot whose trial is to run again is marked re-queued, its forecast given back, as a shared
        study's workers mark a dead worker's (BudgetLedger.claim_stale): its retry reserves what it
        still needs, and a trial budget lowered since is kept (BudgetLedger.reserve)."""
        by_key = _trials_by_key(study)
        worker = _worker_name()
        for slot in self.ledger.open_slots():
            trials = by_key.get(slot.trial_key, [])
            if any(t.state in (TrialState.RUNNING, TrialState.WAITING) for t in trials):
                # (running ones are recovered next, as interrupted; waiting ones take the slot again)
                self.ledger.claim_stale(slot.trial_key, worker, None)
                continue
            if not trials:
                self.ledger.release(slot)
                continue
            last = max(trials, key=lambda t: t.number)
            status = status_of(last)
            if counts_as_trial(last):
                self.ledger.commit(slot, float(record_of(last).get("device_seconds", 0.0)))
            elif status == "interrupted" and self._cell_params(last) is not None:
                study.enqueue_trial(self._cell_params(last),
                                    user_attrs={"retry_of": last.number, "trial_key": slot.trial_key})
                self.ledger.claim_stale(slot.trial_key, worker, None)
                log.info("trial %d was cut off while being re-queued; queued again", last.number)
            else:
                self.ledger.release(slot)

    def _recover_interrupted(self, study: optuna.Study) -> None:
        """Trials whose process died: mark them interrupted and queue them again, same identity.

        With the local lock held every RUNNING trial is dead. With shared storage, only trials
        whose worker's heartbeat is older than the grace period are, and exactly one worker (the
        one whose atomic claim succeeds) re-queues each.
        """
        shared = self.config.storage is not None
        grace = self.config.heartbeat_grace
        stale = self.ledger.stale(grace) if shared else set()
        worker = _worker_name()
        slots = self.ledger.slot_keys() if shared else set()
        # (a session of this process that ended with the database gone: its trials are dead now)
        ended = set(ended_claims(self.ledger.url, self.ledger.study)) if shared else set()
        for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            key = t.user_attrs.get("trial_key")
            if shared:
                age = time.time() - t.datetime_start.timestamp() if t.datetime_start else 0.0
                if age < grace and not (key in ended and key in stale):  # one another worker has just started
                    continue
                # A key with no slot, older than the grace period: its worker died between
                # naming the trial and reserving its slot (a live one does that at once).
                if key in slots and (key not in stale or not self.ledger.claim_stale(key, worker, grace)):
                    continue
            params = self._cell_params(t)
            # Killed while the strategy was still proposing: nothing trained, nothing to re-run.
            # Closed as unstarted, it takes no proposal index (strategies.proposal_index), so the
            # resumed search proposes what an uninterrupted one would (as interrupted, it took one:
            # its cell was skipped for good and every later proposal differed: a review, 2026-12-06).
            status, why = ("interrupted", "the process stopped mid-trial") if params is not None else (
                UNSTARTED_STATUS, "the process stopped while the strategy was proposing this trial")
            try:
                study._storage.set_trial_user_attr(t._trial_id, "status", status)
                study._storage.set_trial_user_attr(t._trial_id, "reason", why)
                study.tell(t.number, state=TrialState.FAIL)
            except (RuntimeError, ValueError, optuna.exceptions.UpdateFinishedTrialError):
                continue  # finished or recovered by someone else meanwhile
            if params is None:
                if key is not None:
                    self.ledger.release_key(key)
                continue
            study.enqueue_trial(params, user_attrs={"retry_of": t.number, "trial_key": key},
                                skip_if_exists=False)
            log.info("trial %d was interrupted; re-queued with the same architecture", t.number)
        if shared:
            self._recover_orphan_slots(study, stale, worker)

    def _recover_orphan_slots(self, study: optuna.Study, stale: set[str], worker: str) -> None:
        """A shared study's slots left open by a worker killed after closing their trial: between
        closing it as interrupted and queuing its retry (the trial was lost: no retry, ever), or
        between recording it and committing its slot (the slot's forecast stayed reserved for
        good). Every rerun then stopped with "budget spent by all workers" while `show` said the
        budget had seconds left (a workers review, 2026-12-07). As _reconcile_ledger does at a
        local session's start, once the slot's heartbeat is stale, and by the one worker whose
        claim of it succeeds: committed, re-queued or released."""
        keys = {k for k in stale if not k.startswith(NON_TRIAL_PREFIXES)}
        if not keys:
            return
        by_key = _trials_by_key(study)
        grace = self.config.heartbeat_grace
        for key in sorted(keys):
            trials = by_key.get(key, [])
            if not trials or any(t.state in (TrialState.RUNNING, TrialState.WAITING) for t in trials):
                continue  # (running: recovered above; waiting: its retry takes the slot)
            last = max(trials, key=lambda t: t.number)
            if not self.ledger.claim_stale(key, worker, grace):
                continue  # (beaten again, or another worker's claim)
            if counts_as_trial(last):
                self.ledger.commit(Slot(key, 0.0), float(record_of(last).get("device_seconds", 0.0)))
                log.info("trial %d's slot was left open by a worker that stopped; committed", last.number)
            elif any(status_of(t) == "interrupted" for t in trials) and self._cell_params(last) is not None:
                # (cut off, then its retry closed untrained, e.g. refused by the budget, and the
                # worker killed before queuing it again: re-queued as that retry was)
                of = last.number if status_of(last) == "interrupted" else last.user_attrs.get("retry_of", last.number)
                study.enqueue_trial(self._cell_params(last), user_attrs={"retry_of": of, "trial_key": key},
                                    skip_if_exists=False)
                log.info("trial %d was cut off before it was re-queued; re-queued with the same architecture",
                         last.number)
            else:
                self.ledger.release(Slot(key, 0.0))

    def _search(self, study: optuna.Study, p: Prepared) -> str:
        cfg = self.config
        self._stopped_for_others = False
        n_train = len(p.search_train_y)
        trials = study.get_trials(deepcopy=False)
        cost_model = CostModel()
        compiled = self._trial_compilations(trials)  # (--fuse all) what compiling each trial's network took
        cache: dict[str, int] = {}
        _note_trained(trials, cache)
        for t in trials:
            a = record_of(t)
            if status_of(t) in ("complete", "pruned") and a.get("device_seconds"):
                # A trial resumed from a checkpoint holds the whole curve but pays (and measured)
                # only the epochs after the resume; a retried one after an out-of-memory failure
                # also paid for the failed attempt. The cost model gets what this attempt trained.
                epochs = a.get("trained_epochs",
                               len(a.get("curve", [])) - (int(t.user_attrs.get("resumed_from_epoch", 1)) - 1))
                if a.get("fused") and "compile_seconds" not in a:
                    continue  # (--fuse all before its compilation was timed apart: a fixed cost in its seconds)
                cost_model.add(n_train * epochs, a.get("search_macs", 0), a.get("trained_seconds", a["device_seconds"]))
        spent = spent_of(study, trials)
        # (this session's wall time is counted from here: the probes record theirs as they go)
        wall_at_start = spent.wall_seconds
        if spent.trials:
            log.info("resuming %s: %d trials done, %.1f device-s spent", self.run_dir, spent.trials,
                     spent.device_seconds)

        cheap, dear = self._extreme_archs()
        n_final = len(p.train) + len(p.val)
        warm_up(self.device)  # (an import's seconds, not the device's: billed to no probe and no trial)
        session_start = time.perf_counter()
        prev = study.user_attrs.get("probe") or {}
        final_spec = self.final_space.spec()
        uniform = self._uniform_archs(self.final_space)
        final_macs = [self._final_cost(a).macs for a in uniform]
        probe_final = cfg.final_training and not self._final_probes_stand(prev)
        # (--fuse compiles the final network first: timed once per run and final network)
        probe_compile = cfg.final_training and cfg.fuse != "off" and (
            probe_final or "final_compile_seconds" not in prev)
        # (--fuse all compiles every trial's network too: timed once per run)
        probe_trial_compile = cfg.fuse == "all" and "trial_compile_seconds" not in prev
        dear_macs = self._search_macs(dear)
        # A probe times training steps; a trial also scores the validation images every epoch (at
        # most EVAL_FRACTION of a training image each): without them the first forecast was 1.4 to 2
        # times too cheap on small data, and budgets that could not pay a trial were let through to
        # be cut in it (review D, 2026-12-07). Measured trials include it: the cost model's own.
        with_validation = 1.0 + EVAL_FRACTION * len(p.val_y) / max(1, n_train)
        if not len(cost_model) and self._search_probe_stands(prev):
            # An earlier session probed and was stopped before a trial finished: its probe stands
            # (the settings are the study's, the device the same), rather than be paid again at
            # every preemption.
            cost_model.add(1.0, dear_macs, float(prev["search_seconds_per_sample"]) * PROBE_MARGIN * with_validation)
        def probes_within_budget() -> None:
            """Refuse once the probes have used the whole budget: a 10 s budget paid 35 s of probes
            of the final network (C=16, N=5: one per op) before it was refused, and a $0.000001
            budget 2000 times itself (a user review, 2026-12-06)."""
            used = time.perf_counter() - session_start
            if used > min(self.budget.device_seconds_left(spent), self.budget.wall_seconds_left(spent)):
                raise _ProbesOverBudget(used)

        if not len(cost_model) or probe_final or probe_compile or probe_trial_compile:
            update: dict[str, Any] = {}
            # The final network's probes an interrupted session took (one per op, seconds each on a
            # CPU): the next goes on from them (they were all taken again: a user review,
            # 2026-12-06), where they are of this final network on this device.
            final_of = {"final_macs": final_macs, "final_space": final_spec, "device": self.device_name}
            partial = prev.get("final_probes_partial") or {}
            per_op: list[float] = list(partial.get("per_op", [])) if probe_final and all(
                partial.get(k) == v for k, v in final_of.items()) else []

            def keep_partial() -> None:
                if probe_final and 0 < len(per_op) < len(uniform):
                    update["final_probes_partial"] = {**final_of, "per_op": per_op}

            billed = [0.0]  # this session's probe seconds already in the study's record

            def bill() -> None:
                """Add the seconds since the last bill to the record, with what the probes found so
                far: a process killed outright (SIGKILL) during the next probe loses neither what
                it paid nor the probes taken (both were lost, and the probes taken again)."""
                keep_partial()
                now = time.perf_counter() - session_start
                self._add_to_attr(study, "probe", now - billed[0], **update)
                self._record_wall(study, wall_at_start + now)
                billed[0] = now

            try:
                if not len(cost_model):
                    # First session: probe the costliest cell, so that the first forecast is an upper bound.
                    per_sample = self._probe(dear, self.space, p.search_resolution, n_train, stoppable=True)
                    cost_model.add(1.0, dear_macs, per_sample * PROBE_MARGIN * with_validation)
                    update = {"search_seconds_per_sample": per_sample, "search_macs": dear_macs,
                              "search_device": self.device_name}
                    if probe_final or probe_compile or probe_trial_compile:
                        bill()
                if probe_final:  # one cell per op, to forecast any cell's final training (_final_seconds)
                    for a in uniform[len(per_op):]:
                        probes_within_budget()
                        per_op.append(self._probe(a, self.final_space, p.resolution, n_final, stoppable=True))
                        if len(per_op) < len(uniform):
                            bill()
                    update.update({"final_seconds_per_sample": per_op, "final_macs": final_macs,
                                   "final_space": final_spec, "final_probes_partial": None})
                if probe_compile:
                    update["final_compile_seconds"] = self._compile_seconds()
                if probe_trial_compile:
                    update["trial_compile_seconds"] = self._compile_seconds(final=False)
            except Preempted:
                # A signal during the probes (the final network's take seconds each on a CPU): stop
                # now, paid for, keeping the probes taken (the next session reuses them), and their
                # wall time (the loop's `finally`, which records it otherwise, is not reached).
                bill()
                return f"stopped by {self._signal_name} during the timing probes; run the same command to resume"
            except _ProbesOverBudget as over:
                keep_partial()
                self._add_to_attr(study, "probe", over.seconds - billed[0], **update)
                self._record_wall(study, wall_at_start + over.seconds)
                fs = self.final_space.spec()
                final = f" and of the final network (C={fs.get('C')}, N={fs.get('N')})" if per_op else ""
                if spent.trials and min(self.budget.device_seconds_left(spent), self.budget.wall_seconds_left(spent)) <= 0:
                    # (spent before this session began, as by a cap lowered on resume: the probes
                    # were blamed, "0.0 s", "before one trial could run", after trials had: review D)
                    raise self._refused(study, BudgetError(
                        f"the budget ({self.budget.describe()}) was spent before this session began "
                        f"({spent.trials} trials, {spent.device_seconds:.1f} device-s, {dollars(spent.cost)}): raise "
                        "it to search more or to train the final model")) from None
                raise self._refused(study, BudgetError(
                    f"the budget ({self.budget.describe()}) was used up by the timing probes ({over.seconds:.1f} s: "
                    f"training steps of the search network{final}) before one trial could run, so it cannot pay "
                    "for a search. Raise the budget, or make the final training cheaper with --final-C and "
                    "--final-N (or --no-final), and trials with --subset, --search-resolution or -C/-N")) from None
            # (added to the record as it is now: another worker may have probed meanwhile)
            self._add_to_attr(study, "probe", time.perf_counter() - session_start - billed[0], **update)
        # (read once, not at every forecast)
        trial_compile_probe = float((study.user_attrs.get("probe") or {}).get("trial_compile_seconds", 0.0)) \
            if cfg.fuse == "all" else 0.0

        def final_forecast(trials: list[Any] | None = None, first: Any = None) -> float:
            """Seconds of the best cell's final training, which the search reserves before each
            trial. Before any trial, of ``first`` (the cell about to be tried: the best if it is the
            only one) or of the costliest. (Not of the best cell whose final training still fits,
            as _final_choice picks when the search has stopped: reserved so, time lost outside the
            trials' forecasts let the reserve slide down to ever cheaper, worse cells while more
            trials ran, and the best cell, found early, was never the final model.)"""
            if not cfg.final_training:
                return 0.0
            rows = self._ranked_for_final(study, trials)
            best = rows[0] if rows else None
            if best is not None and self._final_done(study, best.arch):
                return 0.0  # none to come, or that cell's final training is done and paid
            if best is None and first is not None:
                return self._final_to_come(study, self.final_space.format(first))
            return self._final_to_come(study, best.arch) if best is not None else self._final_seconds(study, None)

        def trial_forecast(arch: Any, epochs: int | None = None) -> float:
            """A trial's device seconds: of ``epochs`` (default all: a retry has only those left
            that its checkpoint lacks, _epochs_left)."""
            return cost_model.forecast(n_train * (cfg.epochs if epochs is None else epochs),
                                       self._search_macs(arch)) + compile_allowance()

        def next_cheapest(trials: list[Any]) -> float:
            """The least a next trial can cost: the cheapest cell's, or a queued retry's (taken
            first, _ask_in_order), which needs only its epochs left. (Priced as a whole trial, a
            trial cut off one epoch before its end never resumed under a budget with room for that
            epoch, its seconds lost: found 2026-12-07.)"""
            cheapest = trial_forecast(cheap)
            retry = next((t for t in trials if t.state == TrialState.WAITING and "retry_of" in t.user_attrs
                          and self._cell_params(t) is not None), None)
            if retry is not None:
                cheapest = min(cheapest, trial_forecast(self.space.from_decisions(self._cell_params(retry)),
                                                        self._epochs_left(retry, trials)))
            return cheapest

        def compile_allowance() -> float:
            return FINAL_MARGIN * self._trial_compile_mean(compiled, trial_compile_probe) if cfg.fuse == "all" \
                else 0.0

        def cannot_pay(why: str, trial_s: float) -> BudgetError:
            lo, hi = sorted((final_forecast(first=cheap), final_forecast(first=dear))) if cfg.final_training \
                else (0.0, 0.0)  # (low to high: noisy probes can order the two cells' forecasts either way)
            final = f"{lo:.1f} s" if lo == hi else f"{lo:.1f} s (cheapest cell) to {hi:.1f} s (costliest)"
            return BudgetError(
                f"the budget ({self.budget.describe()}) cannot pay for one trial and the final training "
                f"({why}): the cheapest cell is forecast at {trial_s:.1f} device-s per trial and the final "
                f"training at {final} on {self.device_name}. Raise the budget, or make trials "
                "cheaper with --subset, --epochs, --search-resolution or -C/-N, or the final training with "
                "--final-epochs, --final-C or --final-N")

        # Feasible if the cheapest trial and its final training fit (before any trial, the loop
        # reserves the final training of the cell it is about to try: the best if it is the only one).
        spent = spent_of(study)
        reserve = final_forecast(first=cheap)
        cheapest = next_cheapest(study.get_trials(deepcopy=False))
        wall_so_far = wall_at_start + time.perf_counter() - session_start + self._finals_took(study)
        reason = self.budget.stop_reason(
            self.budget.with_reserve(Spent(0, spent.device_seconds, spent.cost, wall_so_far), reserve), cheapest, cheapest)
        if reason is not None and spent.trials == 0:  # (a trial limit cannot stop zero trials)
            self._record_wall(study, wall_at_start + time.perf_counter() - session_start)  # (the probes')
            raise self._refused(study, cannot_pay(reason, cheapest))
        if study.user_attrs.get("refused"):
            study.set_user_attr("refused", None)  # (an earlier session's refusal: this one goes on)

        pruner = create_pruner(cfg.pruner, max_epochs=cfg.epochs)
        if (note := pruner_note(pruner, cfg.epochs)) is not None:
            log.warning(note)
        wall_before = wall_at_start
        self._wall_now = lambda: wall_before + time.perf_counter() - session_start
        worker = _worker_name()
        queue_rank = self._queue_rank()  # (the given cells' places, parsed once, not per trial)
        seconds_limited = not math.isinf(self.budget.device_seconds_left(Spent()))  # (device-hours or dollars)
        bar = self._bar(spent)
        lock = threading.RLock()  # guards the loop's own state when several trials run at once
        counts = {"failures": 0, "repeats": 0}
        stopping: list[str] = []  # a concurrent candidate's decision to stop the search
        last_failure: list[str | None] = [None]
        measure_start = time.perf_counter()
        k = self._concurrency(p)
        if self.config.concurrent == 0 and self.device.type == "cuda":  # measuring it used the GPU
            self._add_to_attr(study, "probe", time.perf_counter() - measure_start)
        share = DeviceShare() if k > 1 else None
        shared = self.config.storage is not None
        budget_stop: list[str] = []  # the budget's reasons to stop, when it stopped the search
        deferred: list[tuple[dict[str, Any], dict[str, Any]]] = []  # queued cells rejected as unaffordable

        # Wall time an iteration takes beyond its trial's device seconds (the study's reads and
        # writes, checkpoints, a busy machine): the stop checks add the largest of the last few to
        # a trial's wall forecast, else each trial erodes the final training's reserve by it.
        # (With several candidates at once their iterations overlap: left out.)
        last_start: list[float | None] = [None]
        last_device = [0.0]
        overheads: list[float] = []

        def iteration() -> str | None:
            """Propose, reserve, train and record one trial; a reason string means stop."""
            with lock:
                now = time.perf_counter()
                if k == 1 and last_start[0] is not None:
                    overheads[:] = [*overheads[-4:], max(0.0, now - last_start[0] - last_device[0])]
                last_start[0], last_device[0] = now, 0.0
                extra = max(overheads, default=0.0)
                if self._stop_flag:
                    return f"stopped by {self._signal_name}; run the same command to resume"
                if stopping:  # another concurrent candidate's iteration decided to stop
                    return stopping[0]
                trials_now = study.get_trials(deepcopy=False)  # read once per trial, shared below
                if shared:  # cells other workers finished since: not paid for twice
                    _note_trained(trials_now, cache)
                so_far = spent_of(study, trials_now)
                so_far = Spent(so_far.trials, so_far.device_seconds, so_far.cost,
                               wall_before + time.perf_counter() - session_start + self._finals_took(study))

                def with_final(first: Any = None) -> tuple[float, Spent]:
                    final_s = final_forecast(trials_now, first)
                    return final_s, self.budget.with_reserve(so_far, final_s)

                # k candidates at once share the device: each takes about k times its device
                # seconds of wall time. First: can even the cheapest cell still be paid for? (With
                # the final training reserved now: the chosen cell's, or the cheapest's before any.)
                _, base = with_final(cheap)
                cheapest = next_cheapest(trials_now)
                stop = self.budget.stop_reason(base, cheapest, cheapest * k + extra)
                if stop is not None:
                    budget_stop.append(stop)
                    return stop
                if shared:
                    self._recover_interrupted(study)
                if self.candidates_only and not study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
                    self._stopped_for_others = shared  # (the last given cells may be other workers')
                    return "every given cell was evaluated"
                trial = _ask_in_order(study, queue_rank)
                key = trial.user_attrs.get("trial_key")  # a re-queued trial keeps its identity
                if key is None:
                    key = uuid.uuid4().hex
                    trial.set_user_attr("trial_key", key)
                arch = self.space.from_decisions(
                    {name: trial.suggest_categorical(name, list(choices)) for name, choices in self.space.decisions()})
                # Then the cell proposed: its own forecast is checked and reserved. A cell over the
                # size limit takes no slot (it is rejected at no cost, and a slot held meanwhile
                # would look like a spent budget to a concurrent candidate); nor does a cell
                # already evaluated (served by the cache: no trial of the budget, no seconds).
                oversize = cfg.max_params is not None and self._final_cost(arch).params > cfg.max_params
                cell_key = self._cache_key(self.space.canonical(arch), p)
                free = oversize or cell_key in cache
                forecast = 0.0 if free else trial_forecast(arch, self._epochs_left(trial, trials_now))
                final_s, spent = with_final(arch)  # (before any result: this cell's final training)
                stop = self.budget.stop_reason(spent, forecast, forecast * k + extra)
                unpayable = None if free or self.candidates_only else self._unpayable(
                    study, arch, so_far, forecast, k, base=base)
                if unpayable is not None:
                    # A cell whose own final training the budget cannot pay could never be the final
                    # model: it is not tried (at no cost), and the strategy is asked for another.
                    fixed = study._storage.get_trial(trial._trial_id).system_attrs.get("fixed_params")
                    trial.set_user_attr("status", "rejected")
                    trial.set_user_attr("reason", unpayable)
                    study.tell(trial, state=TrialState.FAIL)
                    if fixed:  # a queued cell (a candidate, a retry): queued again when the session ends,
                        # for a later session with more budget (queued now, it would be asked again at once)
                        deferred.append((fixed, {k: v for k, v in trial.user_attrs.items()
                                                 if k in ("candidate", "retry_of", "trial_key")}))
                    counts["repeats"] += 1
                    if counts["repeats"] >= self._repeat_limit():
                        stopping.append(f"the strategy proposed only already-evaluated, over-size or "
                                        f"unaffordable cells {counts['repeats']} times in a row; the last: "
                                        f"{unpayable}")
                        budget_stop.append(stopping[-1])  # (no trial yet: an error, as the budget's stops)
                        return stopping[-1]
                    return None
                limit = None
                if seconds_limited:
                    # The ledger holds the trials' seconds; what it does not hold (probes, final
                    # trainings, attempts whose process was killed) comes off its limit: its limit
                    # is what the budget has left (at today's price: seconds an earlier session
                    # paid at another price are counted in its dollars, found 2026-12-07: the whole
                    # dollar budget at today's higher price, less the ledger's seconds, refused
                    # trials the dollars left paid for, at every rerun) plus what the ledger holds.
                    running = sum(paid_of(t)[0] for t in trials_now if t.state == TrialState.RUNNING)
                    held = min(self.ledger.committed() + running, so_far.device_seconds)
                    limit = self.budget.device_seconds_left(so_far) - final_s + held
                # The reservation also counts the trials still running (their forecasts), so
                # concurrent trials, here or on other workers, cannot overshoot the budget.
                slot = None if stop is not None or free else self.ledger.reserve(
                    key, worker, max_trials=cfg.max_trials, seconds_limit=limit, forecast=forecast)
                if slot is None and not free:  # over the budget, or the shared budget is spent
                    self._hand_back(study, trial)
                    if stop is None:
                        self._stopped_for_others = shared  # (the ledger's refusal: others hold the rest)
                        used, secs = self.ledger.usage()
                        who = "all workers" if shared else f"the {k} candidates training at once" if k > 1 \
                            else "this search"
                        stop = (f"budget spent by {who}: {used} trial slots and {secs:.1f} device-s "
                                f"reserved or used")
                    budget_stop.append(stop)
                    return stop
                if slot is not None:
                    self.ledger.start_beating(key, worker)
                # The seconds this trial may take before the budget (with the final training
                # reserved) runs out: a trial that outruns its forecast (a loaded machine, a wrong
                # forecast) is cut there with a checkpoint instead of overrunning the budget.
                # Concurrent candidates share the device, which is billed at most one device-second
                # per second of wall time however many train: for them it is a wall-clock deadline,
                # the same moment for all (less what their epochs in progress have not billed yet,
                # at most an epoch each). A shared study's workers split its device seconds in the
                # ledger: there a trial holds what it reserved, extended as it outruns it while the
                # ledger has seconds no other trial holds (_Grant); its wall time is a deadline.
                grant = None
                if shared:
                    allowed, allowed_by = self.budget.wall_seconds_left(spent), "time"
                    if slot is not None and limit is not None:
                        grant = _Grant(self.ledger, slot, limit, self.budget.binding(spent, device_only=True), worker)
                else:
                    allowed, allowed_by = self.budget.seconds_left(spent), self.budget.binding(spent)
                # (from now: a wait for the same cell on another candidate or worker counts too; it
                # waited past a time limit for another worker's long trial: a review, 2026-12-06)
                allowed_from = time.perf_counter()
            paid = TrialOutcome("running")
            in_flight: Any = contextlib.nullcontext()
            if share is not None or (shared and not free):
                in_flight = self._cell_in_flight(cell_key, cache, study if shared else None, worker,
                                                 give_up=lambda: time.perf_counter() - allowed_from > allowed)
            settled: list[bool] = []

            def settle(seconds: float) -> None:
                """Close the slot of a trial that stopped unfinished for what it used, before its
                retry is queued: a worker taking the retry first would find the slot running and
                reuse its reservation without a check against the limit."""
                held = grant.slot if grant is not None else slot  # (with what it was extended by)
                if held is not None and not settled:
                    self.ledger.commit(held, seconds, finished=False, worker=worker)
                    settled.append(True)

            try:
                with in_flight:
                    outcome = self._run_trial(study, trial, arch, p, cache, pruner, worker, paid, share,
                                              share_weight=forecast, allowed=allowed, allowed_by=allowed_by, grant=grant, settle=settle,
                                              allowed_from=allowed_from)
            except (_TrialLost, optuna.exceptions.UpdateFinishedTrialError) as e:
                # Taken over by another worker (this one's heartbeat lapsed): its slot and trial are
                # that worker's; what this attempt used is billed to the budget all the same. (Found
                # out by its fenced beat or ownership check, or by any write to the trial the other
                # worker closed: an epoch's progress, a cut trial's records, a cache hit's.)
                if not (isinstance(e, _TrialLost) or shared):
                    raise
                seconds = e.seconds if isinstance(e, _TrialLost) else paid.device_seconds
                self.ledger.stop_beating(key)
                self.ledger.bill(seconds)
                # The study holds this attempt up to its trial's last recorded epoch; what it used
                # after (a paused machine's wall time included) is recorded beside, so that the
                # study's spent seconds stay the ledger's (the ledger held 50.7 s, the study 33.3,
                # and later sessions stopped with seconds left by `show`: a workers review,
                # 2026-12-07).
                recorded = paid_of(study._storage.get_trial(trial._trial_id))[0]
                if seconds > recorded:
                    self._add_to_attr(study, TAKEN_OVER_KEY, seconds - recorded)
                log.warning("trial %d was taken over by another worker of this study while this one trained it "
                            "(its heartbeat lapsed for over %.0f s: a paused or suspended machine, or a lost "
                            "connection); dropped here, the %.1f device-s it used billed to the budget",
                            trial.number, cfg.heartbeat_grace, seconds)
                return None
            except Preempted:
                settle(paid.device_seconds)
                if paid.cut_by_budget:  # (the wall time is recorded by the loop's `finally`)
                    # (A shared study's other workers may be finishing the trials that it needs.)
                    if spent_of(study).trials == 0 and not shared:
                        raise BudgetError(
                            f"the budget ({self.budget.describe()}) ran out during the first trial: it was "
                            f"forecast at {forecast:.3g} s and cut after {paid.cut_after:.3g} s, leaving the final "
                            "training's reserve. Its checkpoint is kept: run the same command with a larger "
                            "budget to resume it, or make trials cheaper (--subset, --epochs, -C/-N)") from None
                    return paid.reason
                return (f"stopped by {self._signal_name}: trial {trial.number} saved a checkpoint "
                        "and will resume from it; run the same command to resume")
            except BaseException:
                self.ledger.abandon(key)  # (its claim open: this process's next session takes it back)
                raise
            with lock:
                status = outcome.status
                last_device[0] = outcome.device_seconds
                if grant is not None:
                    slot = grant.slot
                # (a cell in flight on a concurrent candidate: served from the cache, not paid; a
                # cell over the size limit reserves no slot)
                if slot is not None and status == "cached":
                    self.ledger.release(slot)
                elif slot is not None:
                    self.ledger.commit(slot, outcome.device_seconds, worker=worker)
                after = None  # the study after this trial, read once for the checkpoints and the bar
                if status in ("complete", "pruned", "failed"):
                    after = study.get_trials(deepcopy=False)
                    self._prune_checkpoints(study, after)
                if status in ("complete", "pruned"):
                    cost_model.add(n_train * outcome.trained_epochs, outcome.search_macs, outcome.trained_seconds)
                    if outcome.compile_seconds:
                        compiled.append(outcome.compile_seconds)
                counts["failures"] = counts["failures"] + 1 if status == "failed" else 0
                if status == "failed":
                    last_failure[0] = outcome.reason
                counts["repeats"] = counts["repeats"] + 1 if status in ("cached", "rejected") else 0
                self._record_wall(study, wall_before + time.perf_counter() - session_start)
                if status != "rejected":
                    self._update_bar(bar, study, after)
                if counts["failures"] >= cfg.max_consecutive_failures:
                    reason = (f"stopped after {counts['failures']} consecutive failed trials; the last "
                              f"reason: {last_failure[0]}. See `budgetnas show`")
                    log.error(reason)
                    stopping.append(reason)
                    return reason
                if counts["repeats"] >= self._repeat_limit():
                    stopping.append(f"the strategy proposed only already-evaluated, over-size or "
                                    f"unaffordable cells {counts['repeats']} times in a row; the space "
                                    f"seems exhausted{self._fit_note()}")
                    return stopping[-1]
            return None

        reason = "no budget limit reached"
        try:
            if k == 1:
                while True:
                    stop = iteration()
                    if stop is not None:
                        reason = stop
                        break
            else:
                reason = self._run_concurrently(iteration, k)
        finally:
            for fixed, attrs in deferred:
                study.enqueue_trial(fixed, user_attrs=attrs, skip_if_exists=False)
            self._record_wall(study, wall_before + time.perf_counter() - session_start)
            self._wall_now = None
            if bar is not None:
                bar.close()
        if budget_stop and not shared and not self._stop_flag and spent_of(study).trials == 0:
            # The cheapest cell fitted, the cells proposed did not: say so rather than return a
            # search with no result (the probes stay recorded in the study).
            raise self._refused(study, cannot_pay(budget_stop[0], trial_forecast(cheap)))
        log.info("search stopped: %s", reason)
        return reason

    def _unpayable(self, study: optuna.Study, arch: Any, so_far: Spent, forecast: float, k: int,
                   base: Spent) -> str | None:
        """Why the budget can pay for ``arch``'s trial beside the final training it reserves now
        (``base``: that of the cell the final training would train, or of the cheapest before any
        result) but not beside ``arch``'s own final training; None when it can, or cannot anyway."""
        if not self.config.final_training or self.budget.stop_reason(base, forecast, forecast * k) is not None:
            return None
        text = self.final_space.format(arch)
        if self._final_done(study, text):
            return None
        own = self._final_to_come(study, text)
        if self.budget.stop_reason(self.budget.with_reserve(so_far, own), forecast, forecast * k) is None:
            return None
        # (what is left before its final training: the stop reason of the spent with its own final
        # training reserved would say "0 remain")
        left = min(self.budget.device_seconds_left(so_far) - forecast,
                   self.budget.wall_seconds_left(so_far) - forecast * k)
        return (f"{UNAFFORDABLE_REASON} is forecast at {own:.3g} device-s, and the budget has "
                f"{max(left, 0):.3g} s left beside its trial ({forecast:.3g} device-s)")

    def _hand_back(self, study: optuna.Study, trial: optuna.Trial) -> None:
        """Close a trial that will not train (no budget for it) as ``unstarted``; a queued cell (a
        candidate or a retry) is queued again, so that a later session with more budget runs it."""
        fixed = study._storage.get_trial(trial._trial_id).system_attrs.get("fixed_params")
        trial.set_user_attr("status", UNSTARTED_STATUS)
        study.tell(trial, state=TrialState.FAIL)
        if fixed:
            study.enqueue_trial(fixed, user_attrs={k: v for k, v in trial.user_attrs.items()
                                                   if k in ("candidate", "retry_of", "trial_key")})

    def _run_concurrently(self, iteration: Callable[[], str | None], k: int) -> str:
        """Run ``iteration`` in ``k`` threads, each training its own candidate (its own CUDA
        stream and graph), until one of them says stop; the others finish the trial they are in.
        An unexpected error in one stops the others as a signal would (checkpoint, re-queue)."""
        halt = threading.Event()
        reasons: list[str] = []
        errors: list[BaseException] = []

        def loop() -> None:
            try:
                while not halt.is_set():
                    stop = iteration()
                    if stop is not None:
                        reasons.append(stop)
                        halt.set()
            except BaseException as e:  # re-raised in the calling thread below
                errors.append(e)
                halt.set()
                self.request_stop(f"an error in a concurrent trial ({type(e).__name__})")

        log.info("training %d candidates at once on %s", k, self.device_name)
        threads = [threading.Thread(target=loop, name=f"budgetnas-trial-{i}", daemon=True) for i in range(k)]
        for t in threads:
            t.start()
        for t in threads:
            while t.is_alive():  # short joins keep the main thread able to take signals
                t.join(0.2)
        if errors:
            raise errors[0]
        return reasons[0] if reasons else "no budget limit reached"

    def _concurrency(self, p: Prepared) -> int:
        """How many candidates train at once: ``concurrent`` if set, else (0, "auto") one on the
        CPU and, on CUDA, the smallest count whose measured aggregate speed is within 10 % of the
        best of 1, 2, 4 and 8 (a small network cannot fill a GPU alone)."""
        k = self.config.concurrent
        if k >= 1:
            return k
        if self.device.type != "cuda":
            log.info("concurrent=auto: one candidate at a time on %s", self.device_name)
            return 1
        decisions = self.space.decisions()
        mid = self.space.from_decisions({n: c[len(c) // 2] for n, c in decisions})
        speeds: dict[int, float] = {}
        peak = 0
        data_bytes = sum(t.numel() * t.element_size() for t in (p.search_train_x, p.val_x) if t is not None)
        for kk in (1, 2, 4, 8):
            if kk > 1:  # room for kk candidates, each with its own copy of the data on the device?
                free, _ = torch.cuda.mem_get_info(self.device)
                if kk * (peak + data_bytes) > 0.8 * (free + peak):
                    break
            torch.cuda.reset_peak_memory_stats(self.device)
            try:
                # images/s of kk at once; longer runs than the cost probe: a GPU step is short
                speeds[kk] = 1.0 / self._probe(mid, self.space, p.search_resolution, len(p.search_train_y),
                                               k=kk, steps=(4, 12))
            except (RuntimeError, BudgetNASError) as e:  # out of memory, a failed capture, a NaN
                why = (str(e).splitlines() or [type(e).__name__])[0][:120]
                log.info("concurrent=auto: %d candidates at once failed (%s)", kk, why)
                break
            if kk == 1:
                peak = torch.cuda.max_memory_allocated(self.device)
            if kk > 1 and speeds[kk] < 1.1 * speeds[kk // 2]:
                break  # no longer worth it
        if not speeds:
            return 1
        best = max(speeds.values())
        k = min(kk for kk, v in speeds.items() if v >= 0.9 * best)
        log.info("concurrent=auto: %s images/s for 1..%d candidates at once; training %d at once",
                 ", ".join(f"{v:,.0f}" for v in speeds.values()), max(speeds), k)
        return k

    def _run_trial(self, study: optuna.Study, trial: optuna.Trial, arch: Any, p: Prepared,
                   cache: dict[str, int], pruner: Any, worker: str, paid: "TrialOutcome",
                   share: "DeviceShare | None" = None, share_weight: float = 1.0, allowed: float = math.inf,
                   allowed_by: str = "the", grant: "_Grant | None" = None,
                   settle: Callable[[float], None] | None = None,
                   allowed_from: float | None = None) -> "TrialOutcome":
        """Train (or reject, or look up) one candidate and record it; returns what the loop needs.

        ``paid`` is filled in as epochs finish, so a caller that catches :class:`Preempted` knows
        what the cut trial cost without reading it back from the storage. After ``allowed``
        seconds the training stops with a checkpoint (``paid.cut_by_budget``), as on a signal;
        ``allowed_by`` names the limit that set them ("time", "device-hour", "dollar"). So it
        does when it has used the device seconds it holds in a shared study's ledger and the
        ledger has no more for it (``grant``). A trial stopped unfinished calls ``settle`` with the
        seconds it used before it is queued again.
        """
        cfg = self.config
        shared = cfg.storage is not None  # (a trial of a shared study can be taken over: _TrialLost)
        fidelity = self._fidelity(p)
        canonical = self.space.canonical(arch)
        cache_key = self._cache_key(canonical, p)
        final_cost = self._final_cost(arch)
        record = {
            "record_version": RECORD_VERSION, "arch": self.space.format(arch), "canonical": canonical,
            "space": self.space.spec(), "fidelity": fidelity, "seed": cfg.seed,
            "fingerprint": self.prepared.fingerprint if self.prepared else None, "evaluator": "train",
            "trainer": TRAINER_VERSION,
            "strategy": cfg.strategy, "device": self.device_name, "worker": worker,
            "params": final_cost.params, "macs": final_cost.macs, "search_macs": self._search_macs(arch),
            "cache_key": cache_key,
        }
        paid.search_macs = record["search_macs"]

        def set_progress(curve: list[dict[str, Any]], seconds: float, **extra: Any) -> None:
            # (``paid`` first: a write refused because another worker closed the trial, raised
            # below, is handled by the loop as a takeover billed at ``paid.device_seconds``)
            paid.device_seconds, paid.epochs = seconds, len(curve)
            # (the search's wall time so far rides along: the ledger reads it where a session
            # killed outright recorded no more, which lost up to a trial's wall time a kill)
            mark = {"wall_mark": self._wall_now()} if self._wall_now is not None else {}
            trial.set_user_attr(PROGRESS_KEY, {"curve": curve, "device_seconds": seconds,
                                               "cost": self.budget.cost_of(seconds), **extra, **mark})

        sizes = {"params": final_cost.params, "macs": final_cost.macs}

        def values_from(metrics: dict[str, float]) -> list[float]:
            return [metrics[o] if o in METRIC_OBJECTIVES else float(sizes[o]) for o in cfg.objectives]

        if cfg.max_params is not None and final_cost.params > cfg.max_params:
            trial.set_user_attr(STATIC_KEY, to_jsonable(record))
            trial.set_user_attr("status", "rejected")
            trial.set_user_attr("reason", f"{final_cost.params:,} parameters > max_params {cfg.max_params:,}")
            # Worst possible values teach the strategy to avoid it; it costs nothing.
            study.tell(trial, [0.0 if o in METRIC_OBJECTIVES else float(sizes[o]) for o in cfg.objectives])
            return replace(paid, status="rejected")
        # A complete result serves; a pruned one only under the rule that pruned it (see _note_trained).
        hit, rule = cache.get(cache_key), None
        if hit is None and any(k.startswith(cache_key + _PRUNED_BY) for k in cache):
            place = _places(study.get_trials(deepcopy=False)).get(trial.number, trial.number)
            rule = pruning_rule(pruner, place, cfg.epochs)
            hit = None if rule is None else cache.get(_pruned_entry(cache_key, rule))
            if hit is None:
                log.info("trial %d: the same cell was pruned before under another pruning rule; trained now",
                         trial.number)
        src = None if hit is None else study._storage.get_trial(
            study._storage.get_trial_id_from_study_id_trial_number(study._study_id, hit))
        if src is not None:
            src_record = record_of(src)
            record["search_macs"] = src_record.get("search_macs", 0)
            trial.set_user_attr(STATIC_KEY, to_jsonable(record))
            set_progress(src_record.get("curve", []), 0.0)
            trial.set_user_attr("cache_of", src.number)
            if status_of(src) == "pruned":
                # Pruned before at this fidelity and seed: pruned again, without training it again.
                if len(cfg.objectives) == 1:
                    for e in src_record.get("curve", []):
                        trial.report(e["metrics"][cfg.metric], e["epoch"])
                trial.set_user_attr("status", "pruned")
                trial.set_user_attr("pruned_by", rule)
                if src_record.get("curve"):  # (what strategies learn from a pruned cell: see PARTIAL_SCORE)
                    trial.set_user_attr(PARTIAL_SCORE, src_record["curve"][-1]["metrics"][cfg.metric])
                trial.set_user_attr("reason", f"pruned as trial {src.number}, the same cell at the same fidelity")
                study.tell(trial, state=TrialState.PRUNED)
                return replace(paid, status="cached", search_macs=record["search_macs"])
            trial.set_user_attr("status", "cached")
            # The metrics are the source's; sizes are this cell's own (two cells that compute the
            # same function can differ in parameters, e.g. convolutions on a dead edge).
            study.tell(trial, [v if o in METRIC_OBJECTIVES else float(sizes[o])
                               for o, v in zip(cfg.objectives, src.values)])
            return replace(paid, status="cached", search_macs=record["search_macs"])
        trial.set_user_attr(STATIC_KEY, to_jsonable(record))

        others: dict[int, list[float]] = {}
        metric = cfg.metric
        single = len(cfg.objectives) == 1

        # A retry is one candidate with the trial it retries: it takes that trial's place among
        # the peers and in a Hyperband bracket, and the cut-off attempt's partial curve (which the
        # retry carries on from its checkpoint) is not a second peer. Places are counted without
        # retries and unstarted proposals (_places): by trial number, every retry shifted the
        # brackets of all later trials, and a resumed search pruned other cells than an
        # uninterrupted one (a review, 2026-12-06). Read with the peers, from the same trials.

        def rung_values(curve: list[dict[str, Any]], rec: dict[str, Any]) -> list[Any]:
            """What the pruner compares at each epoch: the metric, or with several objectives
            a tuple of them all, to maximise (sizes, fixed per cell, negated)."""
            if single:
                return [e["metrics"][metric] for e in curve]
            return [tuple(e["metrics"][o] if o in METRIC_OBJECTIVES else -float(rec[o]) for o in cfg.objectives)
                    for e in curve]

        def refresh_others() -> int:
            """Read the peers' curves into ``others``, by place; returns this trial's place."""
            others.clear()
            trials = study.get_trials(deepcopy=False)
            places = _places(trials)
            for t in trials:
                rec = record_of(t)
                if t.number != trial.number and rec.get("fidelity") == fidelity:
                    curve = rec.get("curve") or []
                    if (curve and status_of(t) not in ("cached", "interrupted") and "cache_of" not in t.user_attrs
                            and all(o in rec for o in cfg.objectives if o in SIZE_OBJECTIVES)):
                        others[places.get(t.number, t.number)] = rung_values(curve, rec)
            return places.get(trial.number, trial.number)

        curve: list[dict[str, Any]] = []
        spent_s = [0.0]
        resumed = [0]  # epochs restored from a checkpoint (paid by the interrupted trial)
        key = trial.user_attrs["trial_key"]  # (set by the loop right after ask)
        checkpoint = Checkpointer(self.artifacts_dir / "checkpoints" / f"{key}.ckpt", cfg.checkpoint_interval)

        def on_resume(restored: list[Any]) -> None:
            curve[:] = [to_jsonable(r.to_dict()) for r in restored]
            resumed[0] = len(restored)
            # The restored epochs were paid for by the interrupted trial; this one pays from here.
            set_progress(curve, paid_before_retry + spent_s[0])
            trial.set_user_attr("resumed_from_epoch", len(restored) + 1)
            log.info("trial %d resumes from its checkpoint after epoch %d", trial.number, len(restored))

        def on_epoch(rec: Any) -> bool:
            curve.append(to_jsonable(rec.to_dict()))
            spent_s[0] += rec.seconds
            set_progress(curve, paid_before_retry + spent_s[0])
            if single:
                trial.report(rec.metrics[metric], rec.epoch)
            if type(pruner) is BasePruner:
                return False  # no pruning: no need to read the other trials' curves
            me = refresh_others()
            return pruner.should_stop(me, rec.epoch, rung_values(curve, record), others)

        def interrupted(reason: str) -> None:
            trial.set_user_attr("status", "interrupted")
            trial.set_user_attr("reason", reason)
            study.tell(trial, state=TrialState.FAIL)
            if settle is not None:
                settle(paid.device_seconds)
            study.enqueue_trial(trial.params, user_attrs={"retry_of": trial.number, "trial_key": key})

        fault = _injected_faults().get(trial.number)
        train_config = self.train_config
        paid_before_retry = 0.0
        retried_at: int | None = None
        n = len(p.search_train_y)
        clock = share.now if share is not None else time.perf_counter
        attempt_start = [clock()]
        # (``allowed`` is of this trial's own device time, or of wall time among concurrent ones)
        deadline_clock = time.perf_counter if share is not None else clock
        # (``allowed`` counts from ``allowed_from`` where given: when the loop reckoned it)
        trial_start = allowed_from if allowed_from is not None else deadline_clock()

        def should_stop() -> bool:
            if shared and self.ledger.lost(key):
                raise _TrialLost(bill_attempt())  # (before any checkpoint: the trial is another's now)
            stop = stop_now()
            # A trial about to stop saves its checkpoint and writes its records: first, in a shared
            # study, is it still this worker's? (Paused past the grace, it woke over its deadline or
            # its grant and, stopping, overwrote the new owner's checkpoint and crashed on the
            # trial's records: a review, 2026-12-06.)
            if stop and shared and not self.ledger.holds(key, worker):
                raise _TrialLost(bill_attempt())
            return stop

        def stop_now() -> bool:
            if self._stop_requested():
                return True
            if deadline_clock() - trial_start > allowed:
                paid.cut_by_budget, paid.cut_by, paid.cut_after = True, allowed_by, allowed
                return True
            if grant is not None:
                used = bill_attempt()
                if not grant.covers(used):
                    paid.cut_by_budget, paid.cut_by, paid.cut_after = True, grant.by, used
                    return True
            return False

        def bill_attempt() -> float:
            """Device seconds of everything this trial ran so far, finished epochs or not: a
            trial cut off mid-epoch, failed or retried is paid for what it used."""
            return paid_before_retry + clock() - attempt_start[0]

        try:
            for attempt in (1, 2):
                attempt_start[0] = clock()
                try:
                    model = seeded_build(lambda: self.space.build(arch, in_channels=p.in_channels,
                                                                  num_classes=p.num_classes), cfg.seed)
                    with self._device_slot(share, share_weight):
                        result = train(model, p.search_train_x, p.search_train_y, p.val_x, p.val_y,
                                       train_config, num_classes=p.num_classes, seed=cfg.seed,
                                       device=self.device, on_epoch=on_epoch, on_resume=on_resume,
                                       checkpoint=checkpoint, should_stop=should_stop,
                                       inject_fault=None if fault == "oom1" and attempt == 2 else
                                       ("oom" if fault == "oom1" else fault),
                                       clock=clock)
                    break
                except torch.cuda.OutOfMemoryError:
                    model = None
                    if self.device.type == "cuda":
                        torch.cuda.empty_cache()
                    half = train_config.resolved_batch_size(n, self.device.type) // 2
                    if attempt == 2 or half < 2:  # (a batch of one is refused: BatchNorm needs two)
                        raise  # billed below, once, with everything it ran
                    paid_before_retry = bill_attempt()  # the failed attempt is still paid for
                    spent_s[0] = 0.0
                    resumed[0] = 0
                    curve.clear()
                    log.warning("trial %d ran out of GPU memory; retrying once at batch size %d",
                                trial.number, half)
                    train_config = replace(train_config, batch_size=half)
                    retried_at = half
                    trial.set_user_attr("oom_retry_batch_size", half)
                    checkpoint.delete()
        except Preempted as e:
            set_progress(curve, bill_attempt())
            if paid.cut_by_budget and not self._stop_flag:
                paid.reason = (f"{paid.cut_by} budget spent during trial {trial.number}: it was cut after "
                               f"{paid.cut_after:.3g} s ({e}), "
                               "leaving the final training's reserve; it resumes from its checkpoint when the "
                               "search is run again with a larger budget")
                interrupted(paid.reason)
                log.warning(paid.reason)
            else:
                paid.cut_by_budget = False
                interrupted(f"stopped by {self._signal_name or 'request'} ({e}); resumes from its checkpoint")
            raise
        except KeyboardInterrupt:
            set_progress(curve, bill_attempt())
            interrupted("interrupted by the user")
            raise
        except _TrialLost:
            raise
        except Exception as e:  # a failed candidate must never end the search
            if shared and isinstance(e, optuna.exceptions.UpdateFinishedTrialError):
                raise _TrialLost(bill_attempt()) from None
            if database_failed(e):
                raise  # (the study's database went away mid-trial: no fault of the cell; the session
                # stops, and the trial resumes from its checkpoint when it is run again)
            set_progress(curve, bill_attempt())
            reason = _failure_reason(e)
            if isinstance(e, torch.cuda.OutOfMemoryError) and retried_at is not None:
                reason += f", also at half the batch size ({retried_at})"
            trial.set_user_attr("status", "failed")
            trial.set_user_attr("reason", reason)
            trial.set_user_attr("traceback", traceback.format_exc()[-4000:])
            study.tell(trial, state=TrialState.FAIL)
            checkpoint.delete()
            log.warning("trial %d failed: %s", trial.number, reason)
            if self.device.type == "cuda":
                torch.cuda.empty_cache()
            return replace(paid, status="failed", reason=reason)
        # What this attempt itself trained, for the cost model (the curve may start with epochs
        # restored from a checkpoint, and the seconds billed may include a failed attempt).
        # (compiling the fused step, --fuse all, is a fixed cost of the attempt, not one per image)
        trained = {"trained_epochs": len(curve) - resumed[0],
                   "trained_seconds": result.device_seconds - result.compile_seconds,
                   **({"compile_seconds": result.compile_seconds} if result.compile_seconds or result.fused else {})}
        set_progress(curve, paid_before_retry + result.device_seconds, step_mode=result.step_mode,
                     fused=result.fused, batch_size=result.batch_size, **trained)
        if result.stopped_early:
            trial.set_user_attr("status", "pruned")
            # (the rule that stopped it: only the same rule prunes the same cell again from the cache)
            rule = pruning_rule(pruner, refresh_others(), cfg.epochs)
            trial.set_user_attr("pruned_by", rule)
            if curve:  # what REA and REINFORCE learn from a pruned cell (multi-objective: no reports)
                trial.set_user_attr(PARTIAL_SCORE, curve[-1]["metrics"][metric])
            study.tell(trial, state=TrialState.PRUNED)
            cache.setdefault(_pruned_entry(cache_key, rule), trial.number)
            return replace(paid, status="pruned", **trained)
        trial.set_user_attr("status", "complete")
        study.tell(trial, values_from(result.final))
        cache.setdefault(cache_key, trial.number)
        return replace(paid, status="complete", **trained)

    def _fidelity(self, p: Prepared) -> dict[str, Any]:
        cfg = self.config
        return {"epochs": cfg.epochs, "subset": cfg.subset, "resolution": p.search_resolution, "C": cfg.C, "N": cfg.N}

    def _cache_key(self, canonical: str, p: Prepared) -> str:
        """The evaluation cache's key: (canonical cell, fidelity, seed)."""
        return json.dumps([canonical, self._fidelity(p), self.config.seed])

    @contextlib.contextmanager
    def _cell_in_flight(self, key: str, cache: dict[str, int], study: optuna.Study | None = None,
                        worker: str = "", give_up: Callable[[], bool] | None = None) -> Any:
        """If another candidate is training the same cell (same cache key) right now, wait for
        it, so the cell is then a cache hit instead of paid twice: another thread of this process
        (concurrent candidates), or with a shared ``study`` another worker, whose claim on the cell
        is held in the ledger (and taken over if that worker's heartbeat stops). (A review,
        2026-12-06: two workers of a local search trained 4 of 80 cells twice, each proposing the
        last untried neighbour of the same optimum.) ``give_up``: stop waiting for another worker
        when it says so (the trial's time is up: it then stops at once, checkpointed)."""
        mine = None
        while key not in cache:
            with self._inflight_lock:
                other = self._inflight.get(key)
                if other is None:
                    mine = self._inflight[key] = threading.Event()
                    break
            other.wait()  # then: a cache hit, or (it failed or stopped) claim and train it here
        claim = None
        if mine is not None and study is not None:
            claim = CELL_PREFIX + hashlib.blake2b(key.encode(), digest_size=16).hexdigest()
            told = False
            while (got := self.ledger.claim_job(claim, worker, self.config.heartbeat_grace)) != "claimed":
                if got == "done":  # trained by another worker: its result, as a cache hit
                    _note_trained(study.get_trials(deepcopy=False), cache)
                    if key in cache:
                        claim = None
                        break
                    # (done, yet not in the study as trained: a claim of an older session; train it)
                    self.ledger.finish_job(claim, done=False)
                    continue
                if self._stop_requested() or (give_up is not None and give_up()):
                    claim = None  # (the training stops at once, checkpointed, as on any signal or limit)
                    break
                if not told:
                    log.info("another worker of this study is training this cell; waiting for its result")
                    told = True
                time.sleep(min(2.0, self.config.heartbeat_interval))
        try:
            yield
        finally:
            try:
                if claim is not None:  # done if it was trained here (a cache entry now), else handed back
                    self.ledger.finish_job(claim, done=key in cache, worker=worker)
            finally:  # (also when that failed, the database gone: this Search's next session waited
                # here for good for its own dead attempt, 2026-12-07)
                if mine is not None:
                    with self._inflight_lock:
                        del self._inflight[key]
                    mine.set()

    @contextlib.contextmanager
    def _device_slot(self, share: "DeviceShare | None", weight: float = 1.0) -> Any:
        """While one of several concurrent candidates trains: its own CUDA stream, and a place of
        ``weight`` in the fair-share clock that splits the device's time between the candidates."""
        if share is None:
            yield
            return
        stream: Any = contextlib.nullcontext()
        if self.device.type == "cuda":  # one stream per thread, kept for all its trials
            if getattr(self._streams, "stream", None) is None:
                self._streams.stream = torch.cuda.Stream(self.device)
            stream = torch.cuda.stream(self._streams.stream)
        share.enter(weight)
        try:
            with stream:
                yield
        finally:
            share.exit()

    def _prune_checkpoints(self, study: optuna.Study, trials: list[Any]) -> None:
        """Keep the checkpoints of the best few finished trials (and of unfinished ones) only."""
        by_number = {t.number: t for t in trials}
        # A retried trial shares its key with the interrupted one: what counts is the latest.
        latest = {t.user_attrs.get("trial_key"): status_of(t) for t in sorted(trials, key=lambda t: t.number)}
        keep = {key for key, status in latest.items() if status in ("interrupted", "running", "waiting")}
        # (trained trials only: a cache hit has no checkpoint, and one among the best kept fewer
        # than --keep-checkpoints: a review, 2026-12-08)
        trained = [r for r in ranked(study, self.config.metric, trials) if r.status == "complete"]
        for row in trained[:self.config.keep_checkpoints]:
            keep.add(by_number[row.number].user_attrs.get("trial_key"))
        folder = self.artifacts_dir / "checkpoints"
        for path in folder.glob("*.ckpt") if folder.exists() else []:
            if path.stem not in keep and not path.name.startswith("final-"):
                path.unlink(missing_ok=True)

    # -- results --------------------------------------------------------------------------------
    def _ranked_for_final(self, study: optuna.Study, trials: list[Any] | None = None) -> list[TrialView]:
        """The trials the final training may train, best first: the Pareto front of a multi-
        objective study (by the metric) before the rest, within the size limit."""
        # (by the size of the network the final training builds now: a trial's record holds it as
        # it was when the trial ran, and --final-C/--final-N may have changed since)
        return final_candidates(study, self.config.metric, max_params=self.config.max_params,
                                size=self._final_params, trials=trials)

    def _final_choice(self, study: optuna.Study, spent: Spent,
                      trials: list[Any] | None = None) -> tuple[TrialView | None, str | None]:
        """The cell the final training trains, and why it is not the best (None when it is).

        The best cell whose final training the budget left after ``spent`` can still pay for (or
        that is trained already): when the best cell was found late and its final training is
        dearer than what is left, a cell that scored a little less is trained rather than the
        budget overrun. The search reserved such a final training before each trial, so one fits
        unless a forecast was wrong; if none does, the best.
        """
        rows = self._ranked_for_final(study, trials)
        if not rows or not self.config.final_training:
            return (rows[0] if rows else None), None
        study = _AttrsOnce(study)  # type: ignore[assignment]
        left = self.budget.seconds_left(spent)
        for r in rows:
            # (a final model shortened by the budget is one that fits: kept, or trained in full if
            # the budget now pays for that; see _why_keep_final)
            if self._final_done(study, r.arch, full=False) or self._final_to_come(study, r.arch) <= left:
                if r is rows[0]:
                    return r, None
                top = rows[0]
                return r, (f"the final training is of trial {r.number}'s cell: trial {top.number} scored "
                           f"higher, but its final training (forecast {self._final_to_come(study, top.arch):.3g} "
                           f"device-s) does not fit the {max(left, 0):.3g} s the budget has left")
        return rows[0], None

    def _agreed_final_choice(self, study: optuna.Study, spent: Spent) -> tuple[TrialView | None, str | None]:
        """:meth:`_final_choice`, the same for every worker of a shared study: the first to choose
        records its choice, and the others take it while the trials and final settings are the
        same. (Each worker sees the time budget from its own clock: one a moment later could find
        the best cell's final training no longer fits, choose another, and both be trained.)"""
        if self.config.storage is None:
            return self._final_choice(study, spent)
        with self._attrs_held():
            trials = study.get_trials(deepcopy=False)
            done = sorted(t.number for t in trials if t.state == TrialState.COMPLETE)
            # (and the budget: a session run again with a larger one may now afford the best cell's
            # final training, which the recorded choice, made under the smaller one, passed over)
            limits = [self.budget.max_trials, self.budget.max_time, self.budget.max_device_hours,
                      self.budget.max_cost, self.budget.price_per_hour]
            basis = hashlib.blake2b(json.dumps([self._final_settings(), done, limits]).encode(),
                                    digest_size=8).hexdigest()
            rec = study.user_attrs.get("final_choice") or {}
            if rec.get("basis") == basis:
                chosen = next((r for r in self._ranked_for_final(study, trials) if r.number == rec.get("trial")), None)
                if chosen is not None:
                    return chosen, rec.get("why")
            best, why = self._final_choice(study, spent, trials)
            if best is not None:
                study.set_user_attr("final_choice", {"basis": basis, "trial": best.number, "why": why})
            return best, why

    def _final_probes_stand(self, prev: dict[str, Any]) -> bool:
        """Whether the study's probe record ``prev`` holds the final network's probes as it is now
        (taken again when --final-C/--final-N changed since)."""
        final_macs = [self._final_cost(a).macs for a in self._uniform_archs(self.final_space)]
        return prev.get("final_macs") == final_macs and \
            prev.get("final_space", self.final_space.spec()) == self.final_space.spec()

    def _search_probe_stands(self, prev: dict[str, Any]) -> bool:
        """Whether ``prev`` holds a probe of the costliest search cell on this device, which a
        session stopped before any trial finished left for the next (not paid again)."""
        return "search_seconds_per_sample" in prev and (prev.get("search_macs"), prev.get("search_device")) == (
            self._search_macs(self._extreme_archs()[1]), self.device_name)

    def _final_params(self, r: TrialView) -> int:
        try:
            return self._final_cost(self.final_space.parse(r.arch)).params
        except (ValueError, KeyError, BudgetNASError):  # an unreadable cell: as recorded
            return r.params if r.params is not None else 0

    def _final_seconds(self, study: optuna.Study, arch: str | None) -> float:
        """Forecast seconds of the final training of ``arch`` (None: the costliest cell); 0
        without probes.

        The probes timed the final network with each uniform cell (one op on every edge). A cell's
        cost per image is forecast as theirs averaged over its edges: each edge costs what it costs
        in the cell made only of its op. Interpolating in multiply-adds between the cheapest and
        costliest cells would call pooling and skip edges free and a 1x1 convolution a ninth of a
        3x3, when these small layers are memory- and launch-bound: measured on the CPU (2026-12-03,
        C=16 N=5 at 8px, benchmarks/final_forecast.py) that forecast random cells 48% too cheap on
        average (up to 84%), and the edge average 6% too dear on average (-7% to +32%).
        """
        per_sample = self._final_seconds_per_image(study, arch)
        if not per_sample:
            return 0.0
        forecast = per_sample * FINAL_MARGIN * self._final_images(self._load()) + self._compile_allowance(study)
        done = study.user_attrs.get("final") or {}
        if arch is not None and self._final_done(study, arch, full=False) and done.get("shortened"):
            # Its final training was shortened: the device ran slower than the probes said, and
            # what it measured then is the better forecast of training it in full (or the rerun
            # would find the probes' forecast fits, and shorten it again to what is left).
            forecast = max(forecast, _full_seconds(done))
        return forecast

    def _compile_allowance(self, study: optuna.Study) -> float:
        """What --fuse final/all adds to a final training's forecast: the compilation timed by the
        probes (:meth:`_compile_seconds`), with the forecasts' margin; 0 without --fuse."""
        if self.config.fuse == "off":
            return 0.0
        return FINAL_MARGIN * float((study.user_attrs.get("probe") or {}).get("final_compile_seconds", 0.0))

    def _final_images(self, p: Prepared) -> float:
        """What the final training and its test process, in images trained: train+validation for
        each final epoch, and the test images at ``EVAL_FRACTION`` of a trained one each."""
        n_test = len(p.test) if p.test is not None else 0
        return (len(p.train) + len(p.val)) * self.config.final_epochs + EVAL_FRACTION * n_test

    def _final_seconds_per_image(self, study: optuna.Study, arch: str | None) -> float:
        """Seconds a training step of the final network with ``arch`` (None: the costliest cell)
        takes per image, from the probes (no margin); 0 without them."""
        probe = study.user_attrs.get("probe") or {}
        if "final_macs" not in probe:
            return 0.0
        times = [float(t) for t in probe["final_seconds_per_sample"]]
        if arch is None or len(times) != len(self.final_space.decisions()[0][1]):  # (an older record: its max)
            return max(times)
        return self._per_edge_seconds(times, self.final_space.parse(arch))

    def _time_test(self, model: torch.nn.Module, tx: torch.Tensor) -> float:
        """Seconds per image of testing ``model`` (untrained: the pace is the same) on this device
        now: the median of three evaluation batches of ``tx`` after one of warm-up (about a second
        for the 28 px final network on a 2-core CPU)."""
        n = eval_batch_size(self.device.type, model, tuple(tx.shape[1:]))
        predict_logits(model, tx[:n], device=self.device)
        took = []
        for _ in range(3):  # (the median: one batch stalled by a burst of load would shorten the training)
            start = time.perf_counter()
            predict_logits(model, tx[:n], device=self.device)  # (its logits come back to the CPU: synced)
            took.append(time.perf_counter() - start)
        return statistics.median(took) / min(n, len(tx))

    def _per_edge_seconds(self, times: list[float], arch: Any) -> float:
        """Seconds per image of the final network with ``arch``, from ``times``, those of the cells
        with one op on every edge (in choice order): the average over its edges of its ops' times."""
        decisions = self.final_space.decisions()
        chosen = self.final_space.to_decisions(arch)
        return sum(times[choices.index(chosen[name])] for name, choices in decisions) / len(decisions)

    def _finals_took(self, study: optuna.Study) -> float:
        """Seconds the final trainings so far took (every cell, every session): time the time
        budget spent outside the search's own wall time, which the reserve stands for only until
        the final training is done (a rerun of a finished run found it free before)."""
        return float((study.user_attrs.get("final_spent") or {}).get("device_seconds", 0.0))

    def _final_train_config(self) -> TrainConfig:
        return TrainConfig(epochs=self.config.final_epochs, batch_size=self.config.batch_size,
                           lr=self.config.lr, hflip=self._load().hflip, step_mode=self.config.step_mode,
                           fuse=self.config.fuse in ("final", "all"))

    def _final_key(self, arch: str) -> str:
        """The key of ``arch``'s final training under this session's settings (its checkpoint and
        its record of seconds paid while cut off)."""
        # (The evaluation batch does not change the training; 1024, its value before it was chosen
        # per network, keeps the keys, and so the checkpoints, of final trainings cut off before.)
        cfg = replace(self._final_train_config(), eval_batch_size=1024)
        # (the resolution, which may change between sessions: a checkpoint at another is not resumed)
        return hashlib.blake2b(f"{arch}|{self.final_space.spec()}|{cfg}|{self._load().resolution}".encode(),
                               digest_size=8).hexdigest()

    def _final_to_come(self, study: optuna.Study, arch: str) -> float:
        """Forecast seconds still to pay for ``arch``'s final training: a training cut off (a kill,
        a signal) resumes from its checkpoint, so what it paid before is not needed again. (Without
        this, a rerun after a kill in the final training found the cell it was training too dear for
        what was left and trained another, wasting the part paid.)"""
        if self._earlier_copy(study, arch) is not None:
            return 0.0  # (trained before with these settings and kept: restored, not trained again)
        return max(0.0, self._final_seconds(study, arch) - final_partials(study).get(self._final_key(arch), 0.0))

    def _why_no_final(self, study: optuna.Study, best: TrialView) -> str | None:
        """Why ``best``'s final training is not run at all (None: run it): the budget has not one
        epoch of it left, as when a run is resumed with a budget lowered below what it spent. (It
        trained its least, an epoch, anyway: 2.5 times a dollar cap, exit status 0, unsaid: review D,
        2026-12-07.) A final model done, or kept from before, costs nothing: never refused here."""
        if self._final_done(study, best.arch, full=False):
            return None
        to_come = self._final_to_come(study, best.arch)
        left = self.budget.seconds_left(self._spent_with_finals(study))
        if to_come <= 0 or left >= to_come / max(1, self.config.final_epochs):
            return None
        return (f"no final training: the budget ({self.budget.describe()}) has {max(left, 0):.3g} device-s left, "
                f"less than one epoch of trial {best.number}'s final training (forecast {to_come:.3g} s for "
                f"{plural(self.config.final_epochs, 'epoch')}); raise the budget and run the same command to train it")

    def _why_keep_final(self, study: optuna.Study, best: TrialView) -> str | None:
        """Why the final model of ``best``, trained before with other final settings, must be kept
        rather than trained again (None: train it). The search reserved its final training inside
        the budget; a retraining asked for later must fit what the budget has left."""
        done = study.user_attrs.get("final") or {}
        if done.get("arch") != best.arch or self._final_done(study, best.arch):
            return None
        # (what is still to pay: a retraining cut off before resumes from its checkpoint)
        need = self._final_to_come(study, best.arch)
        left = self.budget.seconds_left(self._spent_with_finals(study))
        if need <= left:
            return None
        if self._final_done(study, best.arch, full=False):  # the same settings: it was shortened
            return (f"the final model, shortened before to end within the budget, is kept: training it in "
                    f"full is forecast at {need:.3g} device-s, and the budget has {max(left, 0):.3g} left")
        return (f"the final model trained before is kept: training it again with the new final settings "
                f"is forecast at {need:.3g} device-s, and the budget has {max(left, 0):.3g} left")

    def _spent_with_finals(self, study: optuna.Study) -> Spent:
        """The ledger, with the final trainings' time counted as wall time too (the study's wall
        time is the search loop's)."""
        spent = spent_of(study)
        return replace(spent, wall_seconds=spent.wall_seconds + self._finals_took(study))

    def _final_settings(self) -> dict[str, Any]:
        """What the final model depends on besides the cell and the fingerprinted settings; these
        may change between sessions, and then the final model is trained again."""
        p = self._load()
        n_final = len(p.train) + len(p.val)
        return {"space": self.final_space.spec(), "epochs": self.config.final_epochs, "resolution": p.resolution,
                "batch_size": self._final_train_config().resolved_batch_size(n_final, self.device.type)}

    def _final_done(self, study: optuna.Study, arch: str, full: bool = True) -> bool:
        """Whether the study's final model is ``arch`` trained with this session's final settings
        (and, with ``full``, not shortened by a time limit: a rerun with the budget to train it in
        full trains it again; see :meth:`_why_keep_final`)."""
        done = study.user_attrs.get("final") or {}
        if done.get("arch") != arch or (full and done.get("shortened")):
            return False
        if "settings" in done:
            return done["settings"] == self._final_settings()
        # a record from before settings were kept: the same epochs and the same network size
        return (done.get("epochs") == self.config.final_epochs
                and done.get("params") == self._final_cost(self.final_space.parse(arch)).params)

    def _restore_recorded_final(self, best_dir: Path, done: dict[str, Any]) -> bool:
        """Put the recorded final model back in best/ where a session, cut off after replacing it
        and before recording its own, left its copy in best/earlier/ (found by ``.source``) and
        another model in best/; True (nothing to restore, or restored). A record from before
        model_sha256 was kept could tell them apart only so: the rerun served the other model
        under the recorded one's metrics and deleted the only copy of the recorded one (a diff
        review, 2026-12-07). The other model's training stays in its checkpoint (final-*.ckpt),
        which a rerun with its settings finishes."""
        folder = self._earlier_folder(best_dir, done)
        kept, here = (folder / "model.pt") if folder is not None else None, best_dir / "model.pt"
        if kept is None or not kept.exists() or (here.exists() and _same_content(kept, here)):
            return True
        if done.get("model_sha256") not in (None, _file_sha256(kept)):
            return True  # (not the recorded model either: _model_file_is decides)
        for name in ("model.pt", "metrics.json", "arch.txt"):
            if (folder / name).exists():
                link_or_copy_atomic(folder / name, best_dir / name)
        log.warning("%s was not the final model the study records (a session was stopped between saving a new one "
                    "and recording it): the recorded one is restored from %s", here, folder)
        return True

    @staticmethod
    def _model_file_is(best_dir: Path, done: dict[str, Any]) -> bool:
        """Whether best/model.pt is the final model the study records (by its SHA-256, where the
        record has one): a session killed after replacing the file and before recording its model
        left another model's file beside the record of the earlier one."""
        path = best_dir / "model.pt"
        if not path.exists():
            return False
        want = done.get("model_sha256")
        if want is None or _file_sha256(path) == want:
            return True
        log.warning("%s is not the final model the study records (a session was stopped between saving a new "
                    "one and recording it): training it again", path)
        return False

    def _final(self, study: optuna.Study, best: TrialView, claim: str | None = None) -> dict[str, float]:
        """Retrain ``best`` on train+validation at full size, test it once, save the artifacts.
        ``claim``: a shared study's job key this session holds for it; should another session take
        it over meanwhile, this one stops (_FinalLost) without writing a checkpoint or a model."""
        done = study.user_attrs.get("final")
        best_dir = self.run_dir / "best"
        if done and self._final_done(study, best.arch) and self._restore_recorded_final(best_dir, done) \
                and self._model_file_is(best_dir, done):
            log.info("final model for %s already trained; keeping it", best.arch)
            orphan = self._earlier_folder(best_dir, done)  # (begun by a session cut off before replacing it)
            if orphan is not None:
                shutil.rmtree(orphan, ignore_errors=True)
            return dict(done.get("test_metrics", {}))
        restored = self._restore_earlier_final(study, best, done, best_dir)
        if restored is not None:
            return restored
        if done and self._final_done(study, best.arch, full=False):
            log.info("the final training of %s was shortened to end within the budget; the budget now pays "
                     "for all of it: training it again in full", best.arch)
        elif done and done.get("arch") == best.arch:
            log.info("the final settings changed since %s was trained (%s then, %s now); training it again",
                     best.arch, done.get("settings"), self._final_settings())
        p = self._load()
        arch = self.final_space.parse(best.arch)
        cfg = self._final_train_config()
        x, y = p.final_train()
        log.info("final training of %s for %d epoch%s on %d images", best.arch, cfg.epochs,
                 "" if cfg.epochs == 1 else "s", len(y))
        model = seeded_build(lambda: self.final_space.build(arch, in_channels=p.in_channels,
                                                            num_classes=p.num_classes), self.config.seed)
        key = self._final_key(best.arch)
        forecast = self._final_seconds(study, best.arch)  # (the whole training's, for the record)
        checkpoint = Checkpointer(self.artifacts_dir / "checkpoints" / f"final-{key}.ckpt",
                                  self.config.checkpoint_interval)
        # Paid as it goes, epoch by epoch, so that a final training cut off (a signal, a kill, a
        # failure) is billed for what it used; a resumed one adds what it trains after.
        before = final_partials(study).get(key, 0.0)
        billed = [0.0]
        epoch_seconds = [0.0]  # (from the test's timing, then the training's epochs)
        start = time.perf_counter()

        def bill(seconds: float) -> None:
            delta = seconds - billed[0]
            if delta <= 0:
                return
            self._add_to_attr(study, "final_spent", delta)
            billed[0] = seconds
            self._set_final_partial(study, key, before + seconds)

        def on_epoch(rec: Any) -> bool:
            epoch_seconds[0] += rec.seconds
            bill(epoch_seconds[0])
            return False

        # What the budget has left is this training's time limit: on a device slower than when it
        # was probed (another process on it), the schedule is shortened to end within the budget
        # instead of overrunning it (measured on this CPU, 2026-12-03: a final training forecast at
        # 171 s took 563 s under load, and overran a 4-minute budget by that much). The test after
        # it is left out of the limit, at the larger of its forecast and its pace timed now.
        left = self.budget.seconds_left(self._spent_with_finals(study))
        tx, ty = p.tensors(p.test) if p.test is not None else (None, None)
        worker = _worker_name()

        def still_mine() -> None:  # (read in the database: a claim lost by a refused beat is not held there either)
            if claim is not None and not self.ledger.holds(claim, worker):
                raise _FinalLost(claim)

        def should_stop() -> bool:
            if claim is not None and self.ledger.lost(claim):  # (as its heartbeat found)
                raise _FinalLost(claim)
            stop = self._stop_requested()
            if stop:
                still_mine()  # (before its checkpoint is written: the other session's now, if taken)
            return stop
        test_reserve = pre = 0.0
        try:
            if tx is not None and len(ty) and math.isfinite(left):
                per_image = max(self._time_test(model, tx),
                                EVAL_FRACTION * self._final_seconds_per_image(study, best.arch))
                test_reserve = FINAL_MARGIN * per_image * len(ty)
                epoch_seconds[0] = pre = time.perf_counter() - start
                bill(pre)  # (the timing is paid for, as the training will be)
            result = train(model, x, y, None, None, cfg, num_classes=p.num_classes, seed=self.config.seed,
                           device=self.device, checkpoint=checkpoint, should_stop=should_stop,
                           on_epoch=on_epoch, time_limit=max(left - pre - test_reserve, 0.0),
                           on_resume=lambda restored: log.info(
                               "the final training of %s resumes from its checkpoint after %d of %d epochs",
                               best.arch, len(restored), cfg.epochs))
        except BaseException as e:
            bill(time.perf_counter() - start)
            if not isinstance(e, torch.cuda.OutOfMemoryError):
                raise
            raise BudgetError(
                f"the final training of {best.arch} ran out of GPU memory at batch size "
                f"{cfg.resolved_batch_size(len(y), self.device.type)}; the search results are kept: run again with a smaller "
                "--final-C/--final-N (a smaller --batch-size needs a new --run-dir: it changes the search)") from None
        test_metrics: dict[str, float] = {}
        n_test = 0
        test_start = time.perf_counter()
        if tx is not None:
            n_test = len(ty)
            try:
                test_metrics = evaluate(result.model, tx, ty, num_classes=p.num_classes, device=self.device)
            finally:  # (a test that fails is paid for too; one that succeeds, with the saving below)
                bill(pre + result.device_seconds + time.perf_counter() - test_start)
            if n_test and not math.isfinite(test_metrics["loss"]):  # no validation set caught it
                checkpoint.delete()  # (a broken network: nothing to resume from)
                raise TrialFailed(
                    f"the final training of {best.arch} diverged: the network's outputs on the test images "
                    "are NaN or infinite, so no model is saved. The search results are kept: run again with "
                    "other --final-epochs or --final-C/--final-N to train it again (a lower --lr needs a "
                    "new --run-dir: it changes the search)")
        still_mine()  # (before the model is written: another session's to write, if taken)
        cost = self._final_cost(arch)
        best_dir.mkdir(exist_ok=True)
        artifact = {
            "format": "budgetnas-model", "format_version": 1, "budgetnas_version": __version__,
            "arch": best.arch, "space": self.final_space.spec(),
            "in_channels": p.in_channels, "num_classes": p.num_classes, "classes": list(p.classes),
            "resolution": p.resolution, "image_size": list(p.train.shape[1:]), "pixel_range": list(pixel_range(p.train.images)),
            "mean": p.mean.tolist(), "std": p.std.tolist(),
            # (how its 4-D arrays were laid out: load_model reads them so; a review, 2026-12-07)
            "channels_first": bool(self.config.channels_first if self.channels_first is None else self.channels_first),
            "state_dict": {k: v.detach().cpu() for k, v in result.model.state_dict().items()},
            "test_metrics": test_metrics, "params": cost.params, "macs": cost.macs,
            **({"integer_pixels": self.integer_pixels} if self.integer_pixels is not None else {}),
            **({"label_values": list(self.label_values)} if self.label_values is not None
               and len(self.label_values) == len(p.classes) else {}),
        }
        tmp = best_dir / f"model.pt.tmp{os.getpid()}"
        torch.save(artifact, tmp)
        model_sha = _file_sha256(tmp)
        # The final model now in the study: another session's, written to this run directory while
        # this one trained (two `search` processes of a shared study with other final settings each
        # train theirs), is kept too, not overwritten unlisted (a workers review, 2026-12-06). One
        # written to another run directory is not the model in this one's best/.
        latest = study.user_attrs.get("final") or {}
        if latest.get("run_dir") == str(self.run_dir.resolve()):
            done = latest
        kept = self._keep_earlier_final(best_dir, done, test_metrics)  # (once the new one is written)
        os.replace(tmp, best_dir / "model.pt")
        write_text_atomic(best_dir / "arch.txt", best.arch + "\n")
        test_seconds = time.perf_counter() - test_start  # (and the model's saving)
        bill(pre + result.device_seconds + test_seconds)  # (the epochs were billed as they ended: the rest)
        seconds = before + billed[0]  # every session of this final training
        if forecast > 0 and seconds > SLOWER_THAN_FORECAST * forecast and result.shortened is None:
            # (overrun: only if the budget is spent past its limit now; a budget with room left,
            # e.g. raised for a resumed session, was said overrun all the same: a review, 2026-12-06)
            over = self.budget.seconds_left(self._spent_with_finals(study)) < 0
            log.log(logging.WARNING if over else logging.INFO,
                    "the final training took %.3g device-s, %.1fx its forecast (%.3g s from the probes): the "
                    "device ran slower than when it was probed (another process on it?)%s%s", seconds,
                    seconds / forecast, forecast,
                    " or compiling it (--fuse) took longer than when timed" if cfg.fuse else "",
                    ", so the budget was overrun" if over else "")
        final = {"arch": best.arch, "settings": self._final_settings(), "trial": best.number, "epochs": cfg.epochs,
                 "run_dir": str(self.run_dir.resolve()),
                 "device_seconds": seconds, "cost": self.budget.cost_of(seconds),
                 "test_metrics": test_metrics, "params": cost.params, "macs": cost.macs,
                 "flops_nb201": cost.flops_nb201, "resolution": p.resolution,
                 "test_images": n_test, "train_images": len(y), "step_mode": result.step_mode,
                 "fused": result.fused, "batch_size": result.batch_size, "forecast_seconds": forecast,
                 "test_seconds": pre + test_seconds, "model_sha256": model_sha,
                 # (its trial's, on how many validation images)
                 "search_metrics": dict(best.metrics), "search_epochs": best.epochs, "search_val_images": len(p.val_y),
                 # (the last trial it knew of: one finished later that ranks higher overtook it: show says so)
                 "latest_trial": max((t.number for t in study.get_trials(deepcopy=False) if counts_as_trial(t)),
                                     default=best.number)}
        earlier = [*(done or {}).get("earlier", []), *([kept] if kept is not None else [])]
        if earlier:  # (kept on disk: listed even when best/model.pt had gone and nothing was moved)
            final["earlier"] = earlier
        if result.shortened is not None:
            steps, planned = result.shortened
            final["shortened"] = {"steps": steps, "planned_steps": planned,
                                  "epochs": round(cfg.epochs * steps / planned, 3), "time_limit": left}
            log.warning(_shortened_note(final))
        gap = final_gap_note(final, best.metrics, self.config.metric, trial_epochs=best.epochs,
                             search_network=(self.config.C, self.config.N))
        if gap is not None:
            log.warning(gap)
        write_text_atomic(best_dir / "metrics.json", json.dumps(to_jsonable(final), indent=2) + "\n")
        study.set_user_attr("final", to_jsonable(final))  # (final_spent holds what every final training paid)
        self._set_final_partial(study, key, None)
        checkpoint.delete()
        if self.config.storage is None:  # cut-off final trainings of other cells or settings: not needed now
            for stale in (self.artifacts_dir / "checkpoints").glob("final-*.ckpt"):
                stale.unlink(missing_ok=True)
        return test_metrics

    def _earlier_copy(self, study: optuna.Study, arch: str, *, verify: bool = False
                      ) -> tuple[dict[str, Any], Path, dict[str, Any]] | None:
        """The final model of ``arch`` with this session's final settings, trained in full, that a
        later final training with other settings left in best/earlier/: (its entry in the record's
        ``earlier``, its folder, its record), or None. ``verify``: only if its model file is the
        one its record names (by SHA-256)."""
        done = study.user_attrs.get("final") or {}
        if done.get("run_dir") not in (None, str(self.run_dir.resolve())):
            return None  # (another run directory's model: its earlier/ is not this one's)
        settings = self._final_settings()
        for entry in done.get("earlier") or []:
            if entry.get("arch") != arch or entry.get("settings") != settings or not entry.get("dir"):
                continue
            folder = self.run_dir / entry["dir"]
            try:
                rec = json.loads((folder / "metrics.json").read_text())
            except (OSError, ValueError):
                continue
            if rec.get("shortened") or rec.get("settings") != settings or not (folder / "model.pt").exists():
                continue
            if verify and rec.get("model_sha256") != _file_sha256(folder / "model.pt"):
                continue
            return entry, folder, rec
        return None

    def _restore_earlier_final(self, study: optuna.Study, best: TrialView, done: dict[str, Any] | None,
                               best_dir: Path) -> dict[str, float] | None:
        """Put back in best/ the final model of ``best`` with this session's final settings where a
        final training with other settings after it left it in best/earlier/ (the model in best/
        kept there in turn), rather than train and pay for it again; its test metrics, or None
        when there is none. (--final-epochs 1, then 2, then 1 again trained the first model a
        second time, beside its copy in earlier/: a review, 2026-12-07.)

        Linked back file by file, each whole, then recorded: a kill before the record leaves
        best/ a model the study does not record, which the next session restores from earlier/
        (_restore_recorded_final), as after a kill in a final training's saving."""
        found = self._earlier_copy(study, best.arch, verify=True)
        if found is None:
            return None
        entry, folder, rec = found
        kept = self._keep_earlier_final(best_dir, done, rec.get("test_metrics") or {}) if done else None
        for name in ("model.pt", "arch.txt"):  # (metrics.json: its record is written below)
            if (folder / name).exists():
                link_or_copy_atomic(folder / name, best_dir / name)
        earlier = [e for e in (done or {}).get("earlier", []) if e.get("dir") != entry["dir"]]
        earlier += [kept] if kept is not None else []
        final = {k: v for k, v in rec.items() if k != "earlier"}
        if earlier:
            final["earlier"] = earlier
        write_text_atomic(best_dir / "metrics.json", json.dumps(to_jsonable(final), indent=2) + "\n")
        study.set_user_attr("final", to_jsonable(final))
        shutil.rmtree(folder, ignore_errors=True)
        log.info("the final model of %s with these final settings was trained before (%s, test %s %s): "
                 "restored from %s, not trained again", best.arch, final_epochs_trained(rec), self.config.metric,
                 (rec.get("test_metrics") or {}).get(self.config.metric), entry["dir"])
        return dict(rec.get("test_metrics") or {})

    def _keep_earlier_final(self, best_dir: Path, done: dict[str, Any] | None,
                            test_metrics: dict[str, float]) -> dict[str, Any] | None:
        """Keep the final model trained before (other settings, or another cell) in
        ``best/earlier/K-trialT-Eep/`` instead of overwriting it: it was paid for, and the new one
        may test worse (fewer --final-epochs, a smaller --final-C). Returns what was kept, or None.

        Its files are linked there (copied where the file system has no hard links), not moved:
        best/ keeps them until the new files replace them, each whole, so a kill at any point
        leaves best/ a whole model. (Moved, a kill between two files left the model in earlier/
        and its metrics in best/, to be overwritten unlisted: a kill-and-resume review,
        2026-12-07.) The folder says whose files it holds (``.source``): a session cut off while
        filling it fills that one, not another."""
        files = [best_dir / n for n in ("model.pt", "metrics.json", "arch.txt")]
        if not done or not files[0].exists():
            return None
        dest = self._earlier_folder(best_dir, done)
        if dest is None and done.get("model_sha256") not in (None, _file_sha256(files[0])):
            return None  # (best/model.pt is not the model recorded, which is gone: see _model_file_is)
        if dest is None:
            earlier = best_dir / "earlier"
            numbers = [int(d.name.split("-")[0]) for d in earlier.glob("*") if d.name.split("-")[0].isdigit()] \
                if earlier.exists() else []
            k = max(numbers, default=0) + 1  # (never a number used before, even if its folder was deleted)
            dest = earlier / f"{k}-trial{done.get('trial', 'x')}-{done.get('epochs', 'x')}ep{'-short' if done.get('shortened') else ''}"
            dest.mkdir(parents=True, exist_ok=False)
            write_text_atomic(dest / EARLIER_SOURCE, _final_identity(done))
        for f in files:
            if f.exists() and not (dest / f.name).exists():
                link_or_copy_atomic(f, dest / f.name)
        old_acc = (done.get("test_metrics") or {}).get(self.config.metric)
        new_acc = test_metrics.get(self.config.metric)
        worse = old_acc is not None and new_acc is not None and new_acc < old_acc
        log.log(logging.WARNING if worse else logging.INFO,
                "the final model trained before (trial #%s, %s%s) is kept in %s%s",
                done.get("trial"), final_epochs_trained(done),
                f", test {self.config.metric} {old_acc:.4f}" if old_acc is not None else "", dest,
                f"; the new one tests lower ({new_acc:.4f}): budgetnas.load_model('{dest}') loads the earlier "
                "one" if worse else "")
        return {"dir": str(dest.relative_to(self.run_dir)), "arch": done.get("arch"), "trial": done.get("trial"),
                "epochs": done.get("epochs"), "settings": done.get("settings"),
                "test_metrics": done.get("test_metrics", {})}

    @staticmethod
    def _earlier_folder(best_dir: Path, done: dict[str, Any]) -> Path | None:
        """The folder of best/earlier/ that holds (or was being given) the final model ``done``."""
        earlier, ident = best_dir / "earlier", _final_identity(done)
        for d in sorted(earlier.glob("*")) if earlier.exists() else []:
            try:
                if (d / EARLIER_SOURCE).read_text() == ident:
                    return d
            except OSError:
                continue
        return None

    def _result(self, study: optuna.Study, best: TrialView | None, test_metrics: dict[str, float],
                reason: str) -> SearchResult:
        return SearchResult(
            run_dir=self.run_dir, best_arch=best.arch if best else None,
            best_trial=best.number if best else None, best_metrics=best.metrics if best else {},
            test_metrics=test_metrics, spent=spent_of(study), stop_reason=reason,
            top=ranked(study, self.config.metric)[:10],
        )

    # -- progress -------------------------------------------------------------------------------
    def _bar(self, spent: Spent) -> Any:
        if not self.progress:
            return None
        from tqdm.auto import tqdm

        # disable=None: no bar when stderr is not a terminal (a log file would get every redraw)
        return tqdm(total=self.config.max_trials, initial=spent.trials, desc="search", unit="trial",
                    dynamic_ncols=True, disable=None)

    def _update_bar(self, bar: Any, study: optuna.Study, trials: list[Any] | None = None) -> None:
        if bar is None:
            return
        trials = study.get_trials(deepcopy=False) if trials is None else trials
        spent = spent_of(study, trials)
        rows = ranked(study, self.config.metric, trials)
        text = (f"best {self.config.metric}={rows[0].metrics.get(self.config.metric, 0):.4f} "
                f"spent ${spent.cost:.4f} ({spent.device_seconds:.0f} device-s)" if rows else
                f"spent ${spent.cost:.4f}")
        if bar.disable:  # (stderr is no terminal: a log file, nohup, a cluster job) one line a trial
            of = f"/{self.config.max_trials}" if self.config.max_trials else ""
            log.info("search: %d%s trials, %s", spent.trials, of, text)
            return
        bar.n = spent.trials
        bar.set_postfix_str(text)
        bar.refresh()


class DeviceShare:
    """A fair-share clock for candidates that train at the same time on one device.

    Each candidate enters with a weight, its forecast device seconds (what it would cost alone);
    while candidates of weights w_1..w_n are in it, candidate i's clock (:meth:`now`, in its own
    thread) advances at w_i / (w_1 + ... + w_n) of real time, and not at all while it is out (its
    model being built, say). The seconds the candidates measure add up to the time the device was
    busy, so the ledger charges a GPU-second once, and each pays in proportion to the work it
    brought: with equal shares a cheap cell beside a costly one was billed half the time, the cost
    model fit on those bills learned a flatter cost than the cells have, and its forecasts erred
    both ways.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._count = 0  # candidates in it (their weights' sum is exactly 0 when none is: no float rest)
        self._weight = 0.0
        self._virtual = 0.0  # seconds per unit of weight, since the start
        self._last = time.perf_counter()
        self._mine = threading.local()  # per candidate thread: its weight, where it entered, its total

    def _advance(self) -> None:
        now = time.perf_counter()
        if self._count:
            self._virtual += (now - self._last) / self._weight
        self._last = now

    @staticmethod
    def _checked(weight: float) -> float:
        return float(weight) if math.isfinite(weight) and weight > 0 else 1.0

    def _state(self) -> Any:
        mine = self._mine
        if not hasattr(mine, "total"):
            mine.total, mine.weight, mine.entered = 0.0, 1.0, None
        return mine

    def enter(self, weight: float = 1.0) -> None:
        with self._lock:
            self._advance()
            mine = self._state()
            mine.weight, mine.entered = self._checked(weight), self._virtual
            self._count += 1
            self._weight += mine.weight

    def exit(self) -> None:
        with self._lock:
            self._advance()
            mine = self._state()
            if mine.entered is not None:
                mine.total += mine.weight * (self._virtual - mine.entered)
                mine.entered = None
            self._count = max(0, self._count - 1)
            # (the sum of float weights entered and left leaves a rest like 2e-16, which divided the
            # next idle interval into 10^12 "seconds": a review, 2026-12-06)
            self._weight = max(0.0, self._weight - mine.weight) if self._count else 0.0

    def now(self) -> float:
        """This thread's clock: the device seconds its candidate was charged (at the weight it
        entered with), in it or not now."""
        with self._lock:
            self._advance()
            mine = self._state()
            inside = mine.weight * (self._virtual - mine.entered) if mine.entered is not None else 0.0
            return mine.total + inside


def _data_path(data: str, attrs: dict[str, Any]) -> str | None:
    """Where a run's relative ``--data`` path was, from the folder its search ran in (None for a
    dataset name, an absolute path, or a run that did not keep its folder)."""
    from budgetnas.data._datasets import dataset_name

    config, cwd = attrs.get("config") or {}, attrs.get("cwd")
    if cwd is None or dataset_name(data) is not None or Path(data).expanduser().is_absolute():
        return None
    return str(Path(cwd) / Path(config.get("data_root") or ".").expanduser() / data)


class _ProbesOverBudget(Exception):
    def __init__(self, seconds: float) -> None:
        super().__init__(f"{seconds:.1f} s of probes")
        self.seconds = seconds


# A pruned trial's cache entry: its key, this, and the rule that pruned it (pruning.pruning_rule).
_PRUNED_BY = "|pruned by|"


def _pruned_entry(key: str, rule: str | None) -> str:
    return key + _PRUNED_BY + str(rule)


def _note_trained(trials: Iterable[Any], cache: dict[str, int]) -> None:
    """Enter each trained trial (not itself a cache hit) in the evaluation ``cache``: a complete
    one by its key, a pruned one by its key and the rule that pruned it, which alone prunes the
    cell again for free (pruned results were served under any pruner, even none, and a cell once
    pruned could never be trained out: a review, 2026-12-06). The first trial of an entry stays."""
    for t in trials:
        status = status_of(t)
        if status in CACHEABLE and "cache_of" not in t.user_attrs:
            key = record_of(t).get("cache_key", "")
            cache.setdefault(key if status == "complete" else _pruned_entry(key, t.user_attrs.get("pruned_by")),
                             t.number)


def _places(trials: list[Any]) -> dict[int, int]:
    """Each trial's place in the search's sequence of candidates, by trial number: retries take
    the place of the trial they retry, and proposals closed untrained (unstarted) take none, so
    a search killed and resumed, or stopped by a budget and continued, gives every candidate the
    place it has in one run straight through (Hyperband's brackets go by it)."""
    places: dict[int, int] = {}
    n = 0
    for t in sorted(trials, key=lambda t: t.number):
        retry_of = t.user_attrs.get("retry_of")
        if retry_of is not None:
            places[t.number] = places.get(int(retry_of), int(retry_of))
        elif t.user_attrs.get("status") != UNSTARTED_STATUS:
            places[t.number] = n
            n += 1
    return places


def named_selection(saved: Any) -> dict[str, Any] | None:
    """A run's stored benchmark selection with its dataset as the table names it (runs before
    2026-12-06 kept it as the user spelled it: "CIFAR-10" for cifar10); None if there is none or
    its dataset names none."""
    if not isinstance(saved, dict):
        return None
    from budgetnas.bench import normalize_dataset

    try:
        return {**saved, "dataset": normalize_dataset(str(saved.get("dataset")))}
    except DataError:
        return None


def _same_selection(saved: Any, now: Any) -> bool:
    """Whether a run's stored benchmark selection is this one, its dataset compared by what it names."""
    return saved == now or (isinstance(now, dict) and named_selection(saved) == now)


@dataclass
class TrialOutcome:
    """What the search loop needs from one trial, so it need not read the trial back."""

    status: str
    device_seconds: float = 0.0  # billed: everything the trial ran
    search_macs: int = 0
    epochs: int = 0
    reason: str = ""
    trained_epochs: int = 0  # what the last attempt trained and took, for the cost model
    trained_seconds: float = 0.0
    compile_seconds: float = 0.0  # of the trained seconds' attempt, compiling its step (--fuse all)
    cut_by_budget: bool = False  # stopped with a checkpoint when the budget ran out during it
    cut_by: str = ""  # then the limit that cut it ("time", "device-hour", "dollar")
    cut_after: float = 0.0  # and the seconds it was allowed


class _Grant:
    """The device seconds a trial of a shared study holds in the ledger: its forecast, reserved
    when it started, extended as the trial outruns it (a quarter more at a time, at least 0.5 s)
    while the ledger has seconds under ``limit`` that no other trial holds. ``by`` names the limit
    ("device-hour" or "dollar"). Read before every step; the database is written only to extend."""

    def __init__(self, ledger: BudgetLedger, slot: Slot, limit: float, by: str, worker: str) -> None:
        self.ledger, self.slot, self.limit, self.by, self.worker = ledger, slot, limit, by, worker
        self._retry_at = 0.0

    def covers(self, used: float) -> bool:
        """Whether the trial may go on, having used ``used`` device seconds."""
        if used <= self.slot.forecast or time.monotonic() < self._retry_at:
            return True
        try:
            more = self.ledger.extend(self.slot, used - self.slot.forecast + max(0.25 * self.slot.forecast, 0.5),
                                      seconds_limit=self.limit, worker=self.worker)
        except sqlalchemy.exc.SQLAlchemyError as e:
            # The database did not answer (locked, a dropped connection): the trial goes on, and
            # asks again in a second, rather than fail with its work thrown away.
            log.warning("could not extend the trial's budget reservation (%s); retrying", first_line(e))
            self._retry_at = time.monotonic() + 1.0
            return True
        if more is None:
            return False
        self.slot = more
        return used <= self.slot.forecast


def _full_seconds(final: dict[str, Any]) -> float:
    """Device seconds the final training recorded in ``final``, shortened by the budget, would have
    taken in full at the pace it trained at."""
    steps = final["shortened"]
    test = float(final.get("test_seconds", 0.0))  # (not shortened: the same in full)
    return (float(final["device_seconds"]) - test) * steps["planned_steps"] / max(1, steps["steps"]) + test


def _shortened_note(final: dict[str, Any]) -> str:
    """What a final training shortened by the budget tells the user: how far it got, why, and what
    all of it would need."""
    shortened = final["shortened"]
    epochs, limit = shortened["epochs"], shortened["time_limit"]
    forecast = float(final.get("forecast_seconds") or 0.0)
    why = (f"the device trained slower than its probes forecast ({forecast:.3g} s)" if forecast <= limit else
           f"the budget had {max(limit, 0):.3g} s left, less than its forecast ({forecast:.3g} s)")
    got = f"{final_epochs_trained(final)} ({shortened['steps']} of {shortened['planned_steps']} steps)"
    if epochs <= 1 and final["device_seconds"] > limit:  # (the least a final training gets)
        done = f"the final training was shortened to {got}, its least, and still overran the {max(limit, 0):.3g} s left"
    else:
        done = f"the final training was shortened to {got} to end within the budget"
    return (f"{done}: {why}; at the pace it trained, all of it needs {_full_seconds(final):.3g} device-s: run "
            "the search again with a budget that leaves that much to train it in full")


def _trials_by_key(study: optuna.Study) -> dict[str, list[Any]]:
    """The study's trials by their ``trial_key`` (a trial and its retries share one)."""
    by_key: dict[str, list[Any]] = {}
    for t in study.get_trials(deepcopy=False):
        by_key.setdefault(t.user_attrs.get("trial_key", ""), []).append(t)
    return by_key


def _ask_in_order(study: optuna.Study, rank: Callable[[Any], float] | None = None) -> optuna.Trial:
    """``study.ask()``, but the queued trials in their order: first a re-queued one (``retry_of``:
    interrupted, its cell resumes from its checkpoint and the ledger still holds its slot), then by
    ``rank`` (a finetune's cells by the benchmark's ranking), then as queued.

    Optuna takes queued trials oldest first, and a cell queued again (a retry; a cell the budget
    could not pay, handed back) goes behind the rest: a resumed finetune trained its lower-ranked
    cells first, and with a budget that had room for the interrupted cell alone (its slot
    reserved) it refused the next of them and stopped, training nothing, at every rerun (found
    2026-12-07). Claimed as Optuna claims a queued trial (WAITING to RUNNING, atomic in the
    storage: two workers cannot both take it)."""
    waiting = study.get_trials(deepcopy=False, states=(TrialState.WAITING,))
    order = sorted(waiting, key=lambda t: ("retry_of" not in t.user_attrs, rank(t) if rank is not None else 0.0,
                                           t.number))
    if not order or order[0] is waiting[0]:
        return study.ask()  # (Optuna's own order takes it first)
    for t in order:
        try:
            if not study._storage.set_trial_state_values(t._trial_id, state=TrialState.RUNNING):
                continue  # (another worker's now)
        except optuna.exceptions.UpdateFinishedTrialError:
            continue
        cache = getattr(study, "_thread_local", None)
        if cache is not None and hasattr(cache, "cached_all_trials"):
            cache.cached_all_trials = None  # (as ask() does: the sampler reads the trials afresh)
        return optuna.Trial(study, t._trial_id)
    return study.ask()


# The stop signals searches of this process took (a caller that runs sessions again, as the CLI's
# --db-wait does, must not run one after a stop was asked for: a session's stop writes to the
# database, and one stopped during an outage failed there, was run again and ignored the signal).
_SIGNALS: list[str] = []


def signals_taken() -> int:
    """How many stop signals (SIGTERM, SIGINT) searches of this process have taken so far."""
    return len(_SIGNALS)


def _worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _injected_faults() -> dict[int, str]:
    """Faults to inject by trial number, from ``BUDGETNAS_INJECT_FAULTS="2:nan,4:oom,5:oom1"``.

    A drill for the failure paths (tests use it); each fault goes through the real handling.
    """
    spec = os.environ.get("BUDGETNAS_INJECT_FAULTS", "").strip()
    out: dict[int, str] = {}
    for item in filter(None, (x.strip() for x in spec.split(","))):
        number, _, fault = item.partition(":")
        if not number.isdigit() or fault not in ("nan", "oom", "oom1"):
            raise ConfigError(f"BUDGETNAS_INJECT_FAULTS item {item!r} must look like 3:nan, 5:oom or "
                              "6:oom1 (out of memory at the first attempt only)")
        out[int(number)] = fault
    return out


def _failure_reason(e: BaseException) -> str:
    if isinstance(e, torch.cuda.OutOfMemoryError):
        return "CUDA out of memory: the candidate does not fit at this batch size"
    if isinstance(e, BudgetNASError):  # TrialFailed included: its message is the reason
        return str(e)
    return f"{type(e).__name__}: {e}"[:500]
