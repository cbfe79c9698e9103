"""Coq, the demo's proof checker: the formal verifier's language pieces for Coq and a checker that
runs ``coqc`` (Debian's ``coq``, installed by ``make coq``).

A Coq formal problem's ``statement`` is ``Theorem name : ... .`` followed by ``Proof.``; the model
writes the tactics, and the checked file is the dataset's header and statement, those tactics,
``Qed.`` and ``Print Assumptions name.`` (whose answer is the theorem's axioms: a proof must be
"Closed under the global context", or use only the axioms the problem allows). A proof is
tactics only: a sentence that starts with a capitalised word is a vernacular command (``Admitted``,
``Axiom``, ``Extraction``, ``Redirect``, ``Load``, ``Require``...) and is refused before the checker
runs, as are ``admit`` and ``give_up``.

``coqc`` runs once per proof in a fresh temporary directory, with a wall-clock timeout (then the
status is ``timeout``), an address-space limit and no input; ``workers`` proofs at a time.
"""

from __future__ import annotations

import os
import re
import resource
import shutil
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Sequence

from pidistill.verifiers.formal import CheckResult, file_header, restated_proof, theorem_name

if TYPE_CHECKING:
    from pidistill.problems import Problem

_FENCE = re.compile(r"```[ \t]*(?:coq|v)?[ \t]*\n(.*?)(?:```|\Z)", re.DOTALL)
_WS = re.compile(r"\s+")
_COMMENT = re.compile(r"\(\*.*?\*\)", re.DOTALL)
_END = re.compile(r"\b(Qed|Defined)\s*\.\s*$")
_FORBIDDEN_TACTICS = re.compile(r"(?<![\w'])(admit|give_up)(?![\w'])")
# sentence starts: after the start or a period followed by space, bullets and braces aside
_SENTENCE_START = re.compile(r"(?:^|\.\s)[\s\-+*{}]*([A-Z][\w']*)")
_ERROR = re.compile(r'File "[^"]*", line (\d+), characters (\d+)-\d+:\n(Error:.*?)(?=\nFile "|\Z)', re.DOTALL)
_ASSUMPTIONS = re.compile(r"Axioms:\n(.*)", re.DOTALL)


def _norm(text: str) -> str:
    return _WS.sub(" ", _COMMENT.sub(" ", text)).strip()


_KINDS = r"(Theorem|Lemma|Fact|Remark|Corollary|Proposition|Example)"


def _canon(statement: str) -> str:
    return re.sub(rf"^{_KINDS}\b", "Theorem", _norm(statement))


def extract_proof(problem: Problem, completion: str) -> tuple[str | None, str]:
    """(tactics, "") or (None, reason), as for Lean: when the last code block restates the theorem
    (``Theorem name``), its statement must be the dataset's and the tactics are what follows
    ``Proof.``; a trailing ``Qed.``/``Defined.`` is the file's, not the proof's."""
    name = re.escape(theorem_name(problem))
    proof, reason = restated_proof(completion, _FENCE, problem.meta["statement"],
                                   re.compile(rf"(?m)^\s*{_KINDS}\s+{name}\b"),
                                   re.compile(rf"(?m)^\s*({_KINDS[1:-1]}|Goal)\s"), re.compile(r"\bProof\s*\."), _canon)
    if proof is None:
        return None, reason
    proof = re.sub(r"^\s*Proof\s*\.", "", _END.sub("", proof.strip())).strip()  # (Coq ignores indentation)
    return (proof, "") if proof else (None, "no_proof")


def soundness_problems(proof: str) -> list[str]:
    code = _COMMENT.sub(" ", proof)
    found = [f"uses `{w}`" for w in sorted({m.group(1) for m in _FORBIDDEN_TACTICS.finditer(code)})]
    commands = sorted({m.group(1) for m in _SENTENCE_START.finditer(code)})
    if commands:
        found.append(f"runs a command ({', '.join(commands)}): a proof is tactics only")
    return found


def build_file(problem: Problem, proof: str) -> str:
    body = "\n".join("  " + line.strip() if line.strip() else "" for line in proof.split("\n"))
    return f"{file_header(problem)}{problem.meta['statement']}\n{body}\nQed.\nPrint Assumptions {theorem_name(problem)}.\n"


def axioms_of(messages: Sequence[dict], name: str) -> list[str] | None:
    for m in messages:
        data = str(m.get("data", ""))
        if "Closed under the global context" in data:
            return []
        hit = _ASSUMPTIONS.search(data)
        if hit:
            return sorted({line.split(":")[0].strip() for line in hit.group(1).splitlines()
                           if line.strip() and not line.startswith(" ") and ":" in line})
    return None


class CoqChecker:
    """``coqc`` on each file, ``workers`` at a time; statuses valid / error / timeout."""

    name = "coq"
    language = "coq"

    def __init__(self, coqc: str = "coqc", *, timeout_s: float = 10.0, workers: int = 1, memory_mb: int = 2048):
        found = shutil.which(coqc)
        if not found:
            raise ValueError(f"verifier.checker coq: {coqc!r} not found on PATH (install it: `make coq`, Debian's coq)")
        self.coqc, self.timeout_s, self.workers, self.memory_mb = found, timeout_s, max(1, workers), memory_mb

    def _limits(self) -> None:
        limit = self.memory_mb << 20
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        os.setsid()

    def _one(self, code: str) -> CheckResult:
        with tempfile.TemporaryDirectory(prefix="pidistill-coq-") as work:
            path = os.path.join(work, "Proof.v")
            with open(path, "w") as fh:
                fh.write(code)
            t0 = time.perf_counter()
            try:
                proc = subprocess.run([self.coqc, "-q", "Proof.v"], cwd=work, capture_output=True, text=True,
                                      timeout=self.timeout_s, stdin=subprocess.DEVNULL, preexec_fn=self._limits)
            except subprocess.TimeoutExpired:
                return CheckResult("timeout", time_s=self.timeout_s, detail=f"coqc timed out after {self.timeout_s:g} s")
            took = round(time.perf_counter() - t0, 3)
        out = proc.stdout + proc.stderr
        errors = [{"severity": "error", "pos": {"line": int(m.group(1)), "column": int(m.group(2))},
                   "data": m.group(3).strip()} for m in _ERROR.finditer(out)]
        if proc.returncode != 0:
            if not errors:  # killed (memory limit) or a message without a position: the proof's failure too
                errors = [{"severity": "error", "pos": {}, "data": f"coqc exited {proc.returncode}: {out[-300:].strip()}"}]
            return CheckResult("error", errors, took)
        return CheckResult("valid", [{"severity": "info", "data": proc.stdout.strip()}], took)

    def check(self, snippets: Sequence[tuple[str, str]]) -> list[CheckResult]:
        with ThreadPoolExecutor(self.workers) as pool:
            return list(pool.map(lambda s: self._one(s[1]), snippets))
