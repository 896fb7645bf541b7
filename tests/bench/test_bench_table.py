"""The NB201 table on the shared CSV: queries, the two notions of "same cell", costs, top-k, errors."""

from __future__ import annotations

import argparse
import csv
import json
import re
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

from budgetnas.bench import ENV_VAR, NB201Table, load_nb201, normalize_dataset
from budgetnas.bench import _cell
from budgetnas.bench.commands import add_top_arguments, parse_count, top_command
from budgetnas.errors import ArchitectureError, ConfigError, DataError
from budgetnas.spaces.nb201 import EDGES, NB201_OPS, NB201Space
from tests.conftest import NB201_CSV

needs_csv = pytest.mark.skipif(not NB201_CSV.exists(), reason="shared NB201 table not present")
BEST_C10 = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"


@pytest.fixture(scope="module")
def rows() -> list[dict[str, str]]:
    with open(NB201_CSV, newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def table() -> NB201Table:
    return load_nb201(NB201_CSV)


def test_cell_constants_match_the_space() -> None:
    assert _cell.OPS == NB201_OPS and _cell.EDGES == EDGES
    space = NB201Space()
    rng = np.random.default_rng(0)
    for _ in range(50):
        ops = space.sample(rng)
        assert _cell.format_cell(ops) == space.format(ops)


def test_import_and_csv_load_do_not_import_torch() -> None:
    code = ("import sys; from budgetnas.bench import load_nb201; "
            f"t = load_nb201({str(NB201_CSV)!r}) if {NB201_CSV.exists()} else None; "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[2])
    assert out.stdout.strip() == "False"


# -- loading and queries ----------------------------------------------------------------------
@needs_csv
def test_loads_the_shared_csv(table: NB201Table, rows: list[dict[str, str]]) -> None:
    assert len(table) == 15625 and table.source == "csv" and table.path == str(NB201_CSV)
    assert table.datasets == ("cifar10", "cifar100", "ImageNet16-120")
    for d in table.datasets:
        assert table.metrics(d) == ("test_accuracy",)
        assert table.search_metric(d) == "test_accuracy" and table.is_test_oracle(d)
        assert table.has(d, "test_accuracy") and not table.has(d, "valid_accuracy")
    for i in (0, 1, 6111, 15624):
        assert table.arch_str(i) == rows[i]["ArchitectureString"]
        assert table.query(i, "cifar10") == float(rows[i]["CIFAR10TestAccuracy200Epochs"])
        assert table.query(i, "cifar100") == float(rows[i]["CIFAR100TestAccuracy200Epochs"])
        assert table.query(i, "ImageNet16-120") == float(rows[i]["ImageNetTestAccuracy200Epochs"])
    c10 = table.column("cifar10")
    assert c10.dtype == np.float64 and c10.shape == (15625,)
    assert int(c10.argmax()) == 6111 and c10[6111] == pytest.approx(94.3733, abs=1e-4)
    with pytest.raises(ValueError):
        c10[0] = 0.0  # read-only


@needs_csv
def test_query_by_string_index_and_ops_agree(table: NB201Table) -> None:
    ops = NB201Space().parse(BEST_C10)
    values = {table.query(BEST_C10, "cifar100"), table.query(6111, "cifar100"),
              table.query(ops, "cifar100"), table.query(list(ops), "cifar-100"),
              table.query(np.int64(6111), "CIFAR100")}
    assert len(values) == 1
    assert table.index(BEST_C10) == table.index(ops) == table.index(6111) == 6111
    # a string with spaces or with a node's terms in another order names the same cell
    shuffled = "|nor_conv_3x3~0|+|nor_conv_3x3~1|nor_conv_3x3~0|+|nor_conv_1x1~2|skip_connect~0|nor_conv_3x3~1|"
    assert table.index(f"  {BEST_C10} ") == table.index(shuffled) == 6111
    assert table.arch(6111) == ops
    for i in range(15625):
        assert table.index(table.arch_str(i)) == i and table.index(table.arch(i)) == i


@needs_csv
def test_bad_architectures_name_the_problem(table: NB201Table) -> None:
    with pytest.raises(ArchitectureError, match="nor_conv_5x5"):
        table.index(BEST_C10.replace("nor_conv_1x1~2", "nor_conv_5x5~2"))
    with pytest.raises(ArchitectureError, match="'conv3'"):
        table.query(["conv3"] + ["none"] * 5)
    with pytest.raises(ArchitectureError, match="6 edges"):
        table.index(("none",) * 5)
    with pytest.raises(ArchitectureError, match="0 to 15624"):
        table.query(15625)
    with pytest.raises(ArchitectureError, match="0 to 15624"):
        table.arch(-1)
    with pytest.raises(ArchitectureError, match="bool"):
        table.index(True)
    with pytest.raises(ArchitectureError, match="float"):
        table.index(3.0)  # type: ignore[arg-type]


@needs_csv
def test_bad_dataset_and_metric_names_list_what_exists(table: NB201Table) -> None:
    with pytest.raises(DataError, match="unknown dataset 'svhn'.*cifar10, cifar100, ImageNet16-120"):
        table.query(0, "svhn")
    with pytest.raises(DataError, match="unknown metric 'acc'.*test_accuracy, valid_accuracy"):
        table.column("cifar10", "acc")
    with pytest.raises(DataError, match=r"valid_accuracy .*has only test_accuracy.*NAS-Bench-201 \.pth.*NATS"):
        table.query(0, "cifar10", "valid_accuracy")
    assert normalize_dataset("imagenet") == normalize_dataset("ImageNet16_120") == "ImageNet16-120"


# -- two notions of the same cell ------------------------------------------------------------------
@needs_csv
def test_unique_str_reproduces_the_benchmark(table: NB201Table, rows: list[dict[str, str]]) -> None:
    ours = [table.unique_str(i) for i in range(15625)]
    assert len(set(ours)) == 6466
    assert ours == [r["UniqueString"] for r in rows]  # the very same strings
    # hence the same partition: group indices by each key and compare the groups
    def groups(keys: list[str]) -> set[frozenset[int]]:
        g: dict[str, set[int]] = defaultdict(set)
        for i, k in enumerate(keys):
            g[k].add(i)
        return {frozenset(v) for v in g.values()}
    assert groups(ours) == groups([r["UniqueString"] for r in rows])


@needs_csv
def test_canonical_merges_and_splits_the_unique_string_where_functions_say(table: NB201Table) -> None:
    canonical = [table.canonical(i) for i in range(15625)]
    n_classes = len(set(canonical))
    assert n_classes == 5083  # reported in the docs; changes if canonical_form changes
    by_unique: dict[str, set[str]] = defaultdict(set)
    by_canon: dict[str, set[str]] = defaultdict(set)
    for i, c in enumerate(canonical):
        by_unique[table.unique_str(i)].add(c)
        by_canon[c].add(table.unique_str(i))
    assert sum(len(v) > 1 for v in by_canon.values()) == 801  # classes the benchmark's string splits
    # The benchmark's string ignores which conv is which: cells 0 and 3599 have one string but
    # 3599 reaches one conv twice where 0 has two. Every split is of that kind (or a conv on a zero
    # node, whose learned BN shift the benchmark's string drops).
    assert table.unique_str(0) == table.unique_str(3599) and canonical[0] != canonical[3599]
    split = {u: cs for u, cs in by_unique.items() if len(cs) > 1}
    assert len(split) == 479
    def unnamed(c: str) -> str:
        return re.sub(r"#\d+", "", c)

    def has_constant(c: str) -> bool:
        return re.search(r"(^|[(+])c($|[)+])", c) is not None

    sharing = [cs for cs in split.values() if len({unnamed(c) for c in cs}) == 1]
    constants = [cs for cs in split.values() if len({unnamed(c) for c in cs}) > 1]
    assert all(any(has_constant(c) for c in cs) for cs in constants)
    assert (len(sharing), len(constants)) == (430, 49)
    assert table.canonical(BEST_C10) == NB201Space().canonical(table.arch(6111))


# -- costs ------------------------------------------------------------------------------------------
@needs_csv
@pytest.mark.parametrize("kw", [{}, {"in_channels": 1, "num_classes": 7, "C": 8, "N": 1, "resolution": 28},
                                {"in_channels": 3, "num_classes": 120, "C": 16, "N": 5, "resolution": 16}])
def test_vectorised_costs_equal_the_builder_formula(table: NB201Table, kw: dict[str, int]) -> None:
    res = kw.get("resolution", 32)
    net = {k: v for k, v in kw.items() if k != "resolution"}
    params, flops = table.params(**net), table.flops(**net, resolution=res)
    assert params.shape == flops.shape == (15625,)
    space = NB201Space(C=kw.get("C", 16), N=kw.get("N", 5))
    for i in np.random.default_rng(1).integers(0, 15625, 40):
        cost = space.cost(table.arch(int(i)), in_channels=kw.get("in_channels", 3),
                          num_classes=kw.get("num_classes", 10), resolution=res)
        assert (params[i], flops[i]) == (cost.params, cost.flops_nb201)
        assert table.cost(int(i), **kw) == cost


@needs_csv
def test_published_parameter_counts(table: NB201Table) -> None:
    params = table.params()
    assert params[6111] == 1_073_466 and params[0] == 129_306  # NB201: 1.073466M, 0.129306M
    assert params.min() == 73_306 and params.max() == 1_531_546  # the published range
    assert table.flops()[6111] / 1e6 == pytest.approx(153.27297, abs=1e-5)


# -- top-k ------------------------------------------------------------------------------------------
@needs_csv
def test_top_k_with_a_parameter_cap(table: NB201Table) -> None:
    top = table.top_k(50, dataset="cifar100", max_params=0.5e6)
    assert len(top) == 50
    assert set(top[0]) == {"index", "arch", "value", "params", "flops", "canonical"}
    values = [r["value"] for r in top]
    assert values == sorted(values, reverse=True, key=lambda v: round(v, 4))  # (float noise: tied, by index)
    assert all(r["params"] <= 500_000 for r in top)
    assert len({r["canonical"] for r in top}) == 50
    for r in top:
        assert r["value"] == table.query(r["index"], "cifar100")
        assert r["arch"] == table.arch_str(r["index"]) and r["canonical"] == table.canonical(r["index"])
    small = table.params() <= 500_000
    assert top[0]["value"] == table.column("cifar100")[small].max()
    # without de-duplication the list is the plain ranking and repeats canonical classes
    plain = table.top_k(200, dataset="cifar100", max_params=0.5e6, dedupe=False)
    # (values apart by float noise alone are one value, ordered by index)
    order = np.flatnonzero(small)[np.argsort(-table.column("cifar100")[small].round(4), kind="stable")]
    assert [r["index"] for r in plain] == order[:200].tolist()
    assert len({r["canonical"] for r in plain}) < 200


@needs_csv
def test_top_k_flop_cap_for_the_users_network(table: NB201Table) -> None:
    net = {"in_channels": 1, "num_classes": 7, "C": 8, "N": 1, "resolution": 28}
    top = table.top_k(20, dataset="imagenet", max_flops=4e6, **net)
    assert top and all(r["flops"] <= 4e6 for r in top)
    assert all(r["flops"] == table.cost(r["index"], **net).flops_nb201 for r in top)


@needs_csv
def test_top_k_diversity(table: NB201Table) -> None:
    top = table.top_k(15, dataset="cifar10", diverse=3)
    assert len(top) == 15
    codes = table.codes()
    for a in range(len(top)):
        for b in range(a):
            assert (codes[top[a]["index"]] != codes[top[b]["index"]]).sum() >= 3
    assert top[0]["index"] == 6111


@needs_csv
def test_top_k_impossible_and_bad_arguments(table: NB201Table) -> None:
    with pytest.raises(ConfigError, match=r"no NB201 cell satisfies.*smallest cell has 73,306 parameters"):
        table.top_k(5, max_params=50_000)
    with pytest.raises(ConfigError, match=r"C=16, N=5.*cheapest cell needs 7,783,050 FLOPs"):
        table.top_k(5, max_flops=1e6)
    for bad in ({"k": 0}, {"k": 2.5}, {"k": 3, "diverse": 7}, {"k": 3, "max_params": -1},
                {"k": 3, "max_flops": float("nan")}):
        with pytest.raises(ConfigError):
            table.top_k(**bad)  # type: ignore[arg-type]
    with pytest.raises(DataError, match="valid_accuracy"):
        table.top_k(3, metric="valid_accuracy")


# -- the bench top command ----------------------------------------------------------------------
def test_parse_count() -> None:
    assert parse_count("0.5e6") == parse_count("500k") == parse_count("0.5M") == 500_000
    for bad in ("-1", "abc", "0", "5x"):
        with pytest.raises(argparse.ArgumentTypeError):
            parse_count(bad)


@needs_csv
def test_top_command_prints_a_labelled_table_and_json(capsys: pytest.CaptureFixture[str]) -> None:
    parser = add_top_arguments(argparse.ArgumentParser())
    args = parser.parse_args(["--dataset", "cifar100", "--k", "5", "--max-params", "0.5e6",
                              "--table", str(NB201_CSV)])
    assert top_command(args) == 0
    out = capsys.readouterr().out
    assert "TEST ORACLE" in out and "params <= 500,000" in out and "6925" in out
    assert "the table has no validation accuracy" in out  # (the words finetune says: one source)
    args = parser.parse_args(["--k", "3", "--json", "--no-dedupe", "--classes", "100", "-C", "8",
                              "-N", "1", "--table", str(NB201_CSV)])
    assert top_command(args) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["test_oracle"] and data["network"]["C"] == 8 and len(data["results"]) == 3
    assert data["results"][0]["index"] == 6111
    # fewer than k: the note says they are distinct cells, and what the FLOPs are
    args = parser.parse_args(["--k", "500", "--max-params", "0.1e6", "--table", str(NB201_CSV)])
    assert top_command(args) == 0
    out = capsys.readouterr().out
    n = sum(line[:4].strip().isdigit() for line in out.splitlines())  # the ranked rows
    assert 3 < n < 500
    assert f"note: only {n} distinct cells (one per canonical class) meet the limits" in out
    assert "MFLOPs: millions of multiply-adds per image" in out
    # a --k beyond the table, no limits: the table's size is why (it blamed "the limits", a review)
    assert top_command(parser.parse_args(["--k", "100000", "--table", str(NB201_CSV)])) == 0
    out = capsys.readouterr().out
    n = sum(line[:6].strip().isdigit() for line in out.splitlines())
    assert f"note: the table holds only {n:,} distinct cells (one per canonical class)" in out and n > 4000


# -- finding and validating files ---------------------------------------------------------------------
def test_missing_file_says_where_it_looked(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(ENV_VAR, raising=False)
    with pytest.raises(DataError, match=rf"path argument.*{ENV_VAR} \(not set\).*nats_tss_200ep_test.csv.*NAS-Bench-201"):
        load_nb201()
    with pytest.raises(DataError, match=r"no NB201 benchmark file at .*nope.csv \(given as the path"):
        load_nb201(tmp_path / "nope.csv")
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "gone.pth"))
    with pytest.raises(DataError, match=rf"gone.pth \(from \${ENV_VAR}"):
        load_nb201()


