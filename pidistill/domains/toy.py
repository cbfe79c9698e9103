"""Loaders for the demo's toy math and toy code: the problems are generated from a seed, so there is no source
file. (Toy formal has its loader in its own module: its jobs and these never share code.)"""

from __future__ import annotations

from pidistill.domains import toy_code, toy_math
from pidistill.domains.raw import dataset_loader
from pidistill.domains.toyspace import toy_split
from pidistill.problems import Problem


@dataset_loader("toy_math")
def load_toy_math(source=None, *, seed: int = 0, n_train: int = 120, n_test: int = 80, split: str = "all") -> list[Problem]:
    return toy_split("toy_math", toy_math.make_splits, source, seed, n_train, n_test, split)


@dataset_loader("toy_code")
def load_toy_code(source=None, *, seed: int = 0, n_train: int = 100, n_test: int = 60, split: str = "all") -> list[Problem]:
    return toy_split("toy_code", toy_code.make_splits, source, seed, n_train, n_test, split)
