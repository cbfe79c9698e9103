"""Throughput of the math verifier vs. a plain single-process loop over math-verify.

    .venv/bin/python bench/bench_math_verifier.py [--copies N] [--workers W]

Samples: MATH-500 x N completions written as a model would, cycling through five kinds per
problem: the gold boxed as is; another problem's gold (wrong); the gold with cosmetic LaTeX
changes (``\\left``/``\\right``, ``\\dfrac``, spacing) after a ``<think>`` block; a wrong answer
"the gold + 1" for integer golds (else another problem's gold); and an equivalent rewrite
(``\\frac{2n}{2}`` for an integer n, ``a/b`` for a fraction) that needs math-verify. The reference parses
gold and completion with ``math_verify.parse`` and calls ``math_verify.verify`` (its own SIGALRM
timeouts) one sample at a time. The pipeline's verifier is ``verify_batch`` with 1 worker
(in-process) and with W workers (a pool: W > 1 and at least POOL_MIN comparisons left after the
fast paths). Each variant runs in a fresh interpreter, imports excluded from its timing, on all
samples and on the subset the fast path cannot settle. Prints a table, the ratios and how often
the verdicts agree with the plain loop.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pidistill.domains.math_benchmarks import load_math500  # noqa: E402
from pidistill.verifiers import VerifierSettings  # noqa: E402
from pidistill.verifiers import math as math_verifier  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "MATH-500_test.jsonl"


def cosmetic(gold: str) -> str:
    """The same answer written differently: ``\\dfrac`` for ``\\frac``, ``\\left( ... \\right)``
    around a parenthesised answer, extra spaces."""
    s = re.sub(r"\\frac(?![a-zA-Z])", r"\\dfrac", gold)
    if s.startswith("(") and s.endswith(")") and "\\left" not in s:
        s = "\\left(" + s[1:-1] + "\\right)"
    return " " + s + " "


def rewritten(gold: str) -> str:
    """An equivalent answer that the exact fast path cannot settle: an integer n as \\frac{2n}{2}, a
    simple fraction as a/b, anything else with explicit multiplication signs and spaces removed."""
    if re.fullmatch(r"-?\d+", gold):
        return f"\\frac{{{2 * int(gold)}}}{{2}}"
    m = re.fullmatch(r"(-?)\\[dt]?frac\{(\d+)\}\{(\d+)\}", gold)
    if m:
        return f"{m.group(1)}{m.group(2)}/{m.group(3)}"
    return re.sub(r"(\d)\s*\\sqrt", r"\1\\cdot\\sqrt", gold)


def samples(problems, copies: int):
    out = []
    n = len(problems)
    for c in range(copies):
        for i, p in enumerate(problems):
            kind = (i + c) % 5
            other = problems[(i + 1 + c) % n].answer
            if kind == 0:
                text = f"Let me solve this step by step. ... The final answer is $\\boxed{{{p.answer}}}$."
            elif kind == 1:
                text = f"Working through it, the final answer is $\\boxed{{{other}}}$."
            elif kind == 2:
                text = f"<think>Try \\boxed{{0}} first.</think>So the answer is $\\boxed{{{cosmetic(p.answer)}}}$."
            elif kind == 4:
                text = f"Therefore the final answer is $\\boxed{{{rewritten(p.answer)}}}$."
            else:
                wrong = str(int(p.answer) + 1) if re.fullmatch(r"-?\d+", p.answer) else other
                text = f"Hence the final answer is $\\boxed{{{wrong}}}$."
            out.append((p, text))
    return out


def reference(items):
    from math_verify import parse, verify

    verdicts = []
    for p, text in items:
        gold = parse("$" + p.answer + "$")
        pred = parse(text)
        verdicts.append(bool(verify(gold, pred)))
    return verdicts


def _run_variant(variant: str, source: str, copies: int, workers: int, subset: str) -> dict:
    """One timed run in this (fresh) process: returns seconds, samples and verdicts."""
    logging.getLogger("math_verify").setLevel(logging.ERROR)
    problems = load_math500(source)
    items = samples(problems, copies)
    if subset == "slow":
        probe = VerifierSettings(progress=False)
        items = [(p, t) for p, t in items if math_verifier._pre(p, t, probe)[1] is None]
    import math_verify  # noqa: F401  (import cost kept out of every timing)

    t = time.perf_counter()
    if variant == "reference":
        verdicts = reference(items)
    else:
        verdicts = [v.passed for v in math_verifier.verify_batch(items, VerifierSettings(workers=workers, progress=False))]
    return {"seconds": time.perf_counter() - t, "n": len(items), "verdicts": verdicts}


def _fresh(variant: str, args, workers: int, subset: str) -> dict:
    """Run a variant in a fresh interpreter, so no variant inherits another's warm caches."""
    import json
    import subprocess

    code = (
        "import json, sys; sys.path.insert(0, 'bench'); import bench_math_verifier as b; "
        f"print(json.dumps(b._run_variant({variant!r}, {args.source!r}, {args.copies}, {workers}, {subset!r})))"
    )
    root = Path(__file__).resolve().parents[1]
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--copies", type=int, default=2, help="completions per problem (default 2)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--source", default=str(DATA))
    args = ap.parse_args()
    if not Path(args.source).exists():
        print(f"{args.source} not found: nothing to benchmark", file=sys.stderr)
        return 1
    variants = [
        ("plain loop over math-verify (1 process)", "reference", 1),
        ("pidistill verify_batch, workers=1 (in-process)", "ours", 1),
        (f"pidistill verify_batch, workers={args.workers} (pool)", "ours", args.workers),
    ]
    results = {}
    for subset in ("all", "slow"):
        for label, variant, workers in variants:
            results[subset, label] = _fresh(variant, args, workers, subset)

    n_all, n_slow = results["all", variants[0][0]]["n"], results["slow", variants[0][0]]["n"]
    print(f"MATH-500 x {args.copies} = {n_all} samples ({n_slow} of them not settled by the exact fast path);")
    print(f"each run in a fresh process, imports excluded; {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}")
    print(f"{'verifier':50} {'subset':>6} {'samples':>8} {'seconds':>8} {'verdicts/s':>11} {'passed':>7}")
    for subset in ("all", "slow"):
        for label, _, _ in variants:
            r = results[subset, label]
            print(f"{label:50} {subset:>6} {r['n']:8d} {r['seconds']:8.2f} {r['n'] / r['seconds']:11.1f} {sum(r['verdicts']):7d}")
    for subset in ("all", "slow"):
        base = results[subset, variants[0][0]]
        for label, _, _ in variants[1:]:
            r = results[subset, label]
            print(f"ratio [{subset}] {label} / plain loop: {base['seconds'] / r['seconds']:.2f}x")
    ref, pooled = results["all", variants[0][0]]["verdicts"], results["all", variants[2][0]]["verdicts"]
    print(f"verdict agreement with the plain loop: {sum(a == b for a, b in zip(ref, pooled))}/{n_all}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
