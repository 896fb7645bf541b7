"""Torch-free NB201 cell helpers for the table: the 15,625 cell strings and AutoDL's unique string.

``budgetnas.spaces.nb201`` imports torch (about 1.5 s), which would make loading the table slow,
so the table keeps its own copy of the op names and the edge order; ``tests/bench`` checks that
they equal :data:`budgetnas.spaces.nb201.NB201_OPS` and :data:`~budgetnas.spaces.nb201.EDGES`.
Parsing of strings that are not in the standard form, and the error messages for bad ones, are
left to :meth:`NB201Space.parse` (imported only then).

Example::

    >>> ops = ("nor_conv_3x3", "nor_conv_3x3", "avg_pool_3x3", "skip_connect", "nor_conv_3x3", "skip_connect")
    >>> format_cell(ops)  # the benchmark's index 1
    '|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|'
    >>> unique_str(ops)  # equals the shared CSV's UniqueString of row 1
    '((0)@nor_conv_3x3)@avg_pool_3x3+(0)@nor_conv_3x3+((0)@nor_conv_3x3)@nor_conv_3x3+0'
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from functools import lru_cache

OPS: tuple[str, ...] = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
EDGES: tuple[tuple[int, int], ...] = ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))
OP_CODE: dict[str, int] = {op: i for i, op in enumerate(OPS)}


def format_cell(ops: Sequence[str]) -> str:
    """NB201's cell string for six ops in edge order (the benchmark's own formatting)."""
    a = ops
    return f"|{a[0]}~0|+|{a[1]}~0|{a[2]}~1|+|{a[3]}~0|{a[4]}~1|{a[5]}~2|"


@lru_cache(maxsize=1)
def standard_strings() -> dict[str, tuple[str, ...]]:
    """Every one of the 15,625 standard cell strings mapped to its op tuple (built once, ~20 ms)."""
    return {format_cell(ops): ops for ops in itertools.product(OPS, repeat=6)}


def unique_str(ops: Sequence[str]) -> str:
    """AutoDL's ``Structure.to_unique_str(consider_zero=True)``, reimplemented.

    Node 0 is ``"0"``. Each later node is the ``+``-join of its sorted incoming terms, where an
    edge gives ``"#"`` (zero) if its op is ``none`` or its source node is exactly ``"#"``, the
    source string itself for ``skip_connect``, and ``"(src)@op"`` otherwise. The result is the
    output node's string. Quirk kept on purpose: a node whose terms are all zero becomes ``"#+#"``,
    not ``"#"``, so later edges do not treat it as zero; that is why the table has 6,466 distinct
    values. The string does not tell one conv reached twice from two convs, nor keep the learned
    BN shift of a conv on a zero node; our canonical form does both (see ``NB201Table``).
    """
    nodes = ["0"]
    for to in (1, 2, 3):
        terms = []
        for (t, frm), op in zip(EDGES, ops):
            if t != to:
                continue
            src = nodes[frm]
            if op == "none" or src == "#":
                terms.append("#")
            elif op == "skip_connect":
                terms.append(src)
            else:
                terms.append(f"({src})@{op}")
        nodes.append("+".join(sorted(terms)))
    return nodes[3]
