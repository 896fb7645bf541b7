"""Crash-safe training checkpoints: one file, written atomically, verified by checksum.

The file is ``<sha256 hex of the payload>\\n<payload>``, where the payload is a ``torch.save`` of
plain tensors and numbers (loaded with ``weights_only=True``, so a checkpoint cannot run code).
It is written to a temporary file, flushed to disk and renamed over the old one, so a kill at any
moment leaves either the old or the new checkpoint. A file whose checksum does not match (half
written, truncated, bit rot, hand-edited) is reported with a warning and ignored, never loaded.
"""

from __future__ import annotations

import hashlib
import io
import os
import warnings
from pathlib import Path
from typing import Any

import torch

from budgetnas._files import write_atomic
from budgetnas.errors import user_stacklevel


class Checkpointer:
    """Saves and loads one training run's state at ``path``.

    ``interval`` is the most seconds of training between saves inside an epoch (None: save only
    at epoch ends, which is cheap for the small networks a search trains).
    """

    def __init__(self, path: str | os.PathLike[str], interval: float | None = None) -> None:
        self.path = Path(path)
        self.interval = interval

    def save(self, state: dict[str, Any]) -> None:
        buf = io.BytesIO()
        torch.save(state, buf)
        payload = buf.getvalue()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256(payload).hexdigest().encode() + b"\n"

        def write(f: Any) -> None:  # (the checksum line, then the state: two writes, no joined copy)
            f.write(digest)
            f.write(payload)

        write_atomic(self.path, write)

    def load(self) -> dict[str, Any] | None:
        """The saved state, or None when there is none or it fails its checksum (with a warning)."""
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return None
        digest, _, payload = raw.partition(b"\n")
        if len(digest) != 64 or hashlib.sha256(payload).hexdigest().encode() != digest:
            warnings.warn(f"checkpoint {self.path} is corrupt or half-written (checksum mismatch); "
                          "ignoring it and training from the start", stacklevel=user_stacklevel())
            return None
        try:
            return torch.load(io.BytesIO(payload), map_location="cpu", weights_only=True)
        except Exception as e:  # a valid checksum over something torch cannot read
            warnings.warn(f"checkpoint {self.path} cannot be read ({e}); ignoring it", stacklevel=user_stacklevel())
            return None

    def delete(self) -> None:
        self.path.unlink(missing_ok=True)
