"""One readable trainer for candidates (layer 4): ``train(...)``, ``evaluate(...)``."""

from budgetnas.train.checkpoint import Checkpointer
from budgetnas.train.trainer import (
    TRAINER_CHANGES,
    TRAINER_VERSION,
    EpochRecord,
    Preempted,
    TrainConfig,
    TrainResult,
    eval_batch_size,
    evaluate,
    metrics_from_confusion,
    predict_logits,
    resolve_device,
    seeded_build,
    train,
    warm_up,
)

__all__ = [
    "Checkpointer",
    "TRAINER_CHANGES",
    "TRAINER_VERSION",
    "EpochRecord",
    "Preempted",
    "TrainConfig",
    "TrainResult",
    "eval_batch_size",
    "evaluate",
    "metrics_from_confusion",
    "predict_logits",
    "resolve_device",
    "seeded_build",
    "train",
    "warm_up",
]
