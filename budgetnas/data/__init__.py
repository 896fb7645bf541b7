"""Data layer (layer 1): load, check, split and tensorise image classification data.

Everything here turns user data into one value, :class:`ImageData` (``(N, C, H, W)`` images,
int64 labels, class names), or a :class:`DataSplits` of train and optional test. It knows nothing
about search. Entry points:

- :func:`load_dataset` -- a name (``digits``, ``fashion-mnist``, ``mnist``, ``cifar10``) or a path
- :func:`from_arrays`, :func:`load_image_folder`, :func:`load_idx_pair`, :func:`read_idx`,
  :func:`load_cifar10_archive`, :func:`download_fashion_mnist`
- :func:`stratified_split`, :func:`stratified_subset` -- validation splits and proxy subsets
- :func:`channel_stats`, :func:`resolve_resolution`, :func:`to_tensor` -- what training consumes

Example:
    >>> import numpy as np
    >>> from budgetnas.data import from_arrays, channel_stats, to_tensor
    >>> d = from_arrays(np.zeros((4, 8, 8), np.uint8), [0, 1, 0, 1])
    >>> mean, std = channel_stats(d.images)
    >>> tuple(to_tensor(d, mean=mean, std=std).shape)
    (4, 1, 8, 8)
"""

from __future__ import annotations

from budgetnas.data._arrays import as_images, from_arrays
from budgetnas.data._cifar import CIFAR10_CLASSES, load_cifar10_archive
from budgetnas.data._datasets import (
    FASHION_MNIST_CLASSES,
    KNOWN_DATASETS,
    MNIST_CLASSES,
    load_dataset,
)
from budgetnas.data._download import FASHION_MNIST_URL, download_fashion_mnist
from budgetnas.data._folder import IMAGE_EXTENSIONS, load_image_folder
from budgetnas.data._idx import load_idx_pair, read_idx
from budgetnas.data._split import stratified_split, stratified_subset
from budgetnas.data._tensor import channel_stats, pixel_range, resolve_resolution, to_tensor
from budgetnas.data._types import DataSplits, ImageData

__all__ = [
    "CIFAR10_CLASSES",
    "DataSplits",
    "FASHION_MNIST_CLASSES",
    "FASHION_MNIST_URL",
    "IMAGE_EXTENSIONS",
    "ImageData",
    "KNOWN_DATASETS",
    "MNIST_CLASSES",
    "channel_stats",
    "download_fashion_mnist",
    "as_images",
    "from_arrays",
    "load_cifar10_archive",
    "load_dataset",
    "load_idx_pair",
    "load_image_folder",
    "pixel_range",
    "read_idx",
    "resolve_resolution",
    "stratified_split",
    "stratified_subset",
    "to_tensor",
]
