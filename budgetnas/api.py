"""The Python API in the spirit of AutoKeras: ``ImageClassifier(...).fit(x, y)``.

Example::

    from budgetnas import ImageClassifier
    clf = ImageClassifier(max_trials=10, run_dir="runs/mine", epochs=5)
    clf.fit(x_train, y_train)              # (N,H,W) or (N,H,W,C) arrays, any labels
    print(clf.evaluate(x_test, y_test))    # accuracy, balanced accuracy, macro-F1
    clf.predict(x_test[:5])                # labels as given to fit
    clf.export("model.ts", format="torchscript")
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import os
import signal
import sys
import warnings
import zipfile
from collections.abc import Iterator
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from budgetnas.data import DataSplits, ImageData, as_images, from_arrays, pixel_range, to_tensor
from budgetnas.data._arrays import (_label_values, _to_numpy, check_same_scale, encode_labels, label_column,
                                    refuse_mixed_labels)
from budgetnas.data._tensor import aspect_changes
from budgetnas.errors import BudgetNASError, ConfigError, DataError, first_line, user_stacklevel
from budgetnas.search import Search, SearchConfig, SearchResult
from budgetnas.spaces import create_space
from budgetnas.train import evaluate as _evaluate
from budgetnas.train import predict_logits

log = logging.getLogger(__name__)


class TrainedModel:
    """A final model with its preprocessing: give it raw images, get classes or probabilities."""

    def __init__(self, artifact: dict[str, Any], device: str = "cpu") -> None:
        self.artifact = artifact
        spec = dict(artifact["space"])
        space = create_space(spec.pop("space"), **{k: v for k, v in spec.items() if k != "version"})
        self.arch = artifact["arch"]
        self.model = space.build(space.parse(self.arch), in_channels=artifact["in_channels"],
                                 num_classes=artifact["num_classes"])
        self.model.load_state_dict(artifact["state_dict"])
        self.model.eval()
        self.classes: list[str] = list(artifact["classes"])
        # What predict answers: the labels fit was given where they were integers (saved beside the
        # names: a loaded model answered '3' where the classifier answered 3, so comparing its
        # predictions with the labels was silently all wrong: review A, 2026-12-07), else the names.
        values = artifact.get("label_values")
        self.labels: np.ndarray = (np.asarray(values, dtype=np.int64) if values is not None
                                   and len(values) == len(self.classes) else np.asarray(self.classes))
        self.mean = np.asarray(artifact["mean"])
        self.std = np.asarray(artifact["std"])
        self.resolution = int(artifact["resolution"])
        self.in_channels = int(artifact["in_channels"])
        size = artifact.get("image_size")  # (H, W) of the training images; older models lack it
        self.image_size: tuple[int, int] | None = (int(size[0]), int(size[1])) if size else None
        # the training pixels' range as read (uint8 as value / 255, floats as given); older models lack it
        rng = artifact.get("pixel_range")
        self.pixel_range: tuple[float, float] | None = (float(rng[0]), float(rng[1])) if rng else None
        # whether they were given as integers (any integer dtype; None: unknown, as for a folder)
        self.integer_pixels: bool | None = artifact.get("integer_pixels")
        # 4-D arrays as the training's were given: (N, C, H, W) where it was told channels_first
        # (load_model refused them, asking for channels_last=False: a review, 2026-12-07)
        self.channels_first = bool(artifact.get("channels_first", False))
        self.device = device
        self.source: Path | None = None  # the file it was loaded from (an export never overwrites it)

    @classmethod
    def load(cls, path: str | os.PathLike[str], device: str = "cpu") -> "TrainedModel":
        p = Path(path)
        if p.is_dir():
            p = p / "best" / "model.pt" if (p / "best" / "model.pt").exists() else p / "model.pt"
        if not p.exists():
            why = ""
            if (Path(path) / "study.db").exists():
                why = (" (the run has no final model: it ran with --no-final / final_training=False, or "
                       "stopped before or during the final training; run it again with the final training to make "
                       "or finish one)")
                if _finished_trials(Path(path) / "study.db") == 0:  # (advice that could not work: a review, 2026-12-07)
                    why = (f" (the run has no final model: none of its trials finished with a cell to train "
                           f"(failed, pruned, or over the size limit); `budgetnas show {path}` says why, e.g. the "
                           "failed trials' errors: fix the cause and search again)")
            raise DataError(f"no budgetnas model at {path}{why}; give a run directory or its best/model.pt")
        if zipfile.is_zipfile(p):
            with zipfile.ZipFile(p) as z:
                if any(n.endswith("constants.pkl") or "/code/" in n for n in z.namelist()):
                    raise DataError(f"{p} is a TorchScript export, not a budgetnas model file: load that "
                                    "with torch.jit.load, or give the run directory to load_model")
        if _is_onnx(p):
            raise DataError(f"{p} is an ONNX export, not a budgetnas model file: run it with onnxruntime "
                            "(its metadata key budgetnas.json says what it takes), or give the run directory "
                            "to load_model")
        other = _other_kind_of_file(p)
        if other:
            raise DataError(f"{p} is not a budgetnas model file: it is {other}; give a run directory or its "
                            "best/model.pt")
        try:
            artifact = torch.load(p, map_location="cpu", weights_only=True)  # plain tensors only: safe
        except Exception as e:  # noqa: BLE001 - any unreadable file: say what it is not
            # (never pass on torch's advice to load with weights_only=False: that runs the file's code)
            first = ("it holds Python objects besides tensors, which budgetnas does not unpickle"
                     if "weights_only" in str(e) else first_line(e)[:200])
            raise DataError(f"{p} is not a budgetnas model file ({first}); give a run directory or "
                            "its best/model.pt") from None
        if not isinstance(artifact, dict) or artifact.get("format") != "budgetnas-model":
            raise DataError(f"{p} is not a budgetnas model file; give a run directory or its best/model.pt")
        model = cls(artifact, device=device)
        model.source = p.resolve()  # (absolute: a later chdir must not move the file it guards)
        return model

    def input_spec(self) -> dict[str, Any]:
        """What the bare network (a TorchScript or ONNX export) takes and gives, for deployment:
        saved inside a TorchScript export as ``budgetnas.json`` (read it with
        ``torch.jit.load(path, _extra_files={"budgetnas.json": ""})``)."""
        if self.pixel_range is not None and self.pixel_range[1] > FLOAT_PIXELS_ABOVE:
            lo, hi = self.pixel_range
            # (integer arrays beyond 0..255, uint16 say, were read as value / 255 too: "NOT divided by
            # 255" was a wrong recipe for them, off by hundreds of standard deviations, a review, 2026-12-07)
            pixels = (f"with pixels as the training images were read, from {lo:g} to {hi:g}: float arrays as they "
                      "were given (NOT divided by 255: give uint8 camera pixels as float32 values), integer "
                      "arrays of any integer type as value / 255; give images as the training images were given")
        else:
            pixels = "with pixels in [0, 1]: uint8 pixels read as value / 255"
        spec = {
            "input": f"float32 (N, {self.in_channels}, {self.resolution}, {self.resolution}), channels first: "
                     "images resized (antialiased bilinear) to resolution x resolution, then (pixels - mean) / "
                     f"std per channel, {pixels} (what TrainedModel.preprocess does)",
            "output": "logits (N, len(classes)); softmax gives probabilities; argmax indexes classes (and "
                      "labels, where fit was given integers)",
            "in_channels": self.in_channels, "resolution": self.resolution,
            "mean": [float(v) for v in self.mean], "std": [float(v) for v in self.std],
            "classes": list(self.classes), "arch": self.arch,
        }
        if self.labels.dtype.kind == "i":  # (what predict answers: the integer labels fit was given)
            spec["labels"] = [int(v) for v in self.labels]
        if self.pixel_range is not None:
            spec["pixel_range"] = list(self.pixel_range)
        if self.image_size is not None:
            spec["image_size"] = list(self.image_size)
        return spec

    def preprocess(self, x: Any, channels_last: bool | None = None) -> torch.Tensor:
        """Raw images -> the normalised tensor the network takes: the training's resolution
        policy and statistics. Images of another size than the training images are resized the
        same way (a warning says so, since a changed aspect ratio distorts them). Pillow images of
        several sizes are taken size by size, so that each is read as it would be alone. 4-D
        arrays are read as the training's were given ((N, C, H, W) after a channels-first fit)
        unless ``channels_last`` says otherwise."""
        if channels_last is None and self.channels_first:
            channels_last = False
        sizes = _pil_sizes(x)
        if len(set(sizes)) > 1:
            # (resized first to one size, then to the resolution, an image was read otherwise than
            # alone or beside images of its size, and predicted otherwise: a diff review, 2026-12-06)
            out: torch.Tensor | None = None
            for size in dict.fromkeys(sizes):
                idx = [i for i, s in enumerate(sizes) if s == size]
                part = self.preprocess([x[i] for i in idx])
                if out is None:
                    out = part.new_empty((len(sizes), *part.shape[1:]))
                out[idx] = part
            return out
        pixels = _pil_as_arrays(x, self.in_channels)
        if pixels is not x:  # (Pillow's images come channels-first, whatever layout arrays had in fit)
            channels_last = False
        else:
            self._refuse_one_image(x)
        with warnings.catch_warnings():
            if self.pixel_range is not None and _within(pixels, self.pixel_range):
                # (a float range the training images had too: nothing to warn of, on every call)
                warnings.filterwarnings("ignore", message="float images range from", category=UserWarning)
            images = as_images(pixels, channels_last=channels_last)
        if images.shape[1] != self.in_channels:
            shape = tuple(getattr(_to_numpy(x), "shape", ()))
            hint = ""
            if channels_last is None and len(shape) == 4 and shape[1] == self.in_channels:
                hint = "; these look channels-first (N, C, H, W): pass channels_last=False"
            elif channels_last is False and len(shape) == 4 and shape[3] == self.in_channels:
                hint = ("; they are read as channels-first (N, C, H, W), as the training images were, but look "
                        "channels-last (N, H, W, C): pass channels_last=True")
            elif len(shape) == 3 and shape[2] == self.in_channels:
                hint = (f"; a 3-D array is read as (N, H, W), {shape[0]} one-channel images: for one "
                        f"{shape[0]}x{shape[1]} image of {shape[2]} channels add a leading axis (x[None])")
            raise DataError(
                f"these images have {images.shape[1]} channels but the model was trained on "
                f"{self.in_channels}; give images shaped like the training images{hint}"
            )
        size = tuple(images.shape[2:])
        if self.image_size is not None and size != self.image_size and _distorts(size, self.image_size, self.resolution):
            warnings.warn(
                f"these images are {size[0]}x{size[1]} but the model was trained on "
                f"{self.image_size[0]}x{self.image_size[1]} images; both are resized to "
                f"{self.resolution}x{self.resolution}"
                + (", which changes these images' aspect ratio" if aspect_changes(size, self.image_size) else "")
                + "; accuracy may suffer",
                stacklevel=user_stacklevel())
        data = ImageData(images=images, labels=np.zeros(len(images), dtype=np.int64), classes=("0", "1"))
        tensor = to_tensor(data, mean=self.mean, std=self.std, resolution=self.resolution)
        if self._check_pixel_scale(images, getattr(pixels, "dtype", None)):
            return tensor
        shift = tensor.mean(dim=(0, 2, 3)).abs().max().item() if len(tensor) else 0.0
        if shift > 8:  # training images average 0 here; a 255x scale mistake lands near 100s
            warnings.warn(
                f"these images' pixel values look scaled differently from the training images "
                f"(normalised, their mean is {shift:.0f} standard deviations from the training "
                f"mean; they are {images.dtype}, from {images.min():g} to {images.max():g}); give "
                "them as the training images were given (integer arrays are read as value / 255, "
                "float arrays as they are, 16-bit image files as value / 65535: an array read from "
                "a 16-bit file needs x / 65535.0)",
                stacklevel=user_stacklevel())
        return tensor

    def _refuse_one_image(self, x: Any) -> None:
        """One (H, W, C) image given where a batch is expected: read as (N, H, W), it is H images
        of W x C pixels. With C the model's channel count (1 or 3) and the training images over 4
        pixels a side, that is never a batch the model was made for; a one-channel model used to
        answer with H predictions and warn only of the aspect ratio."""
        shape = tuple(getattr(_to_numpy(x), "shape", ()))
        if (len(shape) == 3 and shape[2] == self.in_channels and shape[2] <= 4 and self.image_size is not None
                and min(self.image_size) > 4):
            raise DataError(
                f"a 3-D array is read as (N, H, W): these would be {shape[0]} images of {shape[1]}x{shape[2]} "
                f"pixels, but the model was trained on {self.image_size[0]}x{self.image_size[1]} images; for one "
                f"{shape[0]}x{shape[1]} image of {shape[2]} channel{'s' if shape[2] > 1 else ''} add a leading axis "
                "(x[None])")

    def _check_pixel_scale(self, images: np.ndarray, given: Any = None) -> bool:
        """Warn (and say True) where these images' brightest pixel, as read, is over SCALE_GAP times
        brighter or darker than the training images' was: the sign of 0..255 floats given to a
        model trained on uint8 pixels, or uint8 pixels to one trained on 0..255 floats, which the
        normalisation alone does not show (measured: such a model scored chance, with no warning).
        ``given``: the dtype the caller's array had, before it was read."""
        if self.pixel_range is None or not images.size:
            return False
        given = given if isinstance(given, np.dtype) else images.dtype
        integer = images.dtype == np.uint8
        seen = pixel_range(images)[1]
        trained = self.pixel_range[1]
        if given.kind in "iu" and given.itemsize > 1 and self.integer_pixels:
            # Wider integers (uint16, int32) are read as value / 255 whatever this batch's range, as
            # the model's integer training pixels were: a dark uint16 batch was warned of as "uint8"
            # and advised into floats, which made it wrong (review E, 2026-12-07). A model of 0..255
            # floats is warned of still (int64 0..255 values: a diff review).
            return False
        # Only where the input can be on another scale: integer pixels to a model of 0..255 floats,
        # 0..255 floats to a model of [0, 1] pixels, or [0, 1] floats to a model of 0..255 floats
        # (dark images of the training's kind are fine). (The last, "divided by 255 at test time",
        # predicted every image alike with no warning: a review, 2026-12-07.)
        other_kind = (integer and trained > FLOAT_PIXELS_ABOVE) or (
            not integer and (trained <= FLOAT_PIXELS_ABOVE) != (seen <= FLOAT_PIXELS_ABOVE))
        if seen <= 0 or trained <= 0 or not other_kind or 1 / SCALE_GAP < seen / trained < SCALE_GAP:
            return False
        if trained > FLOAT_PIXELS_ABOVE:
            advice = (f"the model was trained on pixels up to {trained:g} as read: give these in the form the "
                      "training images were given (" + ("uint8 pixels as x.astype(np.float32)" if integer else
                                                          "not rescaled into [0, 1]") + ")")
        else:
            advice = ("the model was trained on pixels read into [0, 1] (uint8 as value / 255, or floats in "
                      "[0, 1]): give 0..255 pixels as uint8 (x.astype(np.uint8)) or as floats divided by 255")
        warnings.warn(
            f"these images' pixels reach {seen:g} as read ({given}: integer pixels are read as value / "
            f"255, floats as they are) but the training images' reached {trained:g}, {max(seen / trained, trained / seen):.0f}x "
            f"{'more' if seen > trained else 'less'}: the predictions would be made on the wrong scale; {advice}",
            stacklevel=user_stacklevel())
        return True

    def predict_proba(self, x: Any, channels_last: bool | None = None) -> np.ndarray:
        """Class probabilities ``(N, num_classes)``, columns in the order of ``classes``.
        ``channels_last=False`` reads 4-D arrays as ``(N, C, H, W)``. No images give an empty
        ``(0, num_classes)`` array."""
        if _no_images(x):
            return np.zeros((0, len(self.classes)), dtype=np.float32)
        logits = predict_logits(self.model, self.preprocess(x, channels_last), device=self.device)
        return torch.softmax(logits, 1).numpy()

    def predict_index(self, x: Any, channels_last: bool | None = None) -> np.ndarray:
        """The index of the predicted class, into ``classes``, for each image."""
        return self.predict_proba(x, channels_last).argmax(1)

    def predict(self, x: Any, channels_last: bool | None = None) -> np.ndarray:
        """The predicted label for each image (from ``labels``: as ``ImageClassifier.fit`` was given
        them, integers as integers; else the class names, e.g. a folder's; ``predict_index`` gives
        the positions in ``classes``).

        Example::

            model = load_model("runs/demo")
            model.predict(images[:5])      # array(['3', '7', ...])
        """
        return self.labels[self.predict_index(x, channels_last)]

    def export(self, path: str | os.PathLike[str], format: str | None = None) -> Path:
        """Save the model: ``torchscript`` (the traced network, taking normalised images, with
        :meth:`input_spec` inside as ``budgetnas.json``), ``onnx`` (the same network, with the
        spec as the metadata key ``budgetnas.json``) or ``state`` (weights and preprocessing,
        loadable with :func:`load_model`). Without ``format``, the name says: ``.onnx`` onnx,
        ``.ts``/``.pt``/``.pth`` torchscript (another name needs a format, and a name saying another
        format than the one given is refused). It never writes over the file the model was loaded
        from, nor over any existing file but an earlier export (or model file) outside a run's
        ``best/`` and ``checkpoints/``. The file is written
        whole or not at all: an existing file at ``path`` is replaced only by a finished export.

        Example::

            load_model("runs/demo").export("model.onnx")
        """
        out = Path(path).expanduser()
        if out.is_dir():
            raise ConfigError(f"cannot export to {out}: it is a directory; give a file path such as {out / 'model.onnx'}")
        format = export_format(out, format)
        if self.source is not None and out.exists() and out.resolve() == self.source.resolve():
            raise ConfigError(f"cannot export to {out}: that is the model file this model was loaded from, "
                              "which the export would replace; give another path")
        if not out.parent.is_dir():
            what = (f"{out.parent} is a file, not a folder" if out.parent.exists() else
                    f"the folder {out.parent} does not exist; create it first")
            raise ConfigError(f"cannot export to {out}: {what}")
        _check_replaceable(out)
        tmp = out.with_name(f".{out.name}.tmp{os.getpid()}")
        # (the model stays on its device; no gradients: a TorchScript export's logits tracked them,
        # so .numpy() failed outside torch.no_grad() and every call built an autograd graph)
        net = copy.deepcopy(self.model).cpu().eval().requires_grad_(False)
        example = torch.zeros(1, self.in_channels, self.resolution, self.resolution)
        spec = json.dumps(self.input_spec())
        try:
            with warnings.catch_warnings():
                # (TorchScript and the TorchScript-based ONNX exporter are deprecated upstream but still
                # what loads without PyTorch's newest exporter stack: their notices are not the user's to act on)
                warnings.simplefilter("ignore", DeprecationWarning)
                warnings.simplefilter("ignore", FutureWarning)
                if format == "torchscript":
                    checked = torch.jit.script(_ShapeChecked(torch.jit.trace(net, example), self.in_channels,
                                                             self.resolution))
                    checked.save(str(tmp), _extra_files={"budgetnas.json": spec})
                elif format == "state":
                    torch.save(self.artifact, tmp)
                else:
                    _export_onnx(net, example, tmp, spec)
            os.replace(tmp, out)
        except (OSError, RuntimeError) as e:
            why = e.strerror if isinstance(e, OSError) and e.strerror else (
                "the file could not be opened for writing" if "inline_container" in str(e) else first_line(e)[:200])
            raise ConfigError(f"cannot write {out} ({why}); give a path in a folder you can "
                              "write to, on a disk with room") from None
        finally:
            tmp.unlink(missing_ok=True)
        return out


