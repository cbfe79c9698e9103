"""The warm worker against one process per job, on the same DAG in the same run.

    .venv/bin/python bench/bench_worker.py [--cores 2] [--target T ...] [--configfile C] [--rounds 1]

Builds the targets (default: the code_retry study on the end-to-end test's small config, which runs
every kind of job from pretraining to the summary) twice per round in two scratch copies of the
repository: once with ``--config warm_worker=False`` (each rule script in a Python process of its
own, as before the worker) and once with the worker (pidistill/worker.py), alternating which goes
first. Reports both wall times, their ratio, the jobs run, and whether every data file (samples,
verdicts, pairs, models, adapters, CSVs; not logs or benchmarks) came out byte-identical.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_demo import REPO, scratch_copy  # noqa: E402

sys.path.insert(0, str(REPO / "tests"))
from workdir import differing_data, offline_env  # noqa: E402


def build(work: Path, cores: int, targets: list[str], configfile: str, worker: bool) -> tuple[float, int]:
    snakemake = Path(sys.executable).with_name("snakemake")
    cmd = [str(snakemake), "--cores", str(cores), *targets, "--configfile", configfile,
           "--config", f"warm_worker={worker}"]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=work, capture_output=True, text=True, env=offline_env())
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"snakemake failed in {work}:\n{proc.stderr[-5000:]}")
    return wall, sum(1 for line in proc.stderr.splitlines() if line.startswith("Finished job"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--target", action="append", help="Snakemake target (repeatable)")
    parser.add_argument("--configfile", default="tests/configs/e2e.yaml", help="config over the demo's")
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    targets = args.target or ["results/studies/code_retry/summary.csv"]
    base = Path(tempfile.mkdtemp(prefix="pidistill-bench-worker-"))
    walls: dict[bool, list[float]] = {False: [], True: []}
    try:
        for r in range(args.rounds):
            dirs = {}
            for worker in ((False, True) if r % 2 == 0 else (True, False)):
                work = base / f"round{r}-{'worker' if worker else 'processes'}"
                work.mkdir(parents=True)
                scratch_copy(work)
                shutil.copytree(REPO / "tests" / "configs", work / "tests" / "configs")
                wall, jobs = build(work, args.cores, targets, args.configfile, worker)
                walls[worker].append(wall)
                dirs[worker] = work
                print(f"round {r}: {'warm worker' if worker else 'a process per job'}: {wall:.1f} s for {jobs} jobs",
                      flush=True)
            compared, differ = differing_data(dirs[True], dirs[False])
            print(f"round {r}: {compared} data files compared, "
                  f"{'all byte-identical' if not differ else f'{len(differ)} differ: ' + ', '.join(differ[:5])}")
    finally:
        shutil.rmtree(base, ignore_errors=True)
    off, on = sum(walls[False]) / args.rounds, sum(walls[True]) / args.rounds
    print(f"\n{' + '.join(targets)} ({args.configfile}, --cores {args.cores}, {args.rounds} round(s)):")
    print(f"a process per job {off:.1f} s, warm worker {on:.1f} s: ratio (worker / processes) {on / off:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
