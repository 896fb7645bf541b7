"""Shared by the benchmark scripts: which machine ran them, and appending to RESULTS.md."""

from __future__ import annotations

import os
import platform
from pathlib import Path

HEADER = """# Benchmark results

Measured numbers only: every section below was appended by a script in `benchmarks/` from a run on
the device it names, with the date (UTC), the torch version and the exact command. Nothing here is
extrapolated or copied from papers, and a target that was not reached says "not met". The one
exception is labelled as such: the roofline section is arithmetic (FLOPs and bytes counted from
the built network), the floor that the measurements are to be compared with.
"""


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (or what platform knows)."""
    model = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return model


def cpu_name(extra: str = "") -> str:
    """``CPU: <model> (<n> cores<extra>)`` for a results section."""
    return f"CPU: {cpu_model()} ({os.cpu_count()} cores{extra})"


def append_results(out: Path, section: str, header: str = HEADER) -> None:
    """Append ``section`` to the results file, creating it with ``header`` if missing."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if not out.exists():
        out.write_text(header)
    with out.open("a") as fh:
        fh.write("\n" + section.rstrip() + "\n")
