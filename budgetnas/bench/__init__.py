"""Tabular benchmarks (layer 2): NAS-Bench-201 loaded, queried and ranked, without training.

``import budgetnas.bench`` is light (numpy only); torch loads when costs or the canonical form are
first needed.

Example::

    from budgetnas.bench import load_nb201
    table = load_nb201("../shared/data/nb201/nats_tss_200ep_test.csv")   # or $BUDGETNAS_NB201
    table.query("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|")
    for row in table.top_k(10, dataset="cifar100", max_params=0.5e6):
        print(row["index"], row["value"], row["params"], row["arch"])
"""

from __future__ import annotations

from budgetnas.bench._readers import DATASETS, METRICS
from budgetnas.bench.table import ENV_VAR, NB201Table, load_nb201, normalize_dataset

__all__ = ["DATASETS", "ENV_VAR", "METRICS", "NB201Table", "load_nb201", "normalize_dataset"]
