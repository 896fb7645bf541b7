"""The AutoKeras-style API on real tiny data: fit, predict, evaluate, export, resume."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from budgetnas import ImageClassifier, load_model
from budgetnas.errors import ConfigError, DataError

FAST = dict(C=4, N=1, final_C=4, final_N=1, epochs=1, final_epochs=2, strategy="random", progress=False)


def test_fit_predict_evaluate_export(tmp_path: Path, digits) -> None:
    x, y = digits
    names = np.array(["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"])
    labels = names[y]
    clf = ImageClassifier(run_dir=tmp_path / "run", max_trials=2, **FAST)
    clf.fit(x[:600, :, :, None], labels[:600])  # (N, H, W, 1) channels-last, string labels
    pred = clf.predict(x[1500:1510, :, :, None])
    assert pred.dtype.kind == "U" and set(pred) <= set(names)
    scores = clf.evaluate(x[1500:, :, :, None], labels[1500:])
    assert set(scores) >= {"accuracy", "balanced_accuracy", "macro_f1", "loss"}
    assert scores["accuracy"] == pytest.approx((clf.predict(x[1500:, :, :, None]) == labels[1500:]).mean())
    proba = clf.predict_proba(x[:4, :, :, None])
    assert proba.shape == (4, 10) and np.allclose(proba.sum(1), 1, atol=1e-5)

    ts = clf.export(tmp_path / "model.ts", format="torchscript")
    scripted = torch.jit.load(str(ts))
    model = load_model(tmp_path / "run")
    xt = model.preprocess(x[:4, :, :, None])
    assert torch.allclose(scripted(xt), model.model(xt), atol=1e-5)
    state = clf.export(tmp_path / "model.pt", format="state")
    assert (load_model(state).predict_index(x[:20]) == model.predict_index(x[:20])).all()
    # A loaded model names its classes as fit was given them: the same labels as the classifier.
    assert (model.predict(x[1500:1510, :, :, None]) == pred).all()
    with pytest.raises(ConfigError, match="unknown export format"):
        clf.export(tmp_path / "m.x", format="tflite")
    with pytest.raises(DataError, match="channels"):
        clf.predict(np.zeros((2, 8, 8, 3), np.uint8))


def test_integer_labels_come_back_as_given_and_fit_resumes(tmp_path: Path, digits) -> None:
    x, y = digits
    keep = np.isin(y, [3, 7])
    clf = ImageClassifier(run_dir=tmp_path / "run", max_trials=1, **FAST)
    clf.fit(x[keep][:200], y[keep][:200])
    assert set(clf.predict(x[keep][200:260])) <= {3, 7}
    loaded = load_model(tmp_path / "run")  # without the classifier the integer labels are names
    assert set(loaded.predict(x[keep][200:260])) <= {"3", "7"}
    assert (loaded.predict(x[keep][200:260]).astype(int) == clf.predict(x[keep][200:260])).all()
    scores = clf.evaluate(x[keep][200:260], y[keep][200:260])  # labels 3 and 7, not 0 and 1
    assert scores["accuracy"] == pytest.approx((clf.predict(x[keep][200:260]) == y[keep][200:260]).mean())
    with pytest.raises(DataError, match="not among the classes"):
        clf.evaluate(x[:5], np.array([3, 7, 3, 9, 7]))
    again = ImageClassifier(run_dir=tmp_path / "run", max_trials=2, **FAST).fit(x[keep][:200], y[keep][:200])
    assert again.result.spent.trials == 2


def test_api_mistakes(tmp_path: Path, digits) -> None:
    x, y = digits
    with pytest.raises(ConfigError, match="unknown arguments"):
        ImageClassifier(max_trails=3)
    clf = ImageClassifier(run_dir=tmp_path / "r", max_trials=1, **FAST)
    with pytest.raises(ConfigError, match="call fit"):
        clf.predict(x[:2])
    with pytest.raises(DataError, match="labels"):
        clf.fit(x[:100], y[:99])
    with pytest.raises(DataError, match="single class"):
        clf.fit(x[:10], np.zeros(10, int))
    bad = x[:100].astype(np.float32)
    bad[3, 2, 2] = np.nan
    with pytest.raises(DataError, match="NaN"):
        clf.fit(bad, y[:100])
    with pytest.raises(DataError, match="mixed sizes"):
        clf.fit([np.zeros((8, 8)), np.zeros((9, 9))], [0, 1])
    with pytest.raises(DataError, match="dtype"):
        clf.fit(np.array([["a"] * 8] * 8 * 4).reshape(4, 8, 8), [0, 1, 0, 1])


def test_api_arguments_as_the_command_line_spells_them(tmp_path: Path) -> None:
    clf = ImageClassifier(run_dir=tmp_path / "r", max_time="1m30s", objectives="accuracy,params", **FAST)
    assert clf.config.max_time == 90.0 and clf.config.objectives == ["accuracy", "params"]
    for bad, match in ((dict(max_time="20 minutes"), "cannot read the duration"),
                       (dict(max_cost="2"), "max_cost must be a number"),
                       (dict(seed=-1), "seed must be an integer from 0"),
                       (dict(seed=2 ** 32), "seed must be an integer from 0"),
                       (dict(device="mps"), "not supported")):
        with pytest.raises(ConfigError, match=match):
            ImageClassifier(run_dir=tmp_path / "r", **{**FAST, **bad}).fit(np.zeros((20, 8, 8)), [0, 1] * 10)


def test_exports_loads_and_predictions_say_what_is_wrong(tmp_path: Path, digits) -> None:
    x, y = digits
    clf = ImageClassifier(run_dir=tmp_path / "run", max_trials=1, **FAST).fit(x[:300], y[:300])
    with pytest.raises(ConfigError, match="the folder .*nodir does not exist"):
        clf.export(tmp_path / "nodir" / "m.ts")
    with pytest.raises(ConfigError, match="it is a directory"):
        clf.export(tmp_path)
    ts = clf.export(tmp_path / "m.ts")
    # The TorchScript file is the bare network; what it takes is saved inside it.
    extra = {"budgetnas.json": ""}
    net = torch.jit.load(str(ts), _extra_files=extra)
    spec = json.loads(extra["budgetnas.json"])
    assert spec["classes"] == list(clf.model.classes) and spec["resolution"] == clf.model.resolution
    with torch.no_grad():
        logits = net(clf.model.preprocess(x[:8]))
    assert (np.asarray(clf.model.classes)[logits.argmax(1).numpy()] == clf.model.predict(x[:8])).all()
    with pytest.raises(DataError, match="is a TorchScript export, not a budgetnas model file: load that with torch.jit.load"):
        load_model(ts)
    (tmp_path / "junk.pt").write_text("not a model")
    with pytest.raises(DataError, match="junk.pt is not a budgetnas model file"):
        load_model(tmp_path / "junk.pt")
    model = load_model(tmp_path / "run")
    # Other sizes are resized as in training, with a warning (an aspect ratio change distorts).
    with pytest.warns(UserWarning, match="16x32 but the model was trained on 8x8.*aspect ratio"):
        model.predict(np.zeros((2, 16, 32), np.uint8))
    # Channels-first arrays can say so, here as on fit's arrays.
    chw = x[:5, None].repeat(1, 1)  # (5, 1, 8, 8)
    assert (model.predict(chw, channels_last=False) == model.predict(x[:5])).all()
    assert (clf.predict(chw, channels_last=False) == clf.predict(x[:5])).all()
    # Pixels on another scale than training (0..255 floats for a uint8-trained model) warn.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model.predict(x[:20])
    with pytest.warns(UserWarning, match="look scaled differently from the training images"):
        model.predict(x[:20].astype(np.float32))  # 0..255 floats: read as they are, not / 255


def test_a_fit_without_final_training_says_so_when_asked_to_predict(tmp_path: Path, digits) -> None:
    x, y = digits
    clf = ImageClassifier(run_dir=tmp_path / "run", max_trials=1, final_training=False, **FAST)
    clf.fit(x[:200], y[:200])
    with pytest.raises(ConfigError, match="trained no final model: it was made with final_training=False"):
        clf.predict(x[:2])
    with pytest.raises(DataError, match="the run has no final model"):
        load_model(tmp_path / "run")
