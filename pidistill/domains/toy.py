"""Loaders for the demo's toy domains (``source`` is unused: the problems are generated)."""

from __future__ import annotations

from pidistill.domains import toy_code, toy_math
from pidistill.problems import Problem


def _split(module, seed: int, n_train: int, n_test: int, split: str) -> list[Problem]:
    train, test = module.make_splits(seed, n_train, n_test)
    return {"train": train, "test": test, "all": train + test}[split]


def load_toy_math(source=None, *, seed: int = 0, n_train: int = 120, n_test: int = 80, split: str = "all") -> list[Problem]:
    return _split(toy_math, seed, n_train, n_test, split)


def load_toy_code(source=None, *, seed: int = 0, n_train: int = 100, n_test: int = 60, split: str = "all") -> list[Problem]:
    return _split(toy_code, seed, n_train, n_test, split)
