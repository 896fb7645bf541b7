"""The README is the first thing a user runs: its examples must stay true.

Every ``budgetnas ...`` command line in it must parse with the real command-line parser (no
renamed or missing flag), and the Python quick start must run as written, on the real digits data.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from budgetnas.cli import build_parser

README = Path(__file__).resolve().parents[1] / "README.md"


def _blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", README.read_text(), flags=re.S)


def _command_lines() -> list[str]:
    lines = []
    for block in _blocks("bash"):
        for line in block.splitlines():
            for part in line.split("&&"):
                part = part.split(" #")[0].strip()
                if part.startswith("budgetnas "):
                    lines.append(part)
    return lines


def test_the_readme_has_its_commands() -> None:
    lines = _command_lines()
    assert len(lines) >= 10, lines
    assert any(line.startswith("budgetnas search --data digits") for line in lines)  # the demo


@pytest.mark.parametrize("line", _command_lines())
def test_every_readme_command_parses(line: str) -> None:
    # Shell variables stand for paths and URLs the user supplies.
    argv = [w.replace("$T", "table.csv").replace("$URL", "postgresql://u@h/db") for w in shlex.split(line)]
    parser = build_parser()
    try:
        parser.parse_args(argv[1:])
    except SystemExit as e:  # argparse reports the bad flag on stderr and exits 2
        pytest.fail(f"README command does not parse (exit {e.code}): {line}")


def test_the_python_quick_start_runs_as_written(tmp_path: Path) -> None:
    (code,) = [b for b in _blocks("python") if "ImageClassifier" in b and "load_model" in b]
    # A real search (6 trials, then the final model) on the 1,797 digits, about a minute on 2 cores.
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.strip().splitlines()
    scores = eval(lines[0], {"__builtins__": {}}, {})  # the dict that evaluate() printed
    assert scores["accuracy"] > 0.8, scores
    names = "zero one two three four five six seven eight nine".split()
    assert all(name.strip("[]'\" ") in names for name in lines[1].split()), lines[1]
    assert lines[2] == lines[1]  # the loaded model predicts the same labels as the classifier
    assert (tmp_path / "model.ts").exists() and (tmp_path / "runs" / "api" / "best" / "model.pt").exists()


def test_the_readme_strategy_plugin_runs_as_written(tmp_path: Path) -> None:
    """The "your own strategy" example registers a proposer and searches with it by name; its
    trials record it as their strategy, and after the first every cell is one edge from an
    earlier one (the example mutates the best)."""
    (code,) = [b for b in _blocks("python") if "register_proposer" in b]
    code += ("\nfrom budgetnas.search import open_study\nfrom budgetnas.search.records import record_of\n"
             "for t in open_study('runs/mine').get_trials():\n    r = record_of(t)\n"
             "    print('TRIAL', r['strategy'], r['arch'])\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env={**os.environ, "PYTHONUNBUFFERED": "1"},
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    trials = [line.split()[1:] for line in done.stdout.splitlines() if line.startswith("TRIAL ")]
    assert len(trials) >= 4 and all(strategy == "mutate_best" for strategy, _ in trials), trials

    def edges(arch: str) -> list[str]:
        return [e for e in re.split(r"\|\+?\|?", arch) if e]

    for i, (_, arch) in enumerate(trials[1:], start=1):
        assert any(sum(a != b for a, b in zip(edges(arch), edges(prev))) == 1 for _, prev in trials[:i]), arch
