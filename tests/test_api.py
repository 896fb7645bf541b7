"""The AutoKeras-style API on real tiny data: fit, predict, evaluate, export, resume."""

from __future__ import annotations

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
