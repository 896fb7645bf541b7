"""One readable trainer for candidates (layer 4): ``train(...)``, ``evaluate(...)``."""

from budgetnas.train.trainer import (
    EpochRecord,
    TrainConfig,
    TrainResult,
    evaluate,
    metrics_from_confusion,
    predict_logits,
    resolve_device,
    seeded_build,
    train,
)

__all__ = [
    "EpochRecord",
    "TrainConfig",
    "TrainResult",
    "evaluate",
    "metrics_from_confusion",
    "predict_logits",
    "resolve_device",
    "seeded_build",
    "train",
]
