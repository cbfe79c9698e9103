"""Donors for the "wrong" / "other_tests" PI conditions: the seeded derangement vs the assignment.

    .venv/bin/python bench/bench_pi_assignment.py [--seeds 0 1 2] [--workers W] [--scale N]

Splits: MATH-500 golds (``wrong``: the recipient judged with ``\\boxed{<donor's answer>}``), HumanEval
and MBPP (full, 974 tasks) for ``other_tests`` (the recipient's canonical solution run against the
donor's tests), the toy-math train split of config/config.yaml (120 problems, 30 distinct
answers; ``wrong``) and the whole 179-function toy-code space (``other_tests``; two of its pairs are
indistinguishable by the donor's tests). For every seed: how many problems the old derangement
(``pidistill.seeding.derangement`` as pidistill.retry used it) gives an equivalent donor, and how many
the assignment (pidistill.pi_assignment) does, each assigned pair judged afresh by the verifier (must
be 0). Times: the derangement's permutation alone; the assignment's integer programs (build + CBC);
the verifier judging the edges the lazy solve asked about; and the total. ``--scale N`` adds a
synthetic split of N ids (default 7500, about MATH train) with skewed integer golds given as a set of
equivalent pairs (no verifier), to time the solver at that size; ``--scale 0`` skips it.
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import sys
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pidistill.domains import toy_code, toy_math  # noqa: E402
from pidistill.domains.code_benchmarks import load_humaneval, load_mbpp  # noqa: E402
from pidistill.domains.math_benchmarks import load_math500  # noqa: E402
from pidistill.pi_assignment import (  # noqa: E402
    EquivalenceJudge,
    derangement_donors,
    judge_equivalent,
    solve_assignment,
)
from pidistill.verifiers import VerifierSettings  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "shared" / "datasets"


def splits(data: Path):
    yield "MATH-500", "wrong", lambda: load_math500(str(data / "MATH-500_test.jsonl"))
    yield "HumanEval", "other_tests", lambda: load_humaneval(str(data / "HumanEval.jsonl.gz"))
    yield "MBPP (full)", "other_tests", lambda: load_mbpp(str(data / "mbpp.jsonl"))
    yield "toy math (train)", "wrong", lambda: toy_math.make_splits(0, 120, 80)[0]  # config.yaml's split
    yield "toy code (all 179)", "other_tests", lambda: toy_code.make_splits(0, 179, 0)[0]


def run_split(problems, pi: str, seed: int, settings: VerifierSettings) -> dict:
    judge = EquivalenceJudge(problems, pi, settings)
    t = time.perf_counter()
    derangement = derangement_donors(problems, pi, seed)
    derange_s = time.perf_counter() - t
    collisions = len(judge(list(derangement.items())))
    judge_before = judge.seconds
    n_before = len(judge.judged)
    t = time.perf_counter()
    result = solve_assignment(problems, pi, seed, judge)
    total_s = time.perf_counter() - t
    check = judge_equivalent(problems, pi, result.donors.items(), settings)  # afresh, not from the cache
    return {"n": len(problems), "derangement": collisions, "assignment": len(check), "derange_s": derange_s,
            "solve_s": result.solve_s, "judge_s": judge.seconds - judge_before, "total_s": total_s,
            "judged": len(judge.judged) - n_before, "excluded": len(result.excluded), "rounds": result.rounds,
            "edges": result.n_edges}


def run_scale(n: int, seed: int) -> dict:
    rng = random.Random(seed)
    ids = [f"p{i:05d}" for i in range(n)]
    gold = {i: str(min(int(rng.expovariate(0.05)), 200)) for i in ids}  # skewed: about 5% of golds are 0
    groups = defaultdict(list)
    for i in ids:
        groups[gold[i]].append(i)
    equivalent = {(r, d) for g in groups.values() for r in g for d in g if r != d}
    t = time.perf_counter()
    order = sorted(ids)
    from pidistill.seeding import derangement, derive_seed

    donors = derangement(order, derive_seed("pi-derangement", "wrong", seed))
    derange_s = time.perf_counter() - t
    collisions = sum(gold[r] == gold[d] for r, d in zip(order, donors))
    out = {"n": n, "derangement": collisions, "derange_s": derange_s}
    t = time.perf_counter()
    eager = solve_assignment(ids, "wrong", seed, equivalent)
    out.update(eager_s=time.perf_counter() - t, eager_solve_s=eager.solve_s, edges=eager.n_edges,
               assignment=sum(gold[r] == gold[d] for r, d in eager.donors.items()))
    judged = []

    def lazy_judge(edges):
        judged.extend(edges)
        return {e for e in edges if e in equivalent}

    t = time.perf_counter()
    lazy = solve_assignment(ids, "wrong", seed, lazy_judge)
    out.update(lazy_s=time.perf_counter() - t, lazy_rounds=lazy.rounds, lazy_judged=len(judged),
               same=lazy.donors == eager.donors)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--scale", type=int, default=7500)
    ap.add_argument("--data", default=str(DATA))
    args = ap.parse_args()
    data = Path(args.data)
    if not data.is_dir():
        print(f"{data} not found: nothing to benchmark", file=sys.stderr)
        return 1
    logging.getLogger("math_verify").setLevel(logging.ERROR)
    settings = VerifierSettings(workers=args.workers, timeout_s=10.0, progress=False)
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}; verifier workers={args.workers}; seeds {args.seeds}")
    head = (f"{'split':20} {'pi':12} {'seed':>4} {'n':>5} {'derang.':>7} {'assign.':>7} {'derang_s':>9} {'ip_s':>6} "
            f"{'judge_s':>7} {'total_s':>7} {'judged':>6} {'excl.':>5} {'rounds':>6} {'edges':>6}")
    print("collisions: problems given an equivalent donor (derangement vs assignment, the latter re-judged afresh)")
    print(head)
    failed = False
    for name, pi, load in splits(data):
        problems = load()
        for seed in args.seeds:
            r = run_split(problems, pi, seed, settings)
            failed |= r["assignment"] != 0
            print(f"{name:20} {pi:12} {seed:4d} {r['n']:5d} {r['derangement']:7d} {r['assignment']:7d} {r['derange_s']:9.5f} "
                  f"{r['solve_s']:6.2f} {r['judge_s']:7.2f} {r['total_s']:7.2f} {r['judged']:6d} {r['excluded']:5d} "
                  f"{r['rounds']:6d} {r['edges']:6d}", flush=True)
    if args.scale:
        s = run_scale(args.scale, args.seeds[0])
        failed |= s["assignment"] != 0 or not s["same"]
        print(f"\nsynthetic {s['n']} ids (skewed integer golds, equivalence = equal gold), seed {args.seeds[0]}:")
        print(f"  derangement: {s['derange_s']:.4f} s, {s['derangement']} collisions")
        print(f"  assignment, exclusions given as a set: {s['eager_s']:.2f} s ({s['eager_solve_s']:.2f} s integer program), "
              f"{s['edges']} candidate edges, {s['assignment']} collisions")
        print(f"  assignment, lazy judging: {s['lazy_s']:.2f} s, {s['lazy_rounds']} integer programs, "
              f"{s['lazy_judged']} edges judged; same donors as with the set: {s['same']}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
