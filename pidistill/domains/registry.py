"""Dataset names known to ``pidistill prepare`` and the pipeline's ``prepare_dataset`` rule.

Each entry maps a name to ``"module:function"``; the function is called as
``fn(source, **options) -> list[Problem]`` where ``source`` is a local raw file in the format its
authors publish (or None: the function's default, e.g. the hub). Modules are imported lazily, so a
rule lists only its loader's module as code (``loader_module``).
"""

from __future__ import annotations

import importlib

from pidistill.problems import Problem

LOADERS: dict[str, str] = {
    "toy_math": "pidistill.domains.toy:load_toy_math",
    "toy_code": "pidistill.domains.toy:load_toy_code",
    "toy_formal": "pidistill.domains.toy_formal:load_toy_formal",
    "humaneval": "pidistill.domains.code_benchmarks:load_humaneval",
    "humaneval-plus": "pidistill.domains.code_benchmarks:load_humaneval_plus",
    "mbpp": "pidistill.domains.code_benchmarks:load_mbpp",
    "mbpp-sanitized": "pidistill.domains.code_benchmarks:load_mbpp_sanitized",
    "mbpp-plus": "pidistill.domains.code_benchmarks:load_mbpp_plus",
    "math500": "pidistill.domains.math_benchmarks:load_math500",
    "math-train": "pidistill.domains.math_benchmarks:load_math_train",
    "minif2f-deepseek": "pidistill.domains.minif2f:load_minif2f_deepseek",
    "minif2f-lean4": "pidistill.domains.minif2f:load_minif2f_lean4",
}


def loader_module(name: str) -> str:
    """The module that implements loader ``name`` (what a prepare job runs)."""
    try:
        return LOADERS[name].split(":")[0]
    except KeyError:
        raise ValueError(f"unknown dataset {name!r}; known: {', '.join(sorted(LOADERS))}") from None


def load(name: str, source: str | None = None, **options) -> list[Problem]:
    fn = getattr(importlib.import_module(loader_module(name)), LOADERS[name].split(":")[1])
    return fn(source, **options)