@needs_csv
def test_env_var_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_VAR, str(NB201_CSV))
    assert len(load_nb201()) == 15625


def _write(path: Path, header: list[str], body: list[list[str]]) -> Path:
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(body)
    return path


@needs_csv
def test_a_csv_out_of_index_order_warns_and_one_in_fractions_is_refused(tmp_path: Path) -> None:
    """A CSV sorted in a spreadsheet loaded silently, its row numbers taken for benchmark indices;
    one in fractions (0.94) ranked alike and printed "0.94 %" (a review, 2026-12-06)."""
    import warnings

    with open(NB201_CSV, newline="") as f:
        header, *body = list(csv.reader(f))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_nb201(NB201_CSV)  # (the benchmark's order: no warning)
    swapped = _write(tmp_path / "swapped.csv", header, [body[1], body[0], *body[2:]])
    with pytest.warns(UserWarning, match="not in NAS-Bench-201's index order"):
        t = load_nb201(swapped)
    assert t.arch_str(0) == body[1][header.index("ArchitectureString")]
    fractions = [[f"{float(v) / 100:.6f}" if j < 3 else v for j, v in enumerate(r)] for r in body]
    with pytest.raises(DataError, match="fractions, where the NB201 CSV holds percent.*multiply them by 100"):
        load_nb201(_write(tmp_path / "fractions.csv", header, fractions))