SCALE_GAP = 20  # a batch's brightest pixel this many times off the training images' is a scale mistake
FLOAT_PIXELS_ABOVE = 1.5  # training pixels reaching above this were floats given on a 0..255-like scale
ONNX_OPSET = 17  # ONNX Runtime 1.12 (2022) and later run it: what older edge devices have


class ImageClassifier:
    """Search an image classifier within a budget, then predict, evaluate and export it.

    Keyword arguments are :class:`budgetnas.search.SearchConfig` fields, the command line's flags
    with underscores; the defaults:

    - budget: ``max_trials=10``, ``max_time=None`` (wall time: seconds, or ``"20m"``), ``max_device_hours=None``,
      ``max_cost=None`` (USD, priced by ``gpu_price`` per hour or ``device_preset`` such as
      ``"t4"``, ``"h100"`` or ``"cpu"``); the search stops at the first limit reached.
    - search: ``strategy="tpe"`` (``gp``, ``rea``, ``reinforce``, ``local``, ``random``),
      ``objectives=["accuracy"]`` (``balanced_accuracy``, ``macro_f1``; ``"accuracy,params"``
      for a Pareto front), ``max_params=None`` (of the final network), ``pruner="none"`` (``sha``,
      ``hyperband``), ``seed=0``.
    - the candidates (a cheap proxy): ``C=8``, ``N=1``, ``epochs=8``, ``subset=1.0`` (a share of
      the training images), ``search_resolution=None`` (as ``resolution``), ``batch_size=None``
      (chosen per device), ``lr=0.1``, ``hflip=None`` (mirror images where the data allows).
    - the final model: ``final_C=16``, ``final_N=5`` (NAS-Bench-201's network), ``final_epochs=30``,
      ``final_training=True``, ``resolution=None`` (the images' size, at most 32 px).
    - the data: ``val_fraction=0.2`` (or fit's ``validation_split``), ``test_fraction``: no test
      split is held out unless given (pass fit's ``test_data``, or score your own with
      :meth:`evaluate`); ``channels_first=False``.
    - the device: ``device="auto"``, ``concurrent=1``, ``step_mode="auto"``, ``fuse="off"``.
    - ``run_dir="runs/image_classifier"``: everything the search stores (the study, checkpoints,
      the final model in ``best/``). ``fit`` again on the same run directory and data resumes the
      search; other data or settings that change what a trial measures are refused (give
      another ``run_dir`` to start afresh); budgets may change.
    - ``progress=True``: a bar at a terminal, else a line per trial on stderr.

    Images: numpy arrays ``(N, H, W)`` or ``(N, H, W, C)`` of any size and channel count, torch
    tensors, or lists of arrays or Pillow images; integer pixels are read as value / 255, floats
    as they are (give later images in the same form). Labels: one per image, integers or strings
    (a ``(N, 1)`` column too); ``predict`` answers in the labels' own kind. Ctrl-C stops ``fit``
    with ``KeyboardInterrupt`` after a checkpoint; ``fit`` again resumes.
    """

    def __init__(self, *, run_dir: str | os.PathLike[str] = "runs/image_classifier", max_trials: int | None = 10,
                 progress: bool = True, **kwargs: Any) -> None:
        known = {f.name for f in fields(SearchConfig)} - {"data", "data_root", "run_dir", "max_trials"}
        unknown = set(kwargs) - known
        if unknown:
            raise ConfigError(f"ImageClassifier got unknown arguments {sorted(unknown)}; "
                              f"known ones: {', '.join(sorted(known))}")
        if max_trials is not None and (isinstance(max_trials, bool) or not isinstance(max_trials, int) or max_trials < 1):
            raise ConfigError(f"max_trials must be a positive integer (or None, for a time or money budget "
                              f"alone), got {max_trials!r}")
        self.config = SearchConfig(data="arrays", run_dir=str(run_dir), max_trials=max_trials, **kwargs)
        self._test_fraction_given = "test_fraction" in kwargs
        self.progress = progress
        self.result: SearchResult | None = None
        self.model: TrainedModel | None = None
        self._labels: np.ndarray | None = None
        self._fit_channels_last: bool | None = None  # the layout the last successful fit read

    def fit(self, x: Any, y: Any, *, validation_split: float | None = None,
            validation_data: tuple[Any, Any] | None = None,
            test_data: tuple[Any, Any] | None = None, channels_last: bool | None = None) -> "ImageClassifier":
        """Search and train on ``(x, y)``; ``test_data=(x, y)`` is scored once at the end.
        ``channels_last=False`` (or ``ImageClassifier(channels_first=True)``) reads 4-D arrays as
        ``(N, C, H, W)``; predict and evaluate then read them so too unless told otherwise.
        ``validation_split`` (default 0.2, or the classifier's ``val_fraction``) is the share of
        each class held out to score the candidates; a fit that succeeds keeps it for the next.
        ``validation_data=(x_val, y_val)`` scores the candidates on your own validation images
        instead (the candidates then train on all of ``x``; the final model on both).

        A fit that fails (bad input, a refused resume, an error in the search) leaves the
        classifier as it was: its model, labels and settings are those of the last fit that
        succeeded."""
        layout = self._layout(channels_last)
        if y is None:
            raise DataError("fit needs labels: y is None; give one label per image (a 1-D array or list)")
        y_arr = _label_array(y)
        train = from_arrays(x, y_arr, name="arrays", channels_last=layout)
        labels = np.unique(y_arr) if y_arr.ndim == 1 else None
        if validation_data is not None and validation_split is not None:
            raise ConfigError("give validation_data or validation_split, not both: validation_split is the "
                              "share of x held out when no validation images are given")
        test, val = (None if pair is None else self._other_split(pair, name, x, train, layout)
                     for pair, name in ((test_data, "test_data"), (validation_data, "validation_data")))
        config = replace(self.config)
        if validation_split is not None:
            if isinstance(validation_split, bool) or not isinstance(validation_split, (int, float)) \
                    or not 0 < validation_split < 1:
                raise ConfigError(f"validation_split must be a fraction in (0, 1), got {validation_split!r}; "
                                  "e.g. 0.2 for a fifth of each class")
            config.val_fraction = float(validation_split)
        if test is None and not self._test_fraction_given:
            config.test_fraction = 0.0  # no test split held out unless asked: evaluate() scores yours
        search = Search(config, data=DataSplits(train=train, test=test, val=val), data_name="arrays",
                        progress=self.progress)
        search.second_signal_exits = False
        search.channels_first = layout is False
        # (integer labels: saved in the model, so that load_model's predictions are integers too)
        search.label_values = [int(v) for v in labels] if labels is not None and labels.dtype.kind in "iu" else None
        kind = getattr(getattr(_to_numpy(x), "dtype", None), "kind", None)  # (arrays and tensors; None: lists)
        search.integer_pixels = None if kind is None else kind in "iu"
        import optuna

        verbosity = optuna.logging.get_verbosity()
        optuna.logging.set_verbosity(optuna.logging.WARNING)  # no "A new study created" lines
        try:
            with _progress_lines(self.progress):
                result = search.run()
        except BudgetNASError as e:  # the search's advice names command-line flags: name ours
            raise type(e)(_in_api_words(str(e))) from None
        finally:
            optuna.logging.set_verbosity(verbosity)
        if result.preempted and search._signal_name in ("SIGINT", "SIGTERM"):
            # Stopped by Ctrl-C (a notebook's "interrupt kernel"): what Python does with it, after the
            # checkpoint, so that a cell or script stops here (fit returned as if done, and the next
            # line's predict failed with "no final model": a review, 2026-12-07). SIGTERM ends a
            # script as its default action would, with the status a shell gives it.
            message = (f"fit stopped by {search._signal_name}: nothing finished is lost; call fit again with "
                       f"the same data and run_dir={str(config.run_dir)!r} to resume ({result.stop_reason})")
            if search._signal_name == "SIGINT":
                raise KeyboardInterrupt(_in_api_words(message).replace("; run the same command to resume", ""))
            log.warning(message)
            raise SystemExit(128 + signal.SIGTERM)
        # (its reason names settings as this classifier's arguments, not as flags: "more than
        # max_trials 3", not "--max-trials 3": a review, 2026-12-07)
        result.stop_reason = _in_api_words(result.stop_reason)
        if result.best_arch is None:
            raise ConfigError(f"no trial finished, so there is no model ({result.stop_reason}); see "
                              f"`budgetnas show {config.run_dir}` for each trial's reason")
        model = None
        if config.final_training and (Path(config.run_dir) / "best" / "model.pt").exists():
            loaded = TrainedModel.load(Path(config.run_dir))
            # A session stopped before its final training leaves an earlier session's final model
            # there, of what was the best cell then: not the model of this search's best cell.
            if loaded.arch == result.best_arch:
                model = loaded
        # (only now, with nothing left to fail: the classifier takes this fit's state)
        self.config, self.result, self.model, self._labels = config, result, model, labels
        self._fit_channels_last = layout
        return self

    @staticmethod
    def _other_split(pair: Any, name: str, x: Any, train: ImageData, layout: bool | None) -> ImageData:
        """``test_data`` or ``validation_data``, ``(x, y)``, read as fit's own images and labels."""
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise ConfigError(f"{name} must be a pair (x_{name.split('_')[0]}, y_{name.split('_')[0]}), got "
                              + (f"a {type(pair).__name__} of {len(pair)}"
                                 if isinstance(pair, (tuple, list)) else f"a {type(pair).__name__}"))
        check_same_scale(x, pair[0], "fit's images (x)", f"{name}'s")
        # Its labels are the same kind of labels as y, matched by name: with classes given,
        # from_arrays reads integers as indices, but integer labels' names are their values.
        labels = _label_names(pair[1])
        if isinstance(labels, np.ndarray) and labels.ndim == 1:
            unknown = sorted(set(labels.astype(str).tolist()) - set(train.classes))
            if unknown:  # (from_arrays said "add them to classes": no setting of fit's)
                raise DataError(f"{name}'s labels {unknown[:5]} are not among the labels of y "
                                f"({list(train.classes)[:10]}); every class to score must be one fit trains")
        lo, hi = pixel_range(train.images)
        with warnings.catch_warnings():
            if train.images.dtype.kind == "f" and (lo < 0 or hi > 1):  # (said of fit's x already: once)
                warnings.filterwarnings("ignore", message="float images range from", category=UserWarning)
            other = from_arrays(pair[0], labels, classes=train.classes,
                                name=f"arrays-{name.split('_')[0]}", channels_last=layout)
        if other.shape[1:] != train.shape[1:]:
            # (accepted unsaid, while x of mixed sizes is refused: review A, 2026-12-07)
            warnings.warn(f"{name}'s images are {other.shape[1]}x{other.shape[2]} pixels, fit's x "
                          f"{train.shape[1]}x{train.shape[2]}: they are resized to the same network "
                          f"input, but scored at another scale than the network trains at; give {name} images "
                          "of x's size", UserWarning, stacklevel=user_stacklevel())
        return other

    @property
    def classes_(self) -> np.ndarray:
        """The classes in the order of :meth:`predict_proba`'s columns, as the labels given to
        ``fit`` (integers stay integers, strings strings)."""
        model = self._require_model()
        return self._labels if self._labels is not None and len(self._labels) == len(model.classes) \
            else np.asarray(model.classes)

    def _layout(self, channels_last: bool | None) -> bool | None:
        """``channels_last`` as given, else as the last successful fit read its images (False for
        a classifier made with ``channels_first=True``)."""
        if channels_last is not None:
            return channels_last
        if self._fit_channels_last is not None:
            return self._fit_channels_last
        return False if self.config.channels_first else None

    def _require_model(self) -> TrainedModel:
        if self.model is None:
            if self.result is None:
                raise ConfigError("this classifier has no trained model yet: call fit(x, y) first")
            why = ("it was made with final_training=False" if not self.config.final_training else
                   f"the search stopped before its final training ({self.result.stop_reason})")
            if self.config.final_training and (Path(self.config.run_dir) / "best" / "model.pt").exists():
                why += ("; best/model.pt holds the final model of an earlier best cell, not of "
                        f"{self.result.best_arch} (load_model loads it)")
            raise ConfigError(f"fit searched but trained no final model: {why}. Call fit again with "
                              "the same run_dir (and final_training=True): the search resumes and the "
                              "best cell is trained")
        return self.model

    def _decode(self, idx: np.ndarray) -> np.ndarray:
        return self.classes_[idx]

    def predict(self, x: Any, channels_last: bool | None = None) -> np.ndarray:
        """Predicted labels, of the same kind as the labels given to ``fit``."""
        return self._decode(self._require_model().predict_index(x, self._layout(channels_last)))

    def predict_proba(self, x: Any, channels_last: bool | None = None) -> np.ndarray:
        """Class probabilities ``(N, num_classes)``, columns in the order of :attr:`classes_`."""
        return self._require_model().predict_proba(x, self._layout(channels_last))

    def evaluate(self, x: Any, y: Any, channels_last: bool | None = None) -> dict[str, float]:
        """Accuracy, balanced accuracy, macro-F1 and loss on ``(x, y)``."""
        model = self._require_model()
        if _no_images(x):  # ("pass at least one image per class" said it less plainly)
            raise DataError("evaluate needs images to score: x holds none")
        y = _label_array(y)
        if y.ndim != 1:  # (one-hot rows, say: encode_labels says how to give them)
            encode_labels(y)
        if self._labels is not None:  # map the labels given to fit onto class indices
            unknown = sorted(set(np.unique(y).tolist()) - set(self._labels.tolist()), key=str)
            if unknown:
                raise DataError(f"labels {unknown[:5]} were not among the classes seen in fit "
                                f"({self._labels.tolist()[:10]}); evaluate on the same label set")
            y = np.searchsorted(self._labels, y)
        layout = self._layout(channels_last)
        tx = model.preprocess(x, channels_last=layout)  # (the images as given: its checks and warnings see them)
        labels, _ = encode_labels(y, n=len(tx), classes=tuple(model.classes))  # (the images are read once)
        return _evaluate(model.model, tx, torch.tensor(labels, dtype=torch.int64), num_classes=len(model.classes),
                         device=model.device)

    def export(self, path: str | os.PathLike[str], format: str | None = None) -> Path:
        """Save the model (see :meth:`TrainedModel.export`)."""
        return self._require_model().export(path, format)


