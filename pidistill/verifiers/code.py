"""Code verifier: extract the program from a completion and run its tests in a subprocess.

Spine version: one fresh Python process per sample with wall-time, CPU, memory and file-size
limits, in a private temporary directory, each test run in turn and reported through a per-run
random token (so printing a success marker cannot fake a pass). The code-verifier issue hardens
this (namespaces, hostile-program battery, pooled workers) behind the same interface.
"""

from __future__ import annotations

import json
import os
import re
import resource
import secrets
import subprocess
import sys
import tempfile
from typing import Sequence

from pidistill.problems import Problem
from pidistill.verifiers import Verdict, VerifierSettings

_FENCE = re.compile(r"```[ \t]*(?:python|py|Python)?[ \t]*\n(.*?)(?:```|$)", re.DOTALL)


def extract_code(completion: str) -> str:
    """The code in a completion: the fenced blocks if any (the longest), else the text itself."""
    blocks = _FENCE.findall(completion)
    if blocks:
        return max(blocks, key=len).strip("\n") + "\n"
    return completion.strip("\n") + "\n"


_RUNNER = r'''
import json, sys
token = sys.argv[1]
with open(sys.argv[2]) as fh:
    spec = json.load(fh)
results = []
ns = {"__name__": "__main__"}
try:
    exec(compile(spec["setup"] + "\n" + spec["program"], "<candidate>", "exec"), ns)
    load_error = None
except BaseException as exc:
    load_error = f"{type(exc).__name__}: {exc}"[:300]
for test in spec["tests"]:
    if load_error is not None:
        results.append([False, load_error]); continue
    try:
        exec(compile(test, "<test>", "exec"), ns)
        results.append([True, ""])
    except BaseException as exc:
        results.append([False, f"{type(exc).__name__}: {exc}"[:300]])
sys.__stdout__.write("\n" + token + json.dumps(results) + "\n")
sys.__stdout__.flush()
'''


def _limits(settings: VerifierSettings):
    mem = settings.memory_mb * 1024 * 1024
    cpu = max(1, int(settings.timeout_s) + 1)

    def apply() -> None:
        os.setsid()
        resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu))
        resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))

    return apply


def program_for(problem: Problem, completion: str) -> str:
    return problem.code_prefix + extract_code(completion) if problem.code_prefix else extract_code(completion)


def verify_one(problem: Problem, completion: str, settings: VerifierSettings) -> Verdict:
    program = program_for(problem, completion)
    tests = list(problem.tests) or [problem.test_program or ""]
    token = secrets.token_hex(16)
    with tempfile.TemporaryDirectory(prefix="pidistill-verify-") as work:
        spec_path = os.path.join(work, "spec.json")
        with open(spec_path, "w") as fh:
            json.dump({"setup": problem.test_setup, "program": program, "tests": tests}, fh)
        try:
            proc = subprocess.run(
                [sys.executable, "-I", "-c", _RUNNER, token, spec_path],
                cwd=work, capture_output=True, timeout=settings.timeout_s,
                preexec_fn=_limits(settings), stdin=subprocess.DEVNULL,
            )
        except subprocess.TimeoutExpired:
            return Verdict(False, 0.0, "timeout", f"Timed out after {settings.timeout_s:g}s.", program)
    out = proc.stdout.decode("utf-8", "replace")
    marker = out.rfind("\n" + token)
    if marker < 0:
        return Verdict(False, 0.0, "crashed", f"The program exited ({proc.returncode}) before the tests finished.", program)
    results = json.loads(out[marker + 1 + len(token):].splitlines()[0])
    passed = [bool(ok) for ok, _ in results]
    first_fail = next((msg for ok, msg in results if not ok), "")
    ok = all(passed) and len(passed) == len(tests)
    return Verdict(ok, float(ok), "ok" if ok else "failed_tests",
                   "" if ok else f"A test failed: {first_fail}", program, test_results=passed)


def verify_batch(items: Sequence[tuple[Problem, str]], settings: VerifierSettings) -> list[Verdict]:
    from tqdm import tqdm

    return [verify_one(p, c, settings) for p, c in tqdm(items, desc="verify code", disable=not settings.progress, mininterval=2)]