@needs_csv
def test_corrupt_csv_files(tmp_path: Path) -> None:
    with open(NB201_CSV, newline="") as f:
        all_rows = list(csv.reader(f))
    header, body = all_rows[0], all_rows[1:]
    arch = header.index("ArchitectureString")
    bad_token = [r[:] for r in body]
    bad_token[7][arch] = "|skip~0|+|none~0|none~1|+|none~0|none~1|none~2|"
    bad_number = [r[:] for r in body]
    bad_number[12][0] = "high"
    dup = [r[:] for r in body]
    dup[20][arch] = dup[3][arch]
    cases = {
        "missing.csv": (_write(tmp_path / "missing.csv", header[1:], [r[1:] for r in body]),
                        "lacks column.*CIFAR10TestAccuracy200Epochs"),
        "short.csv": (_write(tmp_path / "short.csv", header, body[:-1]), "15,624 data rows"),
        "token.csv": (_write(tmp_path / "token.csv", header, bad_token), r"row 7 \(line 9.*'skip'"),
        "number.csv": (_write(tmp_path / "number.csv", header, bad_number), r"row 12 \(line 14\).*'high'"),
        "dup.csv": (_write(tmp_path / "dup.csv", header, dup), "row 20 .* repeats the cell of .*row 3"),
    }
    (tmp_path / "empty.csv").write_text("")
    (tmp_path / "binary.dat").write_bytes(bytes(range(256)) * 4)
    cases["empty.csv"] = (tmp_path / "empty.csv", "is empty")
    cases["binary.dat"] = (tmp_path / "binary.dat", "neither a CSV")
    for name, (path, message) in cases.items():
        with pytest.raises(DataError, match=message):
            load_nb201(path)