@contextlib.contextmanager
def _progress_lines(progress: bool) -> Iterator[None]:
    """With ``progress`` and logging left unconfigured, the search's lines (a line per trial where
    stderr is no terminal for a bar: a notebook, a script under nohup) go to stderr as on the
    command line; they went to a logger with no handler, and a fit printed nothing for minutes
    (a review, 2026-12-07). Logging the program configured itself is left as it is."""
    logger = logging.getLogger("budgetnas")
    if not progress or logger.hasHandlers():
        yield
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


# Command-line flags whose setting has another name in Python (they stayed flags in the API's
# messages: "--no-final", "--objective": a review, 2026-12-08).
_API_WORDS = {"data": "fit's x, y", "val_fraction": "fit's validation_split", "no_final": "final_training=False",
              "no_hflip": "hflip=False", "objective": "objectives", "max_gpu_hours": "max_device_hours",
              "max_failures": "max_consecutive_failures"}


def _in_api_words(message: str) -> str:
    """A search message for Python users: ``--run-dir`` -> ``run_dir``, ``--data`` -> fit's x, y
    (flags that are no setting of the classifier stay as they are)."""
    import dataclasses
    import re

    fields = {f.name for f in dataclasses.fields(SearchConfig)}

    def word(m: re.Match[str]) -> str:
        name = m.group(1).replace("-", "_")
        if name in _API_WORDS:
            return _API_WORDS[name]
        return name if name in fields else m.group(0)

    message = re.sub(r"(?<![\w-])--([A-Za-z][A-Za-z0-9-]*)", word, message)
    return re.sub(r"(?<![\w-])val_fraction(?=: )", "validation_split", message)  # (a resume's list of changes)


