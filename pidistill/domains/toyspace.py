"""Train/test splits of distinct problems drawn from a toy domain's space, and the toy loaders' options
(shared by every toy)."""

from __future__ import annotations

import random
from typing import Callable

from pidistill.io import InputError
from pidistill.problems import Problem

SPLITS = ("train", "test", "all")


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


def toy_split(name: str, make_splits: Callable, source, seed: int, n_train: int, n_test: int,
              split: str) -> list[Problem]:
    """A toy loader's problems: the domain's ``make_splits``, after checking the options it was given."""
    if source is not None:
        raise InputError(f"dataset {name!r} is generated from its options (seed, n_train, n_test, split); "
                         f"it reads no source file, got {source!r}")
    if split not in SPLITS:
        raise InputError(f"dataset {name!r}: option split must be one of {', '.join(SPLITS)}, got {split!r}")
    for key, value in (("n_train", n_train), ("n_test", n_test)):
        if value < 0:
            raise InputError(f"dataset {name!r}: option {key} must be 0 or more, got {value}")
    train, test = make_splits(seed, n_train, n_test)
    return {"train": train, "test": test, "all": train + test}[split]
