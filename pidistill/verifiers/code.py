"""Code verifier: extract the program from a completion, run it isolated, judge it from outside.

How a sample is judged (details in docs/code-verifier.md):
  * ``extract_code`` pulls the program out of a completion (markdown fences, prose around the
    code, a restated signature, a bare HumanEval-style body continuation).
  * The candidate program runs in its own sandboxed process (``sandbox``); the tests run in a
    separate trusted judge process that calls the candidate through a plain-data channel
    (``code_runner``, ``code_wire``). A pass means the judge ran every test to completion.
  * Zygotes: ``settings.workers`` pre-imported processes fork one judge + one candidate per sample.

Feedback never quotes a test that is not public (``VerifierSettings.hide_private_tests``).
"""

from __future__ import annotations

import ast
import re
import textwrap
from typing import Sequence

from pidistill.problems import Problem
from pidistill.verifiers import Verdict, VerifierSettings

_FENCE = re.compile(r"^[ \t]*```[ \t]*([A-Za-z0-9_+-]*)[^\n]*\n(.*?)(?:^[ \t]*```[ \t]*$|\Z)", re.DOTALL | re.MULTILINE)
_CODE_START = re.compile(r"^(def |async def |class |import |from \S+ import |@|[A-Za-z_][A-Za-z0-9_]* *=[^=])")
_PY_TAGS = {"", "python", "py", "python3", "py3", "Python"}

# Settings this verifier reads beyond the shared ones; VerifierSettings may define them (same names).
OPTION_DEFAULTS = {
    "isolation": "auto",  # "auto" | "namespaces" | "rlimits"
    "nproc": 8,  # processes/threads a sample may have at once
    "output_kb": 1024,  # stdout+stderr+files a sample may write
    "hide_private_tests": True,  # feedback never quotes a non-public test
}


def option(settings: VerifierSettings, name: str):
    return getattr(settings, name, OPTION_DEFAULTS[name])


def _parses(code: str) -> bool:
    import warnings

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ast.parse(code)
    except (SyntaxError, ValueError):
        return False
    return True


def _defines(code: str, name: str | None) -> bool:
    if not name:
        return False
    return re.search(rf"^(async\s+)?def\s+{re.escape(name)}\s*\(", code, re.MULTILINE) is not None


def _syntax_error_line(code: str) -> int | None:
    """None if ``code`` parses, else the line the parser stopped at (0 when it does not say)."""
    import warnings

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ast.parse(code)
    except SyntaxError as exc:
        return exc.lineno or 0
    except (ValueError, RecursionError, MemoryError):  # NUL bytes, lone surrogates, nesting
        return 0
    return None


# How many prefixes ``_trim_prose`` parses at most: it jumps to the line each failure names, so
# ordinary completions need two or three; the bound keeps a multi-megabyte one linear.
TRIM_PARSES = 64


def _trim_prose(text: str) -> str:
    """Unfenced text: start at the first line that looks like code, drop trailing prose lines.

    The result is the longest run of lines from that start which parses. Rather than dropping one
    line at a time, each failed parse goes straight to the line the parser stopped at: a prefix
    that still holds that line but ends before the next stops there too."""
    lines = text.splitlines()
    if text[:1] in (" ", "\t") or _parses(text):
        return text  # valid Python as it stands, or a body continuation (HumanEval completion style)
    start = next((i for i, line in enumerate(lines) if _CODE_START.match(line)), None)
    if start is None:
        return text
    lines = lines[start:]
    end = len(lines)
    for _ in range(TRIM_PARSES):
        if end <= 0:
            break
        chunk = "\n".join(lines[:end])
        stopped = _syntax_error_line(chunk)
        if stopped is None:
            return chunk
        end = stopped if 0 < stopped < end else end - 1
    return "\n".join(lines)


def extract_code(completion: str, entry_point: str | None = None) -> str:
    """The program in a completion.

    Fenced blocks (python/py/untagged; an unterminated last fence counts) win over the text around
    them: the longest block that defines ``entry_point``, else the longest block. Without fences,
    leading and trailing prose is trimmed; an indented completion is kept as a body continuation.
    """
    text = completion.replace("\r\n", "\n")
    blocks = [body for tag, body in _FENCE.findall(text) if tag in _PY_TAGS or tag.lower() in _PY_TAGS]
    if blocks:
        defining = [b for b in blocks if _defines(b, entry_point)]
        code = max(defining or blocks, key=len)
    else:
        code = _trim_prose(text)
    code = code.strip("\n")
    if code and not code[:1].isspace() and not _parses(code) and _parses(textwrap.dedent(code)):
        code = textwrap.dedent(code)
    return code + "\n"


