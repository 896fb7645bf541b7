"""The trainer tests' data: scikit-learn's 8x8 digits as normalised tensors (600 train, 300 val)."""

from __future__ import annotations

import numpy as np
import pytest
import torch


@pytest.fixture(scope="session")
def tensors(digits: tuple[np.ndarray, np.ndarray]) -> tuple[torch.Tensor, ...]:
    x, y = digits
    xt = torch.tensor(x[:, None], dtype=torch.float32) / 255
    xt = (xt - xt.mean()) / xt.std()
    yt = torch.tensor(y)
    return xt[:600], yt[:600], xt[600:900], yt[600:900]
