"""Shared by the benchmark scripts: which machine ran them, and appending to RESULTS.md."""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any

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


def add_network_args(ap: Any, resolution: int, resolution_help: str) -> None:
    """The NB201 network options of the per-cell benchmarks (``--resolution``, ``--in-channels``,
    ``-C``, ``-N``), and where they run and report (``--device``, ``--threads``, ``--out``)."""
    ap.add_argument("--resolution", type=int, default=resolution, help=resolution_help)
    ap.add_argument("--in-channels", type=int, default=1)
    ap.add_argument("-C", type=int, default=16)
    ap.add_argument("-N", type=int, default=5)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--threads", type=int, default=None, help="torch threads on the CPU")
    ap.add_argument("--out", default=str(Path(__file__).parent / "RESULTS.md"), help="'-' for none")


def run_line(script: str, argv: list[str] | None, dev: Any) -> str:
    """``<date>, <device>, torch <version>. `<command>``` for a results section: when, where and
    how ``script`` ran (``argv``: its arguments, None for the command line's)."""
    import sys
    from datetime import datetime, timezone

    import torch

    device = torch.cuda.get_device_name(dev) if dev.type == "cuda" else cpu_name(
        f", {torch.get_num_threads()} torch threads")
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    cmd = "python " + " ".join([f"benchmarks/{Path(script).name}", *(argv if argv is not None else sys.argv[1:])])
    return f"{when}, {device}, torch {torch.__version__}. `{cmd}`"


def network_task(args: Any, seed: int) -> tuple[Any, Any, Any, Any]:
    """What the per-cell benchmarks measure on, from :func:`add_network_args`' options: the device
    (torch threads set on the CPU), the NB201 space, and random images with 10-class labels."""
    import torch

    from budgetnas.spaces import NB201Space
    from budgetnas.train import resolve_device

    if args.threads:
        torch.set_num_threads(args.threads)
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(args.images, args.in_channels, args.resolution, args.resolution, generator=gen)
    y = torch.randint(0, 10, (args.images,), generator=gen)
    return resolve_device(args.device), NB201Space(C=args.C, N=args.N), x, y


def publish(section: str, out: str) -> None:
    """Print a results section, and append it to ``out`` unless that is ``-``."""
    print(section)
    if out != "-":
        append_results(Path(out), section)


def timed_main(main: Any) -> None:
    """Run a benchmark's ``main``, say on stderr how long it took, and exit with its status."""
    import sys
    import time

    started = time.perf_counter()
    code = main()
    print(f"({time.perf_counter() - started:.0f} s)", file=sys.stderr)
    raise SystemExit(code)