@needs_csv
def test_top_k_limits_default_to_the_benchmark_datasets_own_network(table: NB201Table,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """The defaults were 10 classes at 32x32 whatever the dataset: ImageNet16-120's networks
    (120 classes, 16x16, where NB201 counts their FLOPs) were capped as CIFAR-10's."""
    for dataset, classes, res in (("cifar100", 100, 32), ("ImageNet16-120", 120, 16)):
        top = table.top_k(5, dataset=dataset, max_flops=30e6)
        flops = table.flops(num_classes=classes, resolution=res)
        params = table.params(num_classes=classes)
        assert all(r["flops"] == flops[r["index"]] <= 30e6 and r["params"] == params[r["index"]] for r in top)
    parser = add_top_arguments(argparse.ArgumentParser())
    assert top_command(parser.parse_args(["--dataset", "imagenet", "--k", "2", "--table", str(NB201_CSV)])) == 0
    assert "120 classes, 16x16 input" in capsys.readouterr().out


@needs_csv
def test_query_command_says_what_the_table_holds_of_a_cell(table: NB201Table, capsys: pytest.CaptureFixture[str]) -> None:
    """(review 2026-12-06) `bench` was described as querying the benchmark, but only `top` and
    `simulate` existed: no command looked a cell up."""
    from budgetnas.bench.commands import add_query_arguments, query_command

    parser = add_query_arguments(argparse.ArgumentParser())
    assert query_command(parser.parse_args(["6111", table.arch_str(5725), "--table", str(NB201_CSV), "--json"])) == 0
    best, other = json.loads(capsys.readouterr().out)
    assert best["index"] == 6111 and best["datasets"]["cifar10"]["params"] == 1_073_466
    assert best["datasets"]["cifar10"]["metrics"]["test_accuracy"]["rank"] == 1
    c100 = table.column("cifar100", "test_accuracy")
    near = np.abs(c100 - c100[5725]) <= 1e-4  # (float noise: one value)
    assert other["index"] == 5725 and other["datasets"]["cifar100"]["metrics"]["test_accuracy"] == {
        "value": pytest.approx(c100[5725]), "rank": int((c100 > c100[5725] + 1e-4).sum()) + 1,
        "tied": int(near.sum()) - 1, "of": 15_625}
    assert best["datasets"]["cifar10"]["test_oracle"] is True  # (the CSV has test accuracy only)
    assert other["canonical"] == table.canonical(3487)  # (the same function: see canonical_form)
    assert query_command(parser.parse_args(["6111", "--table", str(NB201_CSV)])) == 0
    out = capsys.readouterr().out
    # (another cell has 94.37 on cifar10 too: a rank alone hid that the best is shared)
    c10 = table.column("cifar10", "test_accuracy")
    assert int((c10 == c10[6111]).sum()) == 2
    assert "cifar10: test_accuracy 94.37 (rank 1, tied with 1 other); 1.073M params, 153.3M FLOPs" in out
    assert "cifar100: test_accuracy 73.22 (rank 3); " in out
    assert "TEST ORACLE on cifar10, cifar100, ImageNet16-120" in out  # (the CSV has test accuracy only)
    with pytest.raises(ArchitectureError, match="did you mean 'nor_conv_3x3'"):
        query_command(parser.parse_args(["|nor_conv_3x33~0|+|none~0|none~1|+|none~0|none~1|none~2|",
                                         "--table", str(NB201_CSV)]))


def test_values_apart_by_float_noise_alone_share_a_rank_and_tie_by_index(table: NB201Table) -> None:
    """(review, 2026-12-07) The table stores one accuracy as 72.74666656087241 and 72.74666661783856:
    `bench query` gave cells 3731 and 4418 ranks 15 and 14, neither tied, and top_k put 4418 first
    ("ties by index")."""
    from budgetnas.bench.commands import query_cell

    a, b = (query_cell(table, i)["datasets"]["cifar100"]["metrics"]["test_accuracy"] for i in (3731, 4418))
    assert a["value"] != b["value"] and abs(a["value"] - b["value"]) < 1e-6  # (the noise is there)
    assert a["rank"] == b["rank"] and a["tied"] >= 1 and b["tied"] >= 1
    order = [int(p["index"]) for p in table.top_k(40, dataset="cifar100", metric="test_accuracy")]
    assert order.index(3731) < order.index(4418)
    chance = query_cell(table, 15376)["datasets"]["cifar100"]["metrics"]["test_accuracy"]
    assert chance["value"] == pytest.approx(1.0, abs=1e-4) and chance["tied"] > 0  # (chance level: many tie)
