"""Throughput of the code verifier vs. the reference design (one fresh Python process per sample).

    .venv/bin/python bench/bench_code_verifier.py [--copies N] [--workers W]

Both run HumanEval canonical solutions x N with W parallel workers in the same run on the same
machine; the reference starts `python -I` per sample (program + tests + check(entry_point)) with
a timeout and rlimits, like the spine's first verifier. Prints a table and the ratio.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pidistill.domains.code_benchmarks import load_humaneval  # noqa: E402
from pidistill.verifiers import VerifierSettings  # noqa: E402
from pidistill.verifiers.code import verify_batch  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "HumanEval.jsonl.gz"


def _limits():
    os.setsid()
    resource.setrlimit(resource.RLIMIT_AS, (512 << 20, 512 << 20))
    resource.setrlimit(resource.RLIMIT_CPU, (6, 6))


def reference_one(problem, completion: str, timeout: float) -> bool:
    program = problem.code_prefix + completion + "\n\n" + problem.test_program + f"\n\ncheck({problem.entry_point})\n"
    with tempfile.TemporaryDirectory(prefix="bench-ref-") as work:
        try:
            proc = subprocess.run([sys.executable, "-I", "-c", program], cwd=work, capture_output=True,
                                  timeout=timeout, preexec_fn=_limits, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            return False
    return proc.returncode == 0


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--copies", type=int, default=2)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--timeout", type=float, default=5.0)
    args = ap.parse_args()
    if not DATA.exists():
        print(f"{DATA} not found", file=sys.stderr)
        return 1
    problems = load_humaneval(str(DATA))
    items = [(p, p.meta["canonical_solution"]) for p in problems] * args.copies

    t0 = time.perf_counter()
    with ThreadPoolExecutor(args.workers) as ex:
        ref = list(ex.map(lambda it: reference_one(it[0], it[1], args.timeout), items))
    t_ref = time.perf_counter() - t0

    settings = VerifierSettings(workers=args.workers, timeout_s=args.timeout, progress=False)
    t0 = time.perf_counter()
    verdicts = verify_batch(items, settings)
    t_new = time.perf_counter() - t0
    isolation = verdicts[0].extra.get("isolation")

    n = len(items)
    rows = [
        ("reference: fresh python per sample", n, sum(ref), t_ref, n / t_ref),
        (f"pidistill sandbox ({isolation})", n, sum(v.passed for v in verdicts), t_new, n / t_new),
    ]
    print(f"HumanEval canonical x{args.copies}, workers={args.workers}, cpus={os.cpu_count()}")
    print(f"{'design':<40} {'samples':>7} {'passed':>6} {'seconds':>8} {'samples/s':>9}")
    for name, k, ok, t, rate in rows:
        print(f"{name:<40} {k:>7} {ok:>6} {t:>8.2f} {rate:>9.1f}")
    print(f"ratio (sandbox / reference throughput): {rows[1][4] / rows[0][4]:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
