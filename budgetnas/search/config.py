"""The resolved configuration of a search: typed, validated, saved in the run directory."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from budgetnas._files import write_text_atomic
from budgetnas.errors import ConfigError
from budgetnas.search.budget import parse_duration

METRIC_OBJECTIVES = ("accuracy", "balanced_accuracy", "macro_f1")
# strategies that score a cell by one number (their population, policy or walk); Optuna's samplers
# (tpe: MOTPE, gp, random) handle several objectives themselves
SINGLE_OBJECTIVE_STRATEGIES = ("rea", "reinforce", "local")
SIZE_OBJECTIVES = ("params", "macs")  # minimised, from the final network's size
FUSE_CHOICES = ("off", "final", "all")
CONFIG_VERSION = 1


@dataclass
class SearchConfig:
    """Everything that defines a search. The CLI maps its flags onto these fields.

    Search (proxy) network: ``C``/``N`` at ``search_resolution`` on a ``subset`` of the training
    split for ``epochs``. Final network: ``final_C``/``final_N`` at ``resolution`` for
    ``final_epochs`` on train+validation, then tested once on the test split.
    """

    data: str = "digits"
    data_root: str | None = None
    channels_first: bool = False  # arrays in a .npz are (N, C, H, W) (default: (N, H, W[, C]))
    run_dir: str = "runs/budgetnas"
    space: str = "nb201"
    C: int = 8
    N: int = 1
    final_C: int = 16
    final_N: int = 5
    strategy: str = "tpe"
    objectives: list[str] = field(default_factory=lambda: ["accuracy"])
    max_params: int | None = None  # of the final network
    epochs: int = 8
    final_epochs: int = 30
    subset: float = 1.0
    search_resolution: int | None = None  # None: same as resolution
    resolution: int | None = None  # None: native size capped at 32
    val_fraction: float = 0.2
    test_fraction: float = 0.2  # only when the data has no test split; 0: no test set
    seed: int = 0
    pruner: str = "none"
    batch_size: int | None = None
    lr: float = 0.1
    hflip: bool | None = None  # None: on for datasets where mirror images are the same class
    device: str = "auto"
    concurrent: int = 1  # candidates trained at once on the device; 0: auto (measured on CUDA, 1 on CPU)
    step_mode: str = "auto"  # the trainer's step: auto (CUDA graph on CUDA), eager or graph
    fuse: str = "off"  # torch.compile's fused kernels for: "off", "final" (the final training) or "all"
    # budget
    max_trials: int | None = None
    max_time: float | None = None
    max_device_hours: float | None = None
    max_cost: float | None = None
    gpu_price: float | None = None
    device_preset: str | None = None
    max_consecutive_failures: int = 5
    final_training: bool = True
    # robustness
    checkpoint_interval: float | None = None  # seconds between mid-epoch checkpoints (epoch ends always)
    keep_checkpoints: int = 3  # checkpoints of the best finished trials kept; others are deleted
    artifacts_dir: str | None = None  # where checkpoints go (default: the run directory)
    # many workers
    storage: str | None = None  # an Optuna RDB URL, e.g. postgresql://...; None: SQLite in run_dir
    study_name: str = "budgetnas"
    heartbeat_interval: float = 10.0  # seconds between a worker's heartbeats
    heartbeat_grace: float = 60.0  # a running trial whose worker is silent this long is re-queued

    def check_session(self) -> None:
        """Checks of a session about to search with these settings (not of settings saved by an
        earlier one, which `show` and resume read back: runs made before a check came in stay readable)."""
        from budgetnas.strategies import check_strategy

        from budgetnas.strategies import list_proposers

        check_strategy(self.strategy)  # (a finetune's dry run forecast with any name)
        # (every proposer but random ranks by the first objective: a plugin's was let through to
        # ignore the others unsaid, a review found, 2026-12-08)
        single = self.strategy in SINGLE_OBJECTIVE_STRATEGIES or (
            self.strategy in list_proposers() and self.strategy != "random")
        if len(self.objectives) > 1 and single:
            raise ConfigError(
                f"strategy {self.strategy!r} optimises one objective (it ranks cells by "
                f"{self.objectives[0]} alone), so it cannot search for the {','.join(self.objectives)} "
                "front: use --strategy tpe, gp or random for several objectives, or keep "
                f"{self.strategy} with --objective {self.objectives[0]} and cap the size with --max-params")

    def __post_init__(self) -> None:
        if isinstance(self.objectives, str):  # "accuracy,params", as on the command line
            self.objectives = [o.strip() for o in self.objectives.split(",") if o.strip()]
        self.objectives = list(self.objectives)
        if not self.objectives:
            raise ConfigError("give at least one objective, e.g. accuracy")
        for obj in self.objectives:
            if obj not in METRIC_OBJECTIVES + SIZE_OBJECTIVES:
                raise ConfigError(
                    f"unknown objective {obj!r}; choose from {', '.join(METRIC_OBJECTIVES + SIZE_OBJECTIVES)}"
                )
        if self.objectives[0] not in METRIC_OBJECTIVES:
            raise ConfigError(
                f"the first objective must be a metric ({', '.join(METRIC_OBJECTIVES)}); "
                f"got {self.objectives[0]!r}. Put size objectives after it, e.g. accuracy,params"
            )
        if len(set(self.objectives)) != len(self.objectives):
            raise ConfigError(f"objectives repeat: {self.objectives}")
        for name in ("epochs", "final_epochs", "C", "N", "final_C", "final_N", "max_consecutive_failures"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ConfigError(f"{name} must be a positive integer, got {v!r}")
        if not isinstance(self.concurrent, int) or isinstance(self.concurrent, bool) or not 0 <= self.concurrent <= 8:
            raise ConfigError(f"concurrent must be 0 (auto) or a number of candidates from 1 to 8, "
                              f"got {self.concurrent!r}")
        for name in ("subset", "val_fraction", "test_fraction", "max_params", "checkpoint_interval",
                     "heartbeat_interval", "heartbeat_grace"):
            v = getattr(self, name)
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float))):
                # (a str, '2e6' as the command line spells it, met "must be real number, not str", a
                # TypeError from a comparison: review A, 2026-12-07)
                raise ConfigError(f"{name} must be a number, e.g. {2e6 if name == 'max_params' else 0.2!r}, got "
                                  f"{v!r} (a {type(v).__name__})")
        if self.step_mode not in ("auto", "eager", "graph"):
            raise ConfigError(f"step_mode must be auto, eager or graph, got {self.step_mode!r}")
        if self.fuse not in FUSE_CHOICES:
            raise ConfigError(f"fuse must be one of {', '.join(FUSE_CHOICES)} (compile the final training only, "
                              f"or every trial too), got {self.fuse!r}")
        if self.checkpoint_interval is not None and not self.checkpoint_interval > 0:
            raise ConfigError(f"checkpoint_interval must be a positive number of seconds, "
                              f"got {self.checkpoint_interval!r}")
        if not isinstance(self.keep_checkpoints, int) or self.keep_checkpoints < 0:
            raise ConfigError(f"keep_checkpoints must be a non-negative integer, got {self.keep_checkpoints!r}")
        if not (0 < self.heartbeat_interval < self.heartbeat_grace):
            raise ConfigError("heartbeat_interval must be positive and shorter than heartbeat_grace")
        if self.storage is not None and "://" not in self.storage:
            raise ConfigError(f"storage must be a database URL such as postgresql://user@host/db, "
                              f"got {self.storage!r}")
        if not (0 < self.subset <= 1):
            raise ConfigError(f"subset must be a fraction in (0, 1], got {self.subset!r}")
        if not (0 < self.val_fraction < 1):
            raise ConfigError(f"val_fraction must be in (0, 1), got {self.val_fraction!r}")
        if not (0 <= self.test_fraction < 1):
            raise ConfigError(f"test_fraction must be in [0, 1) (0: hold out no test set), "
                              f"got {self.test_fraction!r}")
        if self.max_params is not None and (not math.isfinite(self.max_params) or self.max_params <= 0):
            raise ConfigError(f"max_params must be a positive number, got {self.max_params!r}")
        if self.max_params is not None:
            self.max_params = int(self.max_params)
        for name in ("resolution", "search_resolution"):
            v = getattr(self, name)
            if v is not None and (not isinstance(v, int) or v < 4):
                raise ConfigError(f"{name} must be an integer >= 4 (pixels), got {v!r}")
        if not isinstance(self.seed, int) or isinstance(self.seed, bool) or not 0 <= self.seed < 2 ** 32:
            raise ConfigError(f"seed must be an integer from 0 to 2**32 - 1, got {self.seed!r}")
        if not str(self.run_dir).strip():  # (it wrote the study and the model into the current folder)
            raise ConfigError("run_dir is empty: give a folder for the run's study and model, e.g. runs/mine")
        if not isinstance(self.data, str) or not self.data.strip():
            raise ConfigError("data is empty: give a dataset name (digits, fashion-mnist, cifar10...), "
                              "an image folder or a .npz file")
        if self.max_time is not None:
            self.max_time = parse_duration(self.max_time)
        for name in ("max_time", "max_device_hours", "max_cost", "gpu_price"):
            v = getattr(self, name)
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float))):
                raise ConfigError(f"{name} must be a number, got {v!r}")
        if self.gpu_price is not None and not (math.isfinite(self.gpu_price) and self.gpu_price >= 0):
            raise ConfigError(f"gpu_price must be a non-negative number (USD per hour), got {self.gpu_price!r}")
        if self.max_cost is not None and self.gpu_price == 0:
            raise ConfigError("gpu_price is 0, so a dollar budget (max_cost) would never be spent: give the "
                              "device's price per hour, or a time (--max-time) or device-hour budget instead")
        if self.max_trials is not None and (isinstance(self.max_trials, bool) or not isinstance(self.max_trials, int)):
            raise ConfigError(f"max_trials must be a positive integer, got {self.max_trials!r}")

    @property
    def metric(self) -> str:
        """The primary (higher-is-better) metric, used for pruning and choosing the best."""
        return self.objectives[0]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "SearchConfig":
        if not isinstance(d, dict):
            raise ConfigError(f"a search configuration must be a JSON object, got {type(d).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known - {"config_version"}
        if unknown:
            raise ConfigError(f"unknown config keys {sorted(unknown)}; known keys: {sorted(known)}")
        return cls(**{k: v for k, v in d.items() if k in known})

    def save(self, path: Path) -> None:
        write_text_atomic(path, json.dumps({"config_version": CONFIG_VERSION, **self.to_dict()}, indent=2) + "\n")

    @classmethod
    def load(cls, path: Path) -> "SearchConfig":
        try:
            return cls.from_dict(json.loads(path.read_text()))
        except (OSError, json.JSONDecodeError) as e:
            raise ConfigError(f"cannot read the run's config {path}: {e}") from None

    def fingerprint_fields(self) -> dict[str, Any]:
        """The settings that change what a trial measures; resuming with others is refused.

        Budgets, strategy, pruner, price, max_params and the final-training settings can change
        between sessions: they decide what is tried next, not what a result means. The device can
        change within its kind (one GPU for another); between a CPU and a GPU the precision
        differs, which ``prepare`` adds to the fingerprint with the settings as resolved.
        """
        keep = ("space", "C", "N", "objectives", "epochs", "subset", "search_resolution",
                "resolution", "val_fraction", "test_fraction", "seed", "batch_size", "lr", "hflip")
        return {k: getattr(self, k) for k in keep}
