"""Uncertainty of a gain measured on one set of problems: the paired bootstrap over problems.

A single-seed gain (one base policy, one trained policy, the same test problems) has no spread over
seeds, but it does have sampling error over problems: another draw of test problems of the same kind
would give another gain. The paired bootstrap resamples problems with replacement, the SAME
resampled problems for both policies, recomputes the statistic on each resample, and reports the
2.5th and 97.5th percentiles of those values (the percentile interval).

Deterministic: the resampling indices come from ``numpy.random.default_rng(seed)`` and nothing
else, so a rebuild gives the same interval to the last digit. Callers derive ``seed`` from the
configured bootstrap seed and what is compared (``pidistill.seeding.derive_seed``).
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from pidistill.evaluate import pass_at_k

CONFIDENCE = 0.95


def bootstrap_means(columns: Sequence[Sequence[float]], n_boot: int, seed: int) -> np.ndarray:
    """Per-problem columns (each of length P, one value per problem in a shared order) -> an array
    (n_boot, len(columns)) of their means over ``n_boot`` paired resamples of the P problems."""
    data = np.asarray(columns, dtype=float)
    if data.ndim != 2 or data.shape[1] == 0:
        raise ValueError("bootstrap needs one or more columns of per-problem values, with at least one problem")
    if n_boot < 1:
        raise ValueError(f"bootstrap needs at least one resample, got {n_boot}")
    rng = np.random.default_rng(seed)
    n = data.shape[1]
    idx = rng.integers(0, n, size=(n_boot, n))
    return np.stack([col[idx].mean(axis=1) for col in data], axis=1)


def percentile_interval(values: np.ndarray, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """The central ``confidence`` percentile interval of the finite values (NaN if there are none)."""
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return float("nan"), float("nan")
    lo, hi = np.quantile(values, [(1 - confidence) / 2, (1 + confidence) / 2])
    return float(lo), float(hi)


def paired_bootstrap(columns: Sequence[Sequence[float]], statistic: Callable[[np.ndarray], np.ndarray],
                     n_boot: int, seed: int, confidence: float = CONFIDENCE) -> tuple[float, float, float]:
    """``statistic`` maps an array (..., len(columns)) of column means to its value(s); returns the
    statistic on the data and its bootstrap percentile interval."""
    data = np.asarray(columns, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):  # a ratio over a resample without headroom: NaN, dropped
        point = float(statistic(data.mean(axis=1)[None, :])[0])
        boot = statistic(bootstrap_means(data, n_boot, seed))
    lo, hi = percentile_interval(boot, confidence)
    return point, lo, hi


def gain_ci(base: Sequence[float], other: Sequence[float], n_boot: int, seed: int,
            confidence: float = CONFIDENCE) -> tuple[float, float, float]:
    """Mean of ``other - base`` over problems (per-problem pass rates of two policies on the same
    problems, in the same order) and its paired-bootstrap percentile interval."""
    if len(base) != len(other):
        raise ValueError(f"a paired bootstrap needs the same problems: {len(base)} vs {len(other)} values")
    return paired_bootstrap([base, other], lambda m: m[..., 1] - m[..., 0], n_boot, seed, confidence)


def per_problem_rates(evaluation: dict, k: int = 1) -> dict[str, float]:
    """Problem id -> unbiased pass@k of that problem, from an evaluation.json's per-problem counts."""
    return {r["id"]: pass_at_k(r["n"], r["c"], k) for r in evaluation["per_problem"]}


def paired_rates(base: dict, other: dict, k: int = 1) -> tuple[list[float], list[float]]:
    """Per-problem pass@k of two evaluations of the same test problems, aligned by problem id."""
    a, b = per_problem_rates(base, k), per_problem_rates(other, k)
    if set(a) != set(b):
        raise ValueError(f"the two evaluations cover different problems ({len(set(a) ^ set(b))} differ)")
    ids = sorted(a)
    return [a[i] for i in ids], [b[i] for i in ids]
