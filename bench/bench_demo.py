"""Time the demo DAG end to end and per stage (from Snakemake's benchmark files).

    .venv/bin/python bench/bench_demo.py [--cores 2] [--keep DIR] [--configfile EXTRA.yaml]

Runs `snakemake --cores N all` on the demo config in a scratch copy of the repository, then reads
every benchmark TSV the heavy rules wrote and every log's timestamps are not needed: per-rule job
counts and seconds come from the benchmark files, the end-to-end time from the wall clock. It also
reports the sum of benchmarked job time against the wall time (how much the 2 cores overlap) and
the disk the results take. Target: the whole demo, PDF included, in at most 10 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import csv
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
COPY = ["Snakefile", "rules", "scripts", "config", "envs", "paper", "pidistill", "profiles", "report"]


def scratch_copy(dest: Path) -> Path:
    for item in COPY:
        src = REPO / item
        if src.is_dir():
            shutil.copytree(src, dest / item, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(src, dest / item)
    return dest


def benchmark_seconds(results: Path) -> dict[str, list[float]]:
    per_rule: dict[str, list[float]] = defaultdict(list)
    for tsv in sorted(results.rglob("*.tsv")):
        if "benchmarks" not in tsv.parts:
            continue
        rule = tsv.stem if tsv.parent.name == "benchmarks" else tsv.parent.name
        with open(tsv) as fh:
            rows = list(csv.DictReader(fh, delimiter="\t"))
        per_rule[rule] += [float(r["s"]) for r in rows]
    return per_rule


def du(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--keep", help="run in this directory and keep it")
    parser.add_argument("--configfile", help="a config given after the demo's (e.g. one that switches studies off)")
    args = parser.parse_args()
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="pidistill-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    scratch_copy(work)
    snakemake = Path(sys.executable).with_name("snakemake")
    t0 = time.perf_counter()
    extra = ["--configfile", args.configfile] if args.configfile else []
    proc = subprocess.run([str(snakemake), "--cores", str(args.cores), "all", *extra], cwd=work, capture_output=True,
                          text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        print(proc.stderr[-5000:], file=sys.stderr)
        return 1
    jobs = sum(1 for line in proc.stderr.splitlines() if line.startswith("Finished job"))
    per_rule = benchmark_seconds(work / "results")
    heavy = sum(sum(v) for v in per_rule.values())
    what = f"demo DAG + {args.configfile}" if args.configfile else "demo DAG"
    print(f"{what} with --cores {args.cores}: {wall:.1f} s wall ({wall / 60:.2f} min) for {jobs} jobs; "
          f"target <= 600 s: {'met' if wall <= 600 else 'NOT met'}")
    print(f"results on disk: {du(work / 'results') / 2**20:.1f} MiB")
    print(f"\n{'rule (benchmarked)':<24}{'jobs':>6}{'total s':>10}{'mean s':>9}{'share':>8}")
    for rule, secs in sorted(per_rule.items(), key=lambda kv: -sum(kv[1])):
        print(f"{rule:<24}{len(secs):>6}{sum(secs):>10.1f}{sum(secs) / len(secs):>9.2f}{sum(secs) / heavy:>8.1%}")
    print(f"\nbenchmarked job time {heavy:.1f} s; wall {wall:.1f} s; overlap ratio (job time / wall) "
          f"{heavy / wall:.2f}x on {args.cores} cores; unbenchmarked rules and scheduling: "
          f"{max(0.0, wall - heavy / args.cores):.1f} s of wall at most")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
