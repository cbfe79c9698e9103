"""Loaders for the demo's toy domains: the problems are generated from a seed, so there is no source file."""

from __future__ import annotations

from pidistill.domains import toy_code, toy_formal, toy_math
from pidistill.domains.raw import dataset_loader
from pidistill.io import InputError
from pidistill.problems import Problem

SPLITS = ("train", "test", "all")


def _split(name: str, module, source, seed: int, n_train: int, n_test: int, split: str) -> list[Problem]:
    if source is not None:
        raise InputError(f"dataset {name!r} is generated from its options (seed, n_train, n_test, split); "
                         f"it reads no source file, got {source!r}")
    if split not in SPLITS:
        raise InputError(f"dataset {name!r}: option split must be one of {', '.join(SPLITS)}, got {split!r}")
    for key, value in (("n_train", n_train), ("n_test", n_test)):
        if value < 0:
            raise InputError(f"dataset {name!r}: option {key} must be 0 or more, got {value}")
    train, test = module.make_splits(seed, n_train, n_test)
    return {"train": train, "test": test, "all": train + test}[split]


@dataset_loader("toy_math")
def load_toy_math(source=None, *, seed: int = 0, n_train: int = 120, n_test: int = 80, split: str = "all") -> list[Problem]:
    return _split("toy_math", toy_math, source, seed, n_train, n_test, split)


@dataset_loader("toy_code")
def load_toy_code(source=None, *, seed: int = 0, n_train: int = 100, n_test: int = 60, split: str = "all") -> list[Problem]:
    return _split("toy_code", toy_code, source, seed, n_train, n_test, split)


@dataset_loader("toy_formal")
def load_toy_formal(source=None, *, seed: int = 0, n_train: int = 100, n_test: int = 60, split: str = "all") -> list[Problem]:
    return _split("toy_formal", toy_formal, source, seed, n_train, n_test, split)
