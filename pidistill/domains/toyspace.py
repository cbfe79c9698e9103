"""Train/test splits of distinct problems drawn from a toy domain's space (shared by both toys)."""

from __future__ import annotations

import random
from typing import Callable

from pidistill.problems import Problem


def distinct_splits(random_item: Callable, to_problem: Callable, seed: int, n_train: int,
                    n_test: int) -> tuple[list[Problem], list[Problem]]:
    """Disjoint train and test splits of distinct problems (items are told apart by ``key``)."""
    rng = random.Random(seed)
    items: dict = {}
    for _ in range(1000 * (n_train + n_test)):
        if len(items) == n_train + n_test:
            break
        item = random_item(rng)
        items.setdefault(item.key, item)
    else:
        raise ValueError(f"asked for {n_train} + {n_test} distinct problems; the toy space has only {len(items)}")
    ordered = list(items.values())
    rng.shuffle(ordered)  # small families fill up first while drawing; mix them across the splits
    train = [to_problem(it, i, "train") for i, it in enumerate(ordered[:n_train])]
    test = [to_problem(it, i, "test") for i, it in enumerate(ordered[n_train:])]
    return train, test