def program_for(problem: Problem, completion: str) -> str:
    """The program the candidate process runs: candidate prelude + code prefix + extracted code."""
    code = extract_code(completion, problem.entry_point)
    prelude = problem.meta.get("candidate_prelude") or ""
    if problem.code_prefix:
        if code[:1].isspace():  # continuation of the prompt's function body
            body = problem.code_prefix + code
        else:
            body = problem.code_prefix.rstrip("\n") + "\n\n" + code
    else:
        body = code
    return (prelude.rstrip("\n") + "\n" + body) if prelude else body


def _judge_prelude(problem: Problem) -> str:
    """Trusted code the judge runs before the tests: imports the tests rely on and the prompt's
    own helpers (HumanEval tests call e.g. ``poly`` from the prompt, never the candidate's copy)."""
    parts = [problem.meta.get("judge_prelude") or ""]
    if problem.code_prefix and _parses(problem.code_prefix):
        parts.append(problem.code_prefix)
    return "\n".join(p for p in parts if p)


def _limits(settings: VerifierSettings) -> dict:
    return {
        "memory_mb": settings.memory_mb,
        "cpu_s": max(1, int(settings.timeout_s + 0.999)),
        "output_kb": option(settings, "output_kb"),
        "nproc": option(settings, "nproc"),
    }


def job_for(problem: Problem, completion: str, settings: VerifierSettings) -> dict:
    return {
        "program": program_for(problem, completion),
        "prelude": _judge_prelude(problem),
        "test_setup": problem.test_setup,
        "tests": list(problem.tests),
        "public": [t for t in problem.public_tests if t not in problem.tests],
        "test_program": problem.test_program,
        "entry_point": problem.entry_point,
        "timeout_s": settings.timeout_s,
        "limits": _limits(settings),
    }


def _describe(outcome: dict, label: str, source: str | None, visible: bool) -> str:
    kind = outcome.get("kind")
    if kind == "timeout":
        return f"{label} timed out."
    if kind in ("crash", "protocol"):
        return f"{label}: the program died before the test finished."
    etype = outcome.get("type", "Error")
    head = f"{label} failed"
    if visible and source:
        head += f": {source.strip()[:300]}"
    lines = [head, f"{etype}: {outcome.get('msg', '')}".rstrip(": ") if visible or not outcome.get("remote") else etype]
    if kind == "assertion" and not visible:
        lines[-1] = "AssertionError (wrong answer)"
    frames = outcome.get("frames") or []
    if frames:
        lines.append("Traceback (your code, most recent call last):")
        lines += [f"  line {ln}, in {fn}: {text}" for ln, fn, text in frames[-3:]]
    return "\n".join(lines)[:800]


