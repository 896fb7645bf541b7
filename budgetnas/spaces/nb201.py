"""The NAS-Bench-201 cell space, faithful to the benchmark.

A cell is a 4-node DAG whose 6 edges ``(j <- i), i < j`` each carry one of five ops. The network
is NB201's skeleton: a 3x3 conv stem, three stages of ``N`` cells with ``C``, ``2C``, ``4C``
channels, a residual reduction block between stages, then BN-ReLU, global average pooling and a
linear classifier. With ``C=16, N=5`` and 10 classes the parameter counts equal the benchmark's.

Architectures are tuples of six op names in the edge order of the benchmark's string::

    |nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|
     (1<-0)           (2<-0)         (2<-1)           (3<-0)         (3<-1)         (3<-2)

Example::

    >>> space = NB201Space(C=16, N=5)
    >>> arch = space.parse("|nor_conv_3x3~0|+|none~0|skip_connect~1|+|skip_connect~0|none~1|avg_pool_3x3~2|")
    >>> space.cost(arch, in_channels=3, num_classes=10, resolution=32).params
    316346
"""

from __future__ import annotations

import difflib
import itertools
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from budgetnas.errors import ArchitectureError, ConfigError
from budgetnas.spaces.base import BaseSpace, Cost, register_space

if TYPE_CHECKING:
    from torch import nn

NB201_OPS: tuple[str, ...] = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
EDGES: tuple[tuple[int, int], ...] = ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))
NB201Arch = tuple[str, str, str, str, str, str]

# The modules (NB201Cell, NB201Network) are in budgetnas.spaces._nb201_net, imported by build():
# strings, costs and the canonical form need no torch (its import takes 1.5-3 s), so the table's
# queries and the command line's help do not wait for it. They are importable from here too.
_NETWORK_NAMES = ("NB201Cell", "NB201Network")


