"""Evaluation: pass@1 from n samples per problem and the unbiased pass@k estimator."""

from __future__ import annotations

from collections import defaultdict
from typing import Sequence

from pidistill.problems import Problem


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased estimator 1 - C(n-c, k) / C(n, k) (Chen et al., 2021), computed without big binomials."""
    if k > n:
        raise ValueError(f"k={k} exceeds n={n} samples")
    if n - c < k:
        return 1.0
    prob_all_fail = 1.0
    for i in range(n - c + 1, n + 1):
        prob_all_fail *= 1.0 - k / i
    return 1.0 - prob_all_fail


def summarize(problems: Sequence[Problem], verdicts: Sequence[dict], ks: Sequence[int]) -> dict:
    """Per-problem counts and the split's pass@k; every problem must have the same n samples."""
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for v in verdicts:
        counts[v["id"]][0] += 1
        counts[v["id"]][1] += int(bool(v["passed"]))
    missing = [p.id for p in problems if p.id not in counts]
    if missing:
        raise ValueError(f"{len(missing)} problems have no samples (first: {missing[0]})")
    ns = {n for n, _ in counts.values()}
    if len(ns) != 1:
        raise ValueError(f"problems have different sample counts {sorted(ns)}")
    n = ns.pop()
    per_problem = []
    for p in sorted(problems, key=lambda p: p.id):
        total, correct = counts[p.id]
        row = {"id": p.id, "n": total, "c": correct}
        for key in ("level", "subject", "family"):
            if key in p.meta:
                row[key] = p.meta[key]
        per_problem.append(row)
    metrics = {f"pass@{k}": sum(pass_at_k(r["n"], r["c"], k) for r in per_problem) / len(per_problem)
               for k in sorted(set(ks)) if k <= n}
    return {"n_problems": len(per_problem), "n_samples": n, "metrics": metrics, "per_problem": per_problem}