def _label_array(y: Any) -> np.ndarray:
    """``y`` as fit and evaluate take labels: an array, a column as ``(N,)``. A list mixing strings
    and integers is refused first, as from_arrays refuses it: np.asarray made every label a string
    before that check ran, and predict answered the integer 0 as the string '0' (a review,
    2026-12-07)."""
    return label_column(np.asarray(refuse_mixed_labels(_to_numpy(y))))


def _label_names(y: Any) -> Any:
    """Labels as the class names ``fit`` gives them (integer labels ``3`` -> ``'3'``), so that they
    are matched by name against a classifier's classes, never read as class indices."""
    arr = _to_numpy(y)
    if isinstance(arr, (list, tuple)) and len(arr):
        arr = np.asarray(arr)
    if isinstance(arr, np.ndarray):
        arr = label_column(arr)
    if not isinstance(arr, np.ndarray) or arr.ndim != 1 or arr.dtype.kind not in "iubfOS":
        return y  # from_arrays says what is wrong with it
    values = _label_values(arr)
    return values.astype(str) if values.dtype.kind in "iu" else values


def load_model(path: str | os.PathLike[str], device: str = "cpu") -> TrainedModel:
    """Load a final model saved by a search (a run directory or its ``best/model.pt``). Where a
    later session (``--no-final`` / ``final_training=False``) found a better cell than the one
    ``best/`` holds, it warns so: the model loaded is the older cell's."""
    model = TrainedModel.load(path, device=device)
    note = overtaken_in(Path(path))
    if note is not None:  # (only `show` and `export` said so; load_model gave the older model unsaid)
        warnings.warn(note.removeprefix("note: "), UserWarning, stacklevel=2)
    return model


