"""Throughput of the code verifier vs. the reference design (one fresh `python -I` per sample).

    .venv/bin/python bench/bench_code_verifier.py [--copies N] [--workers W] [--timeout S] [--repeat R]

Both designs judge the same samples with W parallel workers, in the same run on the same machine:
the reference starts `python -I` per sample (program + tests + check(entry_point)) with a timeout
and rlimits, like the spine's first verifier; the sandbox is ``verify_batch`` with full isolation
(namespaces). Three sample sets:

* ``canonical``: HumanEval canonical solutions x N (all pass);
* ``failing``: per problem its canonical solution and one failing completion (in turn a wrong
  answer, an exception, a syntax error, ``sys.exit(0)`` in the call, which the reference counts
  as a pass), x N;
* ``mix``: ``failing`` plus ``--timeouts`` completions that never finish (half sleep, half spin),
  spread through the list.

Each design runs ``--repeat`` times, taking turns, and its fastest run counts (the machine may be
shared). About 4 minutes on 2 cores with the defaults.

It runs as the invoking user and, when that is root, again as an ordinary user made for the run
(``tests/asuser.py``: a fresh uid, its files under /tmp, this same interpreter and venv made
reachable to it where they live under /root). For each it prints samples/s, the ratio, CPU time
per sample (every process of each design), and where the sandbox's time per sample goes: inside
a zygote the candidate's start (the spawner's fork), its load (sandbox set-up in the candidate,
exec of the program, first answer), the tests (judge and candidate), the clean-up (kill, reap,
empty the work dir); outside, the verifier's own work (jobs, verdicts) and the pool's start and
stop. In a batch with a never-ending sample the sandbox cannot finish before that sample's
timeout has run out after it started: the mix's ratio grows with ``--copies``. A spinning sample
also burns its whole timeout of CPU in either design, so no design that gives each sample its
full timeout finishes the mix in less than (spinning samples x timeout / cores) seconds: the
report prints that floor and the ratio it caps (the mix's ceiling).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pidistill.domains.code_benchmarks import load_humaneval  # noqa: E402
from pidistill.verifiers import VerifierSettings  # noqa: E402
from pidistill.verifiers.code import job_for, verdict_from, verify_batch  # noqa: E402
from pidistill.verifiers.sandbox import Pool  # noqa: E402

DATA = REPO.parent / "shared" / "datasets" / "HumanEval.jsonl.gz"
FAILING = ("    return None\n", "    raise ValueError('no')\n", "    return (\n", "    import sys\n    sys.exit(0)\n")
NEVER_ENDS = ("    import time\n    time.sleep(600)\n", "    while True:\n        pass\n")


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


def sample_sets(copies: int, timeouts: int) -> dict[str, list]:
    problems = load_humaneval(str(DATA))
    canonical = [(p, p.meta["canonical_solution"]) for p in problems] * copies
    failing = []
    for i, p in enumerate(problems * copies):
        failing += [(p, p.meta["canonical_solution"]), (p, FAILING[i % len(FAILING)])]
    mix = list(failing)
    for k in range(timeouts):
        mix.insert((k + 1) * len(mix) // (timeouts + 1), (problems[k], NEVER_ENDS[k % 2]))
    return {"canonical": canonical, "failing": failing, "mix": mix}


def spinning(items) -> int:
    return sum(completion == NEVER_ENDS[1] for _, completion in items)


def _cpu() -> float:
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def _best(runs: list[dict]) -> dict:
    return min(runs, key=lambda r: r["seconds"])


def measure(items, workers: int, timeout: float, repeat: int) -> dict:
    """Both designs ``repeat`` times, taking turns (a shared machine's load hits both alike); the
    fastest run of each counts."""
    n = len(items)
    out = {"samples": n, "spinning": spinning(items)}
    settings = VerifierSettings(workers=workers, timeout_s=timeout, progress=False)
    refs, boxes = [], []
    for _ in range(repeat):
        c0, t0 = _cpu(), time.perf_counter()
        with ThreadPoolExecutor(workers) as ex:
            ref = list(ex.map(lambda it: reference_one(it[0], it[1], timeout), items))
        refs.append({"seconds": time.perf_counter() - t0, "cpu_ms": (_cpu() - c0) / n * 1e3, "passed": sum(ref)})
        c0, t0 = _cpu(), time.perf_counter()
        verdicts = verify_batch(items, settings)
        boxes.append({"seconds": time.perf_counter() - t0, "cpu_ms": (_cpu() - c0) / n * 1e3,
                      "passed": sum(v.passed for v in verdicts), "isolation": verdicts[0].extra.get("isolation"),
                      "agree": sum(v.passed == r for v, r in zip(verdicts, ref))})
    out["reference"], out["sandbox"] = _best(refs), _best(boxes)
    out["runs"] = {"reference": [round(r["seconds"], 2) for r in refs], "sandbox": [round(r["seconds"], 2) for r in boxes]}

    # the same steps as verify_batch, timed one by one (the zygotes time their own phases)
    t0 = time.perf_counter()
    jobs = [job_for(p, c, settings) for p, c in items]
    t1 = time.perf_counter()
    pool = Pool(workers, settings.isolation)
    t2 = time.perf_counter()
    results = pool.map(jobs)
    t3 = time.perf_counter()
    [verdict_from(p, j["program"], r, settings) for (p, _), j, r in zip(items, jobs, results)]
    t4 = time.perf_counter()
    pool.close()
    t5 = time.perf_counter()
    phases = {k: sum(r.get("timing_ms", {}).get(k, 0.0) for r in results) / n for k in ("start", "load", "tests", "cleanup")}
    out["breakdown"] = {**phases, "verifier": ((t1 - t0) + (t4 - t3)) / n * 1e3, "pool_start_stop": ((t2 - t1) + (t5 - t4)) / n * 1e3,
                        "map_wall": (t3 - t2) / n * 1e3, "parked": pool.parked, "zygotes": sum(z is not None for z in pool.zygotes)}
    return out


def run_all(args) -> dict:
    sets = sample_sets(args.copies, args.timeouts)
    return {"python": sys.executable, "uid": os.geteuid(),
            "sets": {name: measure(items, args.workers, args.timeout, args.repeat) for name, items in sets.items() if name in args.sets}}


def as_ordinary_user(args) -> dict:
    sys.path.insert(0, str(REPO / "tests"))
    from asuser import OrdinaryUser

    user = OrdinaryUser(same_python=True)  # the same interpreter and venv as the invoking user's run
    try:
        cmd = [user.python, str(Path(__file__).resolve()), "--json", "--copies", str(args.copies), "--workers", str(args.workers),
               "--timeout", str(args.timeout), "--timeouts", str(args.timeouts), "--sets", ",".join(args.sets),
               "--repeat", str(args.repeat)]
        proc = subprocess.run(user.command(cmd), env=user.env, cwd=user.home, capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"the bench as uid {user.uid} failed:\n{proc.stderr[-3000:]}")
        return json.loads(proc.stdout.strip().splitlines()[-1])
    finally:
        user.close()


def report(mode: str, res: dict, args) -> None:
    print(f"\n== {mode}: uid {res['uid']}, {res['python']}")
    for name, m in res["sets"].items():
        ref, box, b = m["reference"], m["sandbox"], m["breakdown"]
        ratio = (m["samples"] / box["seconds"]) / (m["samples"] / ref["seconds"])
        print(f"-- {name}: {m['samples']} samples, workers={args.workers}, timeout {args.timeout:g}s")
        print(f"   {'design':<34} {'passed':>6} {'seconds':>8} {'samples/s':>9} {'CPU ms/sample':>13}")
        print(f"   {'reference: fresh python -I':<34} {ref['passed']:>6} {ref['seconds']:>8.2f} {m['samples'] / ref['seconds']:>9.1f} {ref['cpu_ms']:>13.2f}")
        print(f"   {'pidistill sandbox (' + str(box['isolation']) + ')':<34} {box['passed']:>6} {box['seconds']:>8.2f} {m['samples'] / box['seconds']:>9.1f} {box['cpu_ms']:>13.2f}")
        print(f"   ratio (sandbox / reference throughput): {ratio:.2f}x; verdicts agree on {box['agree']}/{m['samples']}; "
              f"runs (s): reference {m['runs']['reference']}, sandbox {m['runs']['sandbox']}")
        if m["spinning"]:
            cores = min(args.workers, os.cpu_count() or 1)
            floor = m["spinning"] * args.timeout / cores
            print(f"   floor for any design giving every sample its full timeout: {m['spinning']} spinning x "
                  f"{args.timeout:g}s / {cores} cores = {floor:.2f}s, so at most "
                  f"{ref['seconds'] / floor:.2f}x against this reference (the sandbox: {box['seconds'] / floor:.2f}x the floor)")
        print(f"   sandbox per sample, ms: in a zygote start {b['start']:.2f} + load {b['load']:.2f} + tests {b['tests']:.2f} "
              f"+ cleanup {b['cleanup']:.2f}; verifier {b['verifier']:.2f}; pool start+stop {b['pool_start_stop']:.2f}; "
              f"map wall {b['map_wall']:.2f} ({b['parked']} parked, {b['zygotes']} zygotes)")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--copies", type=int, default=2)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--timeout", type=float, default=5.0)
    ap.add_argument("--timeouts", type=int, default=4, help="never-ending samples in the mix")
    ap.add_argument("--repeat", type=int, default=2, help="runs of each design, taking turns; the fastest counts")
    ap.add_argument("--sets", type=lambda s: s.split(","), default=["canonical", "failing", "mix"])
    ap.add_argument("--modes", type=lambda s: s.split(","), default=["invoker", "user"])
    ap.add_argument("--json", action="store_true", help="(internal) one run as this user, as JSON")
    args = ap.parse_args()
    if not DATA.exists():
        print(f"{DATA} not found", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(run_all(args)))
        return 0
    print(f"HumanEval, cpus={os.cpu_count()}, load average {os.getloadavg()[0]:.2f} at the start")
    if "invoker" in args.modes:
        report("as the invoking user", run_all(args), args)
    if "user" in args.modes:
        if os.geteuid() != 0:
            print("\n(as an ordinary user: skipped, this already is one)")
        else:
            report("as an ordinary user", as_ordinary_user(args), args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