def __getattr__(name: str) -> Any:
    if name in _NETWORK_NAMES:
        from budgetnas.spaces import _nb201_net

        return getattr(_nb201_net, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@register_space("nb201")
class NB201Space(BaseSpace):
    """NAS-Bench-201's 15,625 cells in NB201's skeleton with ``C`` channels and ``N`` cells/stage.

    ``C=16, N=5`` is the benchmark's network; ``C=8, N=1`` is a cheap proxy for search and tests.
    """

    name = "nb201"
    version = "1"

    def __init__(self, C: int = 16, N: int = 5) -> None:
        if not isinstance(C, int) or isinstance(C, bool) or C < 1:
            raise ConfigError(f"NB201 channels C must be a positive integer, got {C!r}; NB201 uses 16")
        if not isinstance(N, int) or isinstance(N, bool) or N < 1:
            raise ConfigError(f"NB201 cells per stage N must be a positive integer, got {N!r}; NB201 uses 5")
        self.C = C
        self.N = N

    def __repr__(self) -> str:
        return f"NB201Space(C={self.C}, N={self.N})"

    # -- decisions (what samplers see) -------------------------------------------------------
    def decisions(self) -> list[tuple[str, tuple[str, ...]]]:
        return [(f"edge_{to}_{frm}", NB201_OPS) for to, frm in EDGES]

    def from_decisions(self, values: Mapping[str, Any]) -> NB201Arch:
        try:
            ops = tuple(str(values[f"edge_{to}_{frm}"]) for to, frm in EDGES)
        except KeyError as e:
            raise ArchitectureError(f"missing decision {e.args[0]!r} for an NB201 cell") from None
        return self.from_ops(ops)

    def to_decisions(self, arch: NB201Arch) -> dict[str, str]:
        return {f"edge_{to}_{frm}": op for (to, frm), op in zip(EDGES, arch)}

    def from_ops(self, ops: Any) -> NB201Arch:
        """An architecture from six op names in edge order (1<-0, 2<-0, 2<-1, 3<-0, 3<-1, 3<-2)."""
        ops = tuple(ops)
        if len(ops) != 6:
            raise ArchitectureError(f"an NB201 cell has 6 edges, got {len(ops)} ops: {ops!r}")
        for op in ops:
            _check_op(op)
        return ops  # type: ignore[return-value]

    def all_archs(self) -> Iterator[NB201Arch]:
        """All 5^6 = 15,625 cells (in op-product order, not the benchmark's index order)."""
        return itertools.product(NB201_OPS, repeat=6)  # type: ignore[return-value]

    # -- strings --------------------------------------------------------------------------------
    def format(self, arch: NB201Arch) -> str:
        nodes = []
        for to in (1, 2, 3):
            nodes.append("|" + "|".join(f"{op}~{frm}" for (t, frm), op in zip(EDGES, arch) if t == to) + "|")
        return "+".join(nodes)

    def parse(self, text: str) -> NB201Arch:
        if not isinstance(text, str):
            raise ArchitectureError(f"an NB201 cell string must be a str, got {type(text).__name__}")
        s = text.strip()
        groups = s.split("+")
        if len(groups) != 3:
            raise ArchitectureError(
                f"an NB201 cell string has 3 nodes joined by '+', got {len(groups)} in {text!r}; "
                "expected e.g. |nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+"
                "|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"
            )
        ops: dict[tuple[int, int], str] = {}
        for to, group in enumerate(groups, start=1):
            if not (group.startswith("|") and group.endswith("|")) or len(group) < 2:
                raise ArchitectureError(
                    f"node {to} of {text!r} must look like |op~i|...|, got {group!r}"
                )
            for token in group[1:-1].split("|"):
                op, sep, frm_s = token.partition("~")
                # (ASCII digits, no leading zero: str.isdigit took '²', then int() failed in a traceback)
                if not sep or not (frm_s.isascii() and frm_s.isdigit() and str(int(frm_s)) == frm_s):
                    raise ArchitectureError(
                        f"bad token {token!r} in node {to} of {text!r}: each edge is 'op~i' "
                        "with i the index of an earlier node"
                    )
                _check_op(op, token=token)
                frm = int(frm_s)
                if frm >= to:
                    raise ArchitectureError(
                        f"bad token {token!r}: node {to} can only take input from nodes 0..{to - 1}"
                    )
                if (to, frm) in ops:
                    raise ArchitectureError(f"bad token {token!r}: edge {frm}->{to} is given twice")
                ops[(to, frm)] = op
            missing = [f"~{frm}" for frm in range(to) if (to, frm) not in ops]
            if missing:
                raise ArchitectureError(
                    f"node {to} of {text!r} lacks edges from {', '.join(missing)}; every node lists "
                    "one op for each earlier node (use 'none' for no connection)"
                )
        return tuple(ops[e] for e in EDGES)  # type: ignore[return-value]

    def canonical(self, arch: NB201Arch) -> str:
        """A string equal for cells computing the same function (see :func:`canonical_form`)."""
        return canonical_form(arch)

    # -- building and costs ---------------------------------------------------------------------
    def build(self, arch: NB201Arch, *, in_channels: int, num_classes: int) -> nn.Module:
        from budgetnas.spaces._nb201_net import NB201Network

        return NB201Network(self.from_ops(arch), C=self.C, N=self.N, in_channels=in_channels,
                            num_classes=num_classes)

    def check_resolution(self, resolution: int) -> None:
        """NB201 halves the resolution twice (conv stride 2 beside a 2x2 pool): it must divide by 4."""
        if resolution < 4 or resolution % 4:
            raise ConfigError(
                f"NB201 networks need an input resolution that is a multiple of 4 (two stride-2 "
                f"reductions), got {resolution}; pick e.g. {max(4, resolution // 4 * 4)}"
            )

    def cost(self, arch: NB201Arch, *, in_channels: int, num_classes: int, resolution: int) -> Cost:
        """Exact parameter count and per-image compute, by formula (checked against the module)."""
        arch = self.from_ops(arch)
        self.check_resolution(resolution)
        C, N, r = self.C, self.N, resolution
        params = in_channels * C * 9 + 2 * C  # stem conv + BN
        macs = 9 * in_channels * C * r * r
        n3, n1 = arch.count("nor_conv_3x3"), arch.count("nor_conv_1x1")
        c_prev = C
        for stage, c in enumerate((C, 2 * C, 4 * C)):
            if stage > 0:
                r //= 2
                params += 9 * c_prev * c + 2 * c + 9 * c * c + 2 * c + c_prev * c
                macs += (9 * c_prev * c + 9 * c * c + c_prev * c) * r * r
            params += N * (n3 * (9 * c * c + 2 * c) + n1 * (c * c + 2 * c))
            macs += N * (n3 * 9 + n1) * c * c * r * r
            c_prev = c
        params += 2 * c_prev + c_prev * num_classes + num_classes  # last BN + classifier
        macs += c_prev * num_classes
        return Cost(params=params, macs=macs, flops_nb201=macs + num_classes)

    def spec(self) -> dict[str, Any]:
        return {"space": self.name, "version": self.version, "C": self.C, "N": self.N}


def _check_op(op: Any, token: str | None = None) -> None:
    if op not in NB201_OPS:
        close = difflib.get_close_matches(str(op), NB201_OPS, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        where = f" in token {token!r}" if token and token != op else ""
        raise ArchitectureError(
            f"unknown op {op!r}{where}{hint}; NB201 ops are {', '.join(NB201_OPS)}"
        )


def _has_conv(term: object) -> bool:
    """A canonical term that is a conv instance's output, pooled or not."""
    return isinstance(term, tuple) and (term[0] == "conv" or _has_conv(term[1]))


def canonical_form(arch: NB201Arch) -> str:
    """An order-independent expression of what the cell computes, with conv instances told apart.

    Node 0 is ``x``; each node is the sorted sum of its incoming terms. ``none`` edges and
    ``skip_connect``/``avg_pool_3x3`` edges out of an all-zero node vanish; ``skip_connect`` passes
    its input's terms through; average pooling (padding not counted) is linear, so it distributes
    over sums. A conv (ReLU-Conv-BN) is a term of its own, applied to its input's whole sum; on an
    all-zero input it outputs its BN's learned shift, a constant ``c`` (constants in one sum merge
    into one, and pooling keeps them). Beside a conv (or a pooled conv) the constant is dropped: in
    this 4-node cell a constant needs an all-zero node, and then every conv in the same sum reaches
    the rest of the cell only through that sum, by linear edges, so its own BN shift takes the
    constant in (the two cells compute the same family of functions). Each conv edge is an instance with its own weights: a node
    that feeds several edges shares its convs, so ``2*conv_a(x)`` (one conv reached twice) is not
    ``conv_a(x) + conv_b(x)`` (two convs). Instances are named ``op#k``, with ``k`` chosen so that
    the string is the least over all namings of interchangeable instances (same op, same input):
    cells with equal forms compute the same function family, so the evaluation cache and
    de-duplication use this key. A cell whose output is zero gives ``"0"``.
    """
    # Terms: "x", "c" (a learned constant), ("pool", term) and ("conv", edge) for conv instances.
    conv_input: dict[int, tuple] = {}
    nodes: list[tuple] = [("x",)]
    for to in (1, 2, 3):
        terms: list = []
        for e, ((t, frm), op) in enumerate(zip(EDGES, arch)):
            if t != to or op == "none":
                continue
            src = nodes[frm]
            if op == "skip_connect":
                terms.extend(src)
            elif op == "avg_pool_3x3":
                terms.extend(term if term == "c" else ("pool", term) for term in src)
            elif not src:  # ReLU-Conv of zero is zero; its BN adds its learned shift
                terms.append("c")
            else:
                conv_input[e] = src
                terms.append(("conv", e))
        if "c" in terms:  # a sum of learned constants is one learned constant; beside a conv, none
            terms = [t for t in terms if t != "c"] + ([] if any(map(_has_conv, terms)) else ["c"])
        nodes.append(tuple(terms))
    if not nodes[3]:
        return "0"

    def render(term: object, names: dict[int, str] | None) -> str:
        if isinstance(term, str):
            return term
        if term[0] == "pool":
            return f"avg_pool_3x3({render(term[1], names)})"
        e = term[1]
        head = arch[e] if names is None else names[e]
        return f"{head}({render_sum(conv_input[e], names)})"

    def render_sum(terms: tuple, names: dict[int, str] | None) -> str:
        return "+".join(sorted(render(t, names) for t in terms)) or "0"

    def live(term: object, out: set[int]) -> None:
        if isinstance(term, tuple):
            if term[0] == "pool":
                live(term[1], out)
            else:
                out.add(term[1])
                for t in conv_input[term[1]]:
                    live(t, out)

    used: set[int] = set()
    for t in nodes[3]:
        live(t, used)
    groups: dict[str, list[int]] = {}  # interchangeable instances: same rendering without names
    for e in sorted(used):
        groups.setdefault(render(("conv", e), None), []).append(e)
    best: str | None = None
    for perms in itertools.product(*(itertools.permutations(g) for g in groups.values())):
        names = {e: f"{arch[e]}#{k}" for perm in perms for k, e in enumerate(perm)}
        s = render_sum(nodes[3], names)
        if best is None or s < best:
            best = s
    assert best is not None
    return best