def overtaken_in(run_dir: Path) -> str | None:
    """Where ``run_dir`` is a run directory whose final model a later trial overtook, or that run's
    ``best/model.pt`` (or ``best/``), what `show` says of it; else None (another model file, or a run
    that cannot be read: the model loaded, which is what the caller asked for). (The run's own
    best/model.pt loaded unwarned, the README's words notwithstanding: a review, 2026-12-08.)"""
    from budgetnas.report.summary import overtaken_note
    from budgetnas.search import open_study, saved_config

    inside = run_dir.name == "model.pt" and run_dir.parent.name == "best" or \
        run_dir.name == "best" and (run_dir / "model.pt").is_file()
    if inside:
        run_dir = run_dir.parent.parent if run_dir.name == "model.pt" else run_dir.parent
    if not (run_dir / "config.json").is_file():
        return None
    try:
        config = saved_config(run_dir)
        if inside and config.storage is not None:
            return None  # (a model file is not worth a wait on a shared study's server it may not reach)
        return overtaken_note(open_study(run_dir, storage=config.storage, study_name=config.study_name), config)
    except Exception:  # noqa: BLE001 (a note only: never what stops loading a model that loaded)
        return None


# What an export's file suffix says: its format, or the formats it may hold (.pt is PyTorch's
# suffix for TorchScript files and for saved weights alike).
SUFFIX_FORMATS = {".onnx": ("onnx",), ".ts": ("torchscript",), ".torchscript": ("torchscript",),
                  ".pt": ("torchscript", "state"), ".pth": ("torchscript", "state")}
