"""The paper DAG: dry-run time through the slurm profile, jobs per rule, and jobs saved by sharing.

    .venv/bin/python bench/bench_dag.py [--repeats 3]

Sharing: the base policy's evaluation and first attempts are computed once per (dataset, model,
seed) and shared by every run that needs them (and the iterative study's round 1 is another study's
run). "Without sharing" counts the jobs if every run computed its own baseline, first attempts and
ancestors (pidistill/dagstats.py; its job set is checked against a dry run in the tests).
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pidistill.config import load_config  # noqa: E402
from pidistill.dagstats import sharing_report  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    snakemake = Path(sys.executable).with_name("snakemake")
    times, text = [], ""
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        proc = subprocess.run([str(snakemake), "--profile", "slurm", "all", "-n"], cwd=REPO, capture_output=True, text=True)
        times.append(time.perf_counter() - t0)
        if proc.returncode != 0:
            print(proc.stderr[-3000:], file=sys.stderr)
            return 1
        text = proc.stdout + proc.stderr
    counts = Counter(m.group(1) for m in re.finditer(r"^rule (\w+):", text, re.M))
    print(f"dry run of the paper DAG (snakemake --profile slurm all -n): median {statistics.median(times):.2f} s "
          f"(min {min(times):.2f}, max {max(times):.2f}, {args.repeats} runs), {sum(counts.values())} jobs")
    report = sharing_report(load_config(REPO / "config" / "paper.yaml"))
    print(f"\n{'rule':<24}{'jobs':>6}{'unshared':>10}")
    for rule, n in sorted(counts.items(), key=lambda kv: -kv[1]):
        print(f"{rule:<24}{n:>6}{report['unshared'].get(rule, n):>10}")
    s, u = report["shared_total"], report["unshared_total"]
    print(f"\ngeneration/verification/training/evaluation jobs for {report['trained_runs']} trained runs: {s} with sharing, "
          f"{u} without; sharing saves {u - s} jobs ({(u - s) / u:.0%}), ratio {u / s:.2f}x")
    gpu = ("sample_first_attempts", "sample_retries", "sample_evaluation", "train_adapter")
    gs, gu = sum(report["shared"].get(r, 0) for r in gpu), sum(report["unshared"].get(r, 0) for r in gpu)
    print(f"GPU jobs: {gs} with sharing, {gu} without ({gu - gs} saved)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
