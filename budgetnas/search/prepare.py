"""Turn loaded images into the tensors a search and its final training use.

All splits are stratified and seeded by the config; normalisation statistics come from the
training split only; the same resolution policy (``budgetnas.data.resolve_resolution``) serves
search and final training, the search optionally at a lower proxy resolution and on a subset.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from budgetnas.data import (
    CIFAR10_CLASSES,
    FASHION_MNIST_CLASSES,
    DataSplits,
    ImageData,
    channel_stats,
    resolve_resolution,
    stratified_split,
    stratified_subset,
    to_tensor,
)
from budgetnas.data._tensor import aspect_changes
from budgetnas.errors import ConfigError, DataError, user_stacklevel
from budgetnas.search.config import SearchConfig
from budgetnas.train import TRAINER_VERSION, TrainConfig

# Named datasets whose mirror images keep their class (clothes, objects); digits and letters don't.
FLIP_SAFE = {"cifar10", "cifar-10", "fashion-mnist", "fashionmnist"}


def flip_safe(data_name: str, data: ImageData) -> bool:
    """Whether mirrored images keep their class, for data known to be so: CIFAR-10 or
    Fashion-MNIST, recognised by the name given, the name the loader gave, or their exact
    classes (however the path to them is spelled: a folder, an archive, Debian's copy)."""
    names = {n.lower().replace("_", "-").removesuffix("-test") for n in (data_name, data.name or "")}
    return bool(names & FLIP_SAFE) or set(data.classes) in (set(CIFAR10_CLASSES), set(FASHION_MNIST_CLASSES))


@dataclass
class Prepared:
    """Tensors and metadata for one search: search splits now, final splits on demand."""

    train: ImageData  # search-train part (before subsetting)
    val: ImageData  # the whole validation split (val_x/val_y: what the search scores; see search_val_count)
    test: ImageData | None
    classes: tuple[str, ...]
    in_channels: int
    resolution: int
    search_resolution: int
    mean: np.ndarray
    std: np.ndarray
    hflip: bool
    fingerprint: str
    data_fingerprint: str
    fingerprint_fields: dict[str, Any]  # the settings as they take effect (what the fingerprint hashes)
    data_parts: dict[str, str | None]  # the fingerprints of the training data and of the given test split
    search_train_x: torch.Tensor
    search_train_y: torch.Tensor
    val_x: torch.Tensor
    val_y: torch.Tensor

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def tensors(self, data: ImageData, resolution: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        x = to_tensor(data, mean=self.mean, std=self.std, resolution=resolution or self.resolution)
        return x, torch.tensor(data.labels, dtype=torch.int64)

    def final_train(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Train + validation at the final resolution, for the final training."""
        xa, ya = self.tensors(self.train)
        xb, yb = self.tensors(self.val)
        return torch.cat([xa, xb]), torch.cat([ya, yb])


def _warn_unmeasured_classes(classes: Any, train: Any, val: Any, test: Any) -> None:
    """Warn of classes the validation or test split has no image of: the search never scores them
    and the test does not measure them, though the model predicts them. (A class of one image
    went to training alone, silently, a user review found, 2026-12-06.)"""
    n_train = np.bincount(train.labels, minlength=len(classes))
    for name, part in (("validation", val), ("test", test)):
        if part is None:
            continue
        absent = np.flatnonzero(np.bincount(part.labels, minlength=len(classes)) == 0)
        if len(absent):
            shown = ", ".join(f"{classes[i]!r} ({n_train[i]} training image{'s' if n_train[i] != 1 else ''})"
                              for i in absent[:5])
            warnings.warn(
                f"{len(absent)} class(es) have no {name} image: {shown}{', ...' if len(absent) > 5 else ''}; "
                f"the {'search cannot score' if name == 'validation' else 'test does not measure'} the model "
                "on them, though it predicts them. Give each class at least 3 images (a split takes one "
                "from a class only if it has another left to train on)", stacklevel=user_stacklevel())


def _round4(r: int) -> int:
    return max(4, r // 4 * 4)


# With --subset, the validation images each epoch scores shrink by the same fraction, but to no
# fewer than this many (or all of them, where the split has fewer): at 5,000 images a 90 % accuracy
# is measured to about +-0.4 points (one standard error), fine enough to rank cells by; a whole
# validation split could cost more than the subset's training (Fashion-MNIST at --subset 0.05:
# 12,000 images scored per epoch against 2,400 trained on).
VAL_FLOOR = 5000


def search_val_count(n_val: int, subset: float) -> int:
    """How many of ``n_val`` validation images a search on a ``subset`` of the training images
    scores each epoch: the same fraction, at least :data:`VAL_FLOOR` (all where fewer).

    Example:
        >>> search_val_count(12000, 0.2), search_val_count(12000, 0.5), search_val_count(360, 0.1)
        (5000, 6000, 360)
    """
    return n_val if subset >= 1 else min(n_val, max(VAL_FLOOR, round(n_val * subset)))


MEMORY_SHARE = 0.5  # the most of this machine's memory the images as training tensors may take


def _check_memory(images: int, channels: int, resolution: int, native: tuple[int, int]) -> None:
    """Refuse a resolution whose float32 tensors of every image would not fit in memory (it
    crashed in the allocator, or swapped for minutes), before any is made."""
    need = images * channels * resolution * resolution * 4
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # (not on this platform: nothing to compare with)
        return
    if need > MEMORY_SHARE * total:
        raise ConfigError(
            f"at {resolution}x{resolution} px the {images:,} images need {need / 2**30:.1f} GiB as float32 "
            f"tensors, more than {MEMORY_SHARE:.0%} of this machine's {total / 2**30:.1f} GiB; the images are "
            f"{native[0]}x{native[1]}: lower --resolution (the default trains at their size, at most 32)")


def trials_trainer_version(n: int, batch: int, device_type: str, fused: bool) -> int:
    """The earliest trainer version that trains these trials as this one does, kept in the
    fingerprint so that runs it trained alike resume: version 3 drops the last partial batch on
    the CPU, which CUDA and compiled trials always dropped, and which is none, or one image
    (dropped by version 2 too), where the batch divides the images. (Every version-2 run was
    refused, GPU searches and shared studies among them: a diff review, 2026-12-07.)"""
    if TRAINER_VERSION == 3 and (device_type == "cuda" or fused or n <= batch or n % batch in (0, 1)):
        return 2
    return TRAINER_VERSION


def prepare(splits: DataSplits, config: SearchConfig, *, data_name: str, device_type: str = "cpu",
            shrink_val: bool = True) -> Prepared:
    """Split, subset, normalise and resize according to ``config``; fingerprint the result.

    With ``config.subset`` < 1 the search scores a stratified subset of the validation split too
    (:func:`search_val_count`), recorded in the fingerprint as ``search_val_images``;
    ``shrink_val=False`` keeps it whole, as runs made before 2026-12-06 scored it.

    The fingerprint hashes the data and the settings *as they take effect* on this data and
    device: the resolutions, the flip and the batch size as resolved (None and its resolved value
    are the same run), the test fraction only where the data has no test split, and the device's
    precision (bf16 autocast on CUDA, float32 elsewhere), which changes what a trial measures.
    """
    full = splits.train
    if full.num_classes < 2:
        raise DataError(f"the training data has a single class {full.classes}; a classifier needs two")
    present = np.unique(full.labels)
    if len(present) == 1:  # (classes named, by a .npz's classes array or classes=, but without images)
        only = full.classes[int(present[0])]
        raise DataError(
            f"every training image is of class {only!r}: the other "
            f"{full.num_classes - 1} class(es) named ({', '.join(repr(c) for c in full.classes if c != only)[:200]}) "
            "have no training image, and a classifier needs images of at least two; add images of another "
            "class, or check that the labels were read correctly")
    if splits.test is not None:
        test = splits.test
        if tuple(test.classes) != tuple(full.classes):
            raise DataError(
                f"train and test classes differ: {list(full.classes)} vs {list(test.classes)}; "
                "give both splits the same class folders or label set"
            )
        if test.shape[0] != full.shape[0]:
            raise DataError(f"train images have {full.shape[0]} channels but test images {test.shape[0]}")
        rest = full
    elif config.test_fraction == 0:
        rest, test = full, None
    else:
        keep, held = stratified_split(full.labels, config.test_fraction, seed=config.seed)
        rest, test = full.subset(keep), full.subset(held)
    if splits.val is not None:  # the user's own validation set (its classes and channels checked by
        train, val = rest, splits.val  # DataSplits): the search trains on all the rest
    else:
        keep, held = stratified_split(rest.labels, config.val_fraction, seed=config.seed + 1)
        train, val = rest.subset(keep), rest.subset(held)
    if len(val) < 1 and np.bincount(rest.labels).max(initial=0) < 2:
        held_out = "" if test is None or splits.test is not None else f" once {len(test)} test image(s) are held out"
        raise DataError(
            f"every class has a single image{held_out} ({len(rest)} in all): the search needs at least two "
            "images of a class, one to train on and one to validate; give more images per class"
        )
    if len(train) < 2 or len(val) < 1 or (test is not None and len(test) < 1):
        raise DataError(
            f"too few images to split ({len(full)} in all): the search needs training and validation "
            f"images{'' if test is None else ' and test images'}; give more images, or lower "
            f"--val-fraction{'' if test is None or splits.test is not None else ' or --test-fraction'}"
        )
    _warn_unmeasured_classes(full.classes, train, val, test)
    h, w = full.shape[1], full.shape[2]
    resolution = _round4(resolve_resolution((h, w), config.resolution))
    if aspect_changes((h, w), (1, 1)):  # (stretched silently; predict warned of the same, a user review, 2026-12-06)
        warnings.warn(f"the images are {h}x{w} (height x width) and are resized to {resolution}x{resolution} "
                      "squares for the search, the final training and prediction alike, which changes their "
                      "aspect ratio; crop or pad them to squares first where shapes matter", stacklevel=user_stacklevel())
    search_res = resolution if config.search_resolution is None else _round4(config.search_resolution)
    if search_res > resolution:
        raise ConfigError(
            f"search resolution {search_res} is above the final resolution {resolution}; "
            "the search is a cheaper proxy, so use a lower or equal one"
        )
    _check_memory(len(full) + (len(test) if test is not None else 0) + (len(val) if splits.val is not None else 0),
                  full.shape[0], resolution, (h, w))
    mean, std = channel_stats(train.images)
    hflip = config.hflip if config.hflip is not None else flip_safe(data_name, full)
    subset = stratified_subset(train, config.subset, seed=config.seed + 2)
    sx = to_tensor(subset, mean=mean, std=std, resolution=search_res)
    n_val = search_val_count(len(val), config.subset) if shrink_val else len(val)
    search_val = val if n_val == len(val) else stratified_subset(val, n_val / len(val), seed=config.seed + 3)
    vx = to_tensor(search_val, mean=mean, std=std, resolution=search_res)
    data_fp = hashlib.blake2b(
        (full.fingerprint() + ":" + (splits.test.fingerprint() if splits.test is not None else "-")
         + (":" + splits.val.fingerprint() if splits.val is not None else "")).encode(),  # (runs without: as before)
        digest_size=16,
    ).hexdigest()
    fields: dict[str, Any] = {
        **config.fingerprint_fields(), "resolution": resolution, "search_resolution": search_res, "hflip": hflip,
        "test_fraction": None if splits.test is not None else config.test_fraction,
        **({"val_fraction": None} if splits.val is not None else {}),  # (a validation set given: unused)
        "batch_size": (bs := TrainConfig(batch_size=config.batch_size).resolved_batch_size(len(subset), device_type)),
        "precision": "bf16-autocast" if device_type == "cuda" else "float32",
        # (runs before it have none: version 1)
        "trainer": trials_trainer_version(len(subset), bs, device_type, config.fuse == "all"),
    }
    if "macs" not in config.objectives:
        # The final resolution changes no search result where the search runs at a resolution of
        # its own (then search_resolution, resolved, says so): like --final-C, it is a final-training
        # setting (see Search._final_settings). It was refused (a search-core review, 2026-12-06).
        # Image folders are read at a size the resolution sets: other pixels, refused by the data's
        # fingerprint. The macs objective is the final network's, at this resolution.
        del fields["resolution"]
    if len(search_val) < len(val):  # (only then: the fingerprints of runs that score it whole stay as they were)
        fields["search_val_images"] = len(search_val)
    fingerprint = hashlib.blake2b(json.dumps({"data": data_fp, **fields}, sort_keys=True).encode(),
                                  digest_size=16).hexdigest()
    return Prepared(
        train=train, val=val, test=test, classes=tuple(full.classes), in_channels=full.shape[0],
        resolution=resolution, search_resolution=search_res, mean=mean, std=std, hflip=hflip,
        fingerprint=fingerprint, data_fingerprint=data_fp, fingerprint_fields=fields,
        data_parts={"train": full.fingerprint(), "test": splits.test.fingerprint() if splits.test is not None else None,
                    **({"val": splits.val.fingerprint()} if splits.val is not None else {})},
        search_train_x=sx, search_train_y=torch.tensor(subset.labels, dtype=torch.int64),
        val_x=vx, val_y=torch.tensor(search_val.labels, dtype=torch.int64),
    )