EXPORT_FORMATS = ("torchscript", "state", "onnx")


def export_format(path: Path, format: str | None) -> str:
    """The export format asked for (any case), or the one a path's suffix picks (``.onnx``:
    onnx; ``.ts``, ``.pt``, ``.pth``: torchscript). A suffix that says another format than the one
    asked for, or no known suffix without a format, is refused: a TorchScript file named
    ``.onnx`` or ``.tflite`` would only fail where it is deployed."""
    suffix = path.suffix.lower()
    known = SUFFIX_FORMATS.get(suffix)
    if format is None:
        if known is None:
            raise ConfigError(
                f"cannot tell the export format from the name {path.name!r}: end it in .onnx (ONNX) or .ts / .pt "
                "(TorchScript), or give the format (torchscript, onnx, or state: a file load_model reads)")
        return known[0]
    if not isinstance(format, str) or format.lower() not in EXPORT_FORMATS:
        raise ConfigError(f"unknown export format {format!r}; use torchscript, state or onnx")
    format = format.lower()
    if known is not None and format not in known:
        raise ConfigError(f"the name {path.name!r} says {' or '.join(known)} but the format asked for is {format}: "
                          f"name it {path.with_suffix('.onnx' if format == 'onnx' else '.pt').name!r}, or leave "
                          "the format out")
    return format


