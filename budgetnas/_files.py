"""Files written whole or not at all (the bottom layer: no budgetnas imports).

A run directory's small files (config.json, summary.json, best/metrics.json...) were written in
place: a process killed mid-write (a preempted spot instance) left config.json empty, and every
later session and ``budgetnas show`` refused the run until it was mended by hand (a kill-and-resume
review, 2026-12-07). Written to a temporary file beside it and renamed over it, a file is always
the old one or the new one.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

TMP_MARK = ".tmp"  # temporary files are named <name>.tmp<pid>: see stale_temporaries


def write_text_atomic(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file in the same folder, then rename it.

    Example::

        >>> import tempfile
        >>> p = Path(tempfile.mkdtemp()) / "a.json"
        >>> write_text_atomic(p, "{}"); p.read_text()
        '{}'
    """
    write_atomic(path, lambda f: f.write(text), mode="w")


def write_atomic(path: str | os.PathLike[str], write: Callable[[IO[Any]], object], *, mode: str = "wb") -> None:
    """Call ``write`` with a file open (``mode``) on a temporary file beside ``path``, then flush it
    to the disk and rename it over ``path``; on any failure the temporary file is removed."""
    path = Path(path)
    tmp = path.with_name(f"{path.name}{TMP_MARK}{os.getpid()}")
    try:
        with open(tmp, mode) as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def link_or_copy_atomic(src: Path, dst: Path) -> None:
    """``dst`` becomes ``src``'s file, whole or not at all: a hard link (a copy where the file
    system has none) made under a temporary name and renamed over ``dst``."""
    tmp = dst.with_name(f"{dst.name}{TMP_MARK}{os.getpid()}")
    tmp.unlink(missing_ok=True)
    try:
        os.link(src, tmp)
    except OSError:  # (no hard links here: a copy)
        shutil.copy2(src, tmp)
    os.replace(tmp, dst)


def stale_temporaries(folder: Path, *, this_process_too: bool = False) -> list[Path]:
    """The temporary files a killed process left in ``folder`` (``<name>.tmp<pid>``) whose process
    is gone from this machine; only for a folder no other machine writes to. ``this_process_too``:
    and this process's own, for a caller that knows none of its writes is under way (a Python
    session whose earlier call was interrupted keeps its pid)."""
    out = []
    for path in folder.glob(f"*{TMP_MARK}*") if folder.is_dir() else []:
        pid = path.name.rpartition(TMP_MARK)[2]
        if pid.isdigit() and path.is_file() and (
                not _alive(int(pid)) or (this_process_too and int(pid) == os.getpid())):
            out.append(path)
    return out


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
