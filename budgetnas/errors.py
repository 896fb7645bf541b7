"""Project exceptions (layer 0).

Every mistake a user can make raises a :class:`BudgetNASError` (or a subclass) whose message says
what was wrong and what to do about it. The CLI prints these without a traceback.
"""

from __future__ import annotations


def first_line(e: BaseException) -> str:
    """The first line of an exception's message (its type's name when the message is empty): what
    a one-line error or warning quotes of an error raised by a library."""
    return (str(e).strip().splitlines() or [type(e).__name__])[0]


def user_stacklevel() -> int:
    """The ``stacklevel`` for ``warnings.warn``, called in the function that warns, that names the
    first caller outside budgetnas: the user's line, however deep in budgetnas the warning is
    raised (``ImageClassifier.predict`` reaches the preprocessing's warnings four calls down; a
    fixed stacklevel named a line of budgetnas.api: a review, 2026-12-07)."""
    import os
    import sys

    package = os.path.dirname(os.path.abspath(__file__)) + os.sep
    level, frame = 1, sys._getframe(1)
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(package):
        frame, level = frame.f_back, level + 1
    return level


class BudgetNASError(Exception):
    """Base class of every error a user can cause and fix."""


class DataError(BudgetNASError, ValueError):
    """Images, labels, folders or data files that cannot be used as given."""


class ArchitectureError(BudgetNASError, ValueError):
    """An architecture string, op name or space argument that is not valid."""


class ConfigError(BudgetNASError, ValueError):
    """A search, training or budget setting that is out of range or inconsistent."""


class BudgetError(BudgetNASError):
    """The budget cannot pay for what was asked (e.g. not even one trial)."""


class ResumeError(BudgetNASError):
    """A run directory that cannot be resumed with the given data or configuration."""


class RunDirError(BudgetNASError):
    """A run directory that cannot be created, written or read."""


class TrialFailed(BudgetNASError):
    """A candidate could not be trained (NaN loss, out of memory, build error).

    The search records the reason on the trial and goes on.
    """


def plural(n: int, word: str) -> str:
    """``"1 trial"``, ``"2 trials"``: a count and its noun, for messages a person reads."""
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def seconds_text(s: float) -> str:
    """Seconds as a person reads them: ``"40 ms"``, ``"0.6 s"``, ``"95 s"``, ``"14.6 min"``, ``"3.2 h"``."""
    if s < 0.0995:
        return f"{s * 1000:.2g} ms" if s < 0.0095 else f"{s * 1000:.0f} ms"
    if s < 10:
        return f"{s:.1f} s"
    if s < 120:
        return f"{s:.0f} s"
    if round(s / 60, 1) < 120:  # (7199 s read "120.0 min")
        return f"{s / 60:.1f} min"
    return f"{s / 3600:.1f} h"


def check_new_name(kind: str, name: object, registry: dict[str, object], factory: object) -> None:
    """Refuse registering ``factory`` as ``kind`` ``name`` where the name is no plain word (it is
    typed on the command line) or names another factory already: a plugin's "tpe" replaced
    Optuna's TPE, unsaid, and a name of 3 broke list_strategies (a review, 2026-12-08). The same
    factory again, or its definition run again (a module reloaded), is no conflict."""
    import re

    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", name):
        raise ConfigError(f"a {kind} name must be a word of letters, digits, '_', '.' or '-' (it is given on "
                          f"the command line), got {name!r}")
    if name in registry and not _same_factory(registry[name], factory):
        raise ConfigError(f"a {kind} named {name!r} is registered already; register yours under another name")


def _same_factory(old: object, new: object) -> bool:
    """The same factory, or its definition run again (a module reloaded, a notebook cell re-run:
    refused as a conflict at first, a plugin review found, 2026-12-08): the one registered anew."""
    return old is new or (getattr(old, "__module__", None), getattr(old, "__qualname__", None)) == (
        getattr(new, "__module__", 0), getattr(new, "__qualname__", 0))