class _ShapeChecked(torch.nn.Module):
    """The traced network behind a shape check, for TorchScript exports: global pooling lets the
    network run on any image size, so images of another size (not resized as ``budgetnas.json``
    says) gave confident, wrong answers instead of an error. (An ONNX export's input has fixed
    channels, height and width, which ONNX Runtime checks.)"""

    def __init__(self, net: torch.nn.Module, channels: int, resolution: int) -> None:
        super().__init__()
        self.net = net
        self.channels = channels
        self.resolution = resolution

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if (images.dim() != 4 or images.size(1) != self.channels or images.size(2) != self.resolution
                or images.size(3) != self.resolution):
            raise ValueError("budgetnas: this network takes float32 images of shape (N, {}, {}, {}), resized and "
                             "normalised as budgetnas.json inside this file says; got shape {}".format(
                                 self.channels, self.resolution, self.resolution, images.shape))
        if images.dtype != torch.float32:  # (raw uint8 pixels met "expected scalar type Byte but found Float")
            raise ValueError("budgetnas: this network takes float32 images, resized and normalised as "
                             "budgetnas.json inside this file says; got images of another dtype (raw pixels, "
                             "float64 or half precision): normalise them, then .float()")
        return self.net(images)


def _export_onnx(net: torch.nn.Module, example: torch.Tensor, out: Path, spec: str) -> None:
    try:
        torch.onnx.export(net, (example,), str(out), input_names=["images"], output_names=["logits"],
                          dynamic_axes={"images": {0: "batch"}}, dynamo=False, opset_version=ONNX_OPSET)
    except (ImportError, getattr(torch.onnx, "OnnxExporterError", ImportError)) as e:
        raise ConfigError(f"ONNX export failed ({first_line(e)}); it needs the onnx package: "
                          "pip install 'budgetnas[export]' (or: pip install onnx)") from None
    import onnx  # (the export above needs it too)

    proto = onnx.load(str(out))  # what the network takes, as inside a TorchScript export
    onnx.helper.set_model_props(proto, {"budgetnas.json": spec})
    onnx.save(proto, str(out))


def _other_kind_of_file(path: Path) -> str | None:
    """What a file that is no PyTorch file is, by its first bytes ("a PNG image"...): a budgetnas
    model file is a zip archive (or, saved by an old PyTorch, a pickle, which starts with 0x80)."""
    try:
        with open(path, "rb") as f:
            head = f.read(65)
    except OSError:
        return None  # (torch.load says why it cannot be read)
    if len(head) == 65 and head[64:] == b"\n" and all(c in b"0123456789abcdef" for c in head[:64]):
        # (our own checkpoint format: "not a PyTorch file" was news to a user who found it in the run)
        return ("a budgetnas training checkpoint (an unfinished or kept trial's state, which a rerun "
                "resumes), not a final model")
    for magic, what in ((b"\x89PNG", "a PNG image"), (b"\xff\xd8\xff", "a JPEG image"), (b"GIF8", "a GIF image"),
                        (b"SQLite format 3", "an SQLite database (a run's study.db?)"), (b"PK", None),
                        (b"\x80", None)):
        if head.startswith(magic):
            return what
    if not head:
        return "empty"
    return "not a PyTorch file (it starts with neither a zip archive's nor a pickle's bytes)"