def verdict_from(problem: Problem, program: str, res: dict, settings: VerifierSettings) -> Verdict:
    """Turn the judge's raw outcomes into a Verdict (pass = every test ran to completion)."""
    # Verdicts are data: nothing here may depend on timing. Wall time is not recorded, and the
    # candidate's exit status only where the candidate died on its own (a crash decides the
    # reason); otherwise the judge kills it after the last test and whether it had already exited
    # is a race.
    extra = {"isolation": res.get("isolation", "?")}
    if "error" in res:  # infrastructure failure: a failed verdict with a reason, never an exception
        return Verdict(False, 0.0, "sandbox_error", "The verifier could not run this program.", program, extra={**extra, "error": res["error"]})
    out_limit = res.get("output_bytes", 0) >= option(settings, "output_kb") * 1024
    exit_desc = res.get("exit", "")
    if not res.get("loaded"):
        err = res.get("load_error") or {}
        etype = err.get("type", "Error")
        if etype == "timeout":
            return Verdict(False, 0.0, "timeout", f"Timed out after {settings.timeout_s:g}s while loading the program.", program, extra=extra)
        reason = {"SystemExit": "exit_during_load", "MemoryError": "memory_limit", "crash": _crash_reason(exit_desc, out_limit)}.get(etype, "load_error")
        if etype == "crash":
            extra["exit"] = exit_desc
        fb = _describe({**err, "remote": True, "kind": "crash" if etype == "crash" else "error"}, "Loading the program", None, True)
        if etype == "SyntaxError":
            fb = f"SyntaxError: {err.get('msg', '')}"[:400]
        n = len(problem.tests)
        return Verdict(False, 0.0, reason, fb, program, test_results=[False] * n if n else None, extra=extra)

    visible_set = set(problem.public_tests)
    hide = option(settings, "hide_private_tests")
    outcomes: list[tuple[dict, str, str | None, bool]] = []
    for i, (src, oc) in enumerate(zip(problem.tests, res.get("tests") or [])):
        visible = (src in visible_set) or not hide
        outcomes.append((oc, f"Test {i + 1} of {len(problem.tests)}" if visible else f"Hidden test {i + 1} of {len(problem.tests)}", src, visible))
    if problem.test_program is not None:
        oc = res.get("test_program") or {"ok": False, "kind": "crash"}
        outcomes.append((oc, "The test program" if not hide else "The hidden test program", problem.test_program, not hide))
    test_results = [bool(o["ok"]) for o, *_ in outcomes[: len(problem.tests)]] if problem.tests else None
    expected = len(problem.tests) + (problem.test_program is not None)
    passed = len(outcomes) == expected and all(o.get("ok") is True for o, *_ in outcomes)
    public_results = None
    pub_src = [t for t in problem.public_tests if t not in problem.tests]
    if problem.public_tests:
        by_src = {src: bool(oc["ok"]) for src, oc in zip(problem.tests, res.get("tests") or [])}
        by_src.update({src: bool(oc["ok"]) for src, oc in zip(pub_src, res.get("public") or [])})
        public_results = [by_src.get(t, False) for t in problem.public_tests]
        # what a multi-turn policy is told (µCode's feedback): the first failing public test in words
        outcome_of = {src: oc for src, oc in zip(problem.tests, res.get("tests") or [])}
        outcome_of.update(dict(zip(pub_src, res.get("public") or [])))
        failing = [(i, t) for i, t in enumerate(problem.public_tests) if not by_src.get(t, False)]
        if failing:
            i, src = failing[0]
            extra["public_feedback"] = _describe(outcome_of.get(src) or {"kind": "crash"},
                                                 f"Public test {i + 1} of {len(problem.public_tests)}", src, True)
        else:
            extra["public_feedback"] = f"All {len(problem.public_tests)} public test(s) passed."
    if res.get("missing_entry_point"):
        extra["missing_entry_point"] = res["missing_entry_point"]
    if passed:
        return Verdict(True, 1.0, "ok", f"All {expected} test(s) passed.", program, test_results, public_results, extra=extra)
    first = next((t for t in outcomes if not t[0].get("ok")), None)
    if first is None:
        return Verdict(False, 0.0, "incomplete", "Not every test ran.", program, test_results, public_results, extra=extra)
    oc, label, src, visible = first
    kinds = [o.get("kind") for o, *_ in outcomes if not o.get("ok")]
    if "timeout" in kinds:
        reason = "timeout"
    elif any(k in ("crash", "protocol") for k in kinds):
        reason = _crash_reason(exit_desc, out_limit)
        extra["exit"] = exit_desc
    elif out_limit:
        reason = "output_limit"
    elif any(o.get("type") == "MemoryError" for o, *_ in outcomes):
        reason = "memory_limit"
    elif all(k == "assertion" for k in kinds):
        reason = "wrong_answer"
    else:
        reason = "runtime_error"
    feedback = _describe(oc, label, src, visible)
    if res.get("missing_entry_point"):
        feedback = f"The program does not define {res['missing_entry_point']!r}.\n" + feedback
    ok_count = sum(1 for o, *_ in outcomes if o.get("ok"))
    extra["tests_passed"] = f"{ok_count}/{expected}"
    return Verdict(False, 0.0, reason, feedback, program, test_results, public_results, extra=extra)


def _crash_reason(exit_desc: str, out_limit: bool) -> str:
    if out_limit or exit_desc == "signal 25":
        return "output_limit"
    if exit_desc in ("signal 24", "signal 9"):
        return "resource_limit"
    return "crashed"


def verify_batch(items: Sequence[tuple[Problem, str]], settings: VerifierSettings) -> list[Verdict]:
    """Verdicts for (problem, completion) pairs, in input order. Never raises for a sample: a
    completion that is not judged (``text.judged_text``: none, too long) fails with its reason."""
    from tqdm import tqdm

    from pidistill.verifiers.sandbox import Pool
    from pidistill.verifiers.text import judged_text

    if not items:
        return []
    prepared = [judged_text(c) for _, c in items]
    out: list[Verdict | None] = [v for _, _, v in prepared]
    run = [i for i, (_, _, v) in enumerate(prepared) if v is None]
    jobs = [job_for(items[i][0], prepared[i][0], settings) for i in run]
    if not jobs:
        return out
    with Pool(min(max(1, settings.workers), len(jobs)), option(settings, "isolation")) as pool:
        with tqdm(total=len(jobs), desc=f"verify code [{pool.isolation}]", disable=not settings.progress, mininterval=2) as bar:
            results = pool.map(jobs, progress=bar.update)
        if settings.progress:
            import sys

            print(f"code verifier isolation: {pool.isolation} ({pool.detail})", file=sys.stderr)
    for i, job, res in zip(run, jobs, results):
        verdict = verdict_from(items[i][0], job["program"], res, settings)
        verdict.extra.update(prepared[i][1])
        out[i] = verdict
    return out