def _check_replaceable(out: Path) -> None:
    """Refuse to replace an existing file at ``out`` unless it is an earlier export or model file
    (re-exporting to one name is common) outside a run's ``best/`` and ``checkpoints/``. (Any
    file was replaced: `export RUN RUN/study.db --format state` destroyed the run's study, exit
    status 0: review G, 2026-12-07.)"""
    if not out.exists():
        return
    real = out.resolve()
    run = next((d for d in real.parents if (d / "study.db").is_file()
                or ((d / "config.json").is_file() and (d / "best").is_dir())), None)
    kept = real.relative_to(run).parts[0] if run is not None else None
    if kept in ("best", "checkpoints"):
        raise ConfigError(f"cannot export to {out}: it is in the run {run}'s {kept}/ "
                          "folder, whose files the run keeps (its final models, checkpoints); give a path outside it")
    if not _is_export(real):
        raise ConfigError(f"cannot export to {out}: the file exists and is not a budgetnas export or model, so "
                          "the export would destroy it; give another path, or delete it first if you mean to "
                          "replace it")


def _is_export(path: Path) -> bool:
    """Whether ``path`` is what :meth:`TrainedModel.export` writes, by its structure: a TorchScript
    zip holding ``extra/budgetnas.json``, a torch.save zip of a budgetnas model, or an ONNX file
    with the ``budgetnas.json`` metadata key (at its end, after the graph)."""
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as z:
                names = z.namelist()
                if any(n.endswith("extra/budgetnas.json") for n in names):
                    return True
                pickled = next((n for n in names if n.endswith("/data.pkl")), None)
                return pickled is not None and b"budgetnas-model" in z.read(pickled)
        size = path.stat().st_size
        with open(path, "rb") as f:
            head = f.read(64)
            f.seek(max(0, size - (1 << 20)))
            tail = f.read()
        return _onnx_head(head) and b"budgetnas.json" in tail
    except (OSError, zipfile.BadZipFile):
        return False


def _within(x: Any, pixel_range: tuple[float, float]) -> bool:
    """Whether float images ``x`` lie in the range the training images had (with 1 % slack): then
    from_arrays' warning that floats outside [0, 1] are read as they are is no news. Negative
    pixels to a model trained on none (already normalised images, say) are not."""
    arr = _to_numpy(x)
    if not isinstance(arr, np.ndarray) or arr.dtype.kind != "f" or not arr.size:
        return True
    lo, hi = pixel_range
    low = float(np.nanmin(arr))
    if lo >= 0 > low:  # (negative pixels, where the training images had none)
        return False
    slack = 0.01 * max(hi - lo, 1e-12)
    return bool(low >= lo - slack and np.nanmax(arr) <= hi + slack)


def _distorts(size: tuple[int, int], trained: tuple[int, int], resolution: int) -> bool:
    """Whether images of ``size`` reach the network otherwise than the training images did: a
    changed aspect ratio, or enlarged to the resolution where the training images were not. (Images
    larger than the training ones, of their shape, are shrunk as they were: an image folder is
    stored shrunk while read, so its own files are larger than the size the model records.)"""
    return aspect_changes(size, trained) or (min(size) < resolution <= min(trained)) or min(size) < min(trained) / 2


def _pil_sizes(x: Any) -> list[tuple[int, int]]:
    """The sizes of a list of Pillow images ([] for anything else)."""
    from PIL import Image

    if isinstance(x, (list, tuple)) and x and all(isinstance(im, Image.Image) for im in x):
        return [im.size for im in x]
    return []


def _pil_as_arrays(x: Any, in_channels: int) -> Any:
    """Pillow images (one, or a list) as (N, C, H, W), read as fit reads them (data's _stack_pil:
    as image files are read), converted to the model's 1 or 3 channels; anything else as given."""
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover - Pillow is a dependency
        return x
    from budgetnas.data._arrays import _stack_pil

    want = {1: "L", 3: "RGB"}.get(in_channels)
    if isinstance(x, Image.Image):
        return _stack_pil([x], want)
    if isinstance(x, (list, tuple)) and x and all(isinstance(im, Image.Image) for im in x):
        return _stack_pil(x, want)
    return x


def _finished_trials(db: Path) -> int | None:
    """How many trials of the study file ``db`` scored a cell a final training can take (complete,
    or a cache hit of one: not pruned, nor rejected over the size limit, which Optuna holds complete
    too: a review, 2026-12-08); None when it cannot be read (then nothing is said of them)."""
    import sqlite3

    try:
        with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)) as con:
            return int(con.execute(
                "select count(*) from trials t where t.state = 'COMPLETE' and coalesce((select a.value_json "
                "from trial_user_attributes a where a.trial_id = t.trial_id and a.key = 'status'), '\"complete\"') "
                "in ('\"complete\"', '\"cached\"')").fetchone()[0])
    except sqlite3.Error:
        return None


def _is_onnx(path: Path) -> bool:
    """An ONNX file (a protobuf ModelProto: field 1, ir_version, then the producer's name)."""
    if path.suffix.lower() == ".onnx":
        return True
    try:
        with open(path, "rb") as f:
            head = f.read(64)
    except OSError:
        return False  # (torch.load says why it cannot be read)
    return _onnx_head(head)


def _onnx_head(head: bytes) -> bool:
    """Whether a file's first 64 bytes open an ONNX ModelProto written by PyTorch (field 1,
    ir_version, then the producer's name)."""
    return head[:1] == b"\x08" and b"pytorch" in head


def _no_images(x: Any) -> bool:
    """An empty batch to predict on: an empty list, or an array of 0 images of any layout."""
    if isinstance(x, (list, tuple)):
        return len(x) == 0
    arr = _to_numpy(x)
    return isinstance(arr, np.ndarray) and arr.ndim in (3, 4) and arr.shape[0] == 0
