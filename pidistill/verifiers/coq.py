"""Coq, the demo's proof checker: the formal verifier's language pieces for Coq and a checker that
runs ``coqc`` (Debian's ``coq``, installed by ``make coq``).

A Coq formal problem's ``statement`` is ``Theorem name : ... .`` followed by ``Proof.``; the model
writes the tactics, and the checked file is the dataset's header and statement, those tactics,
``Qed.`` and ``Print Assumptions name.`` (whose answer is the theorem's axioms: a proof must be
"Closed under the global context", or use only the axioms the problem allows). A proof is
tactics only: a sentence that starts with a capitalised word is a vernacular command (``Admitted``,
``Axiom``, ``Extraction``, ``Redirect``, ``Load``, ``Require``...) and is refused before the checker
runs, as are ``admit`` and ``give_up``.

Proofs are checked in batches by one ``coqtop`` process each (``workers`` at a time): Coq's
prelude loads once per batch, not once per proof, which is what makes the demo's few hundred proofs
per job cheap. Before each file the batch runs ``Reset Initial`` (the environment back to the
prelude: no proof sees another's definitions or open goals), ``Set Default Timeout`` (a proof that
runs too long fails with ``timeout``) and a marker definition whose name carries a random nonce,
so a proof cannot forge the boundary between its output and the next proof's (it is tactics only,
and it is written before the nonce exists). The process has an address-space limit and a wall-clock
limit for the whole batch; a batch that dies or overruns is checked again one ``coqc`` per file,
each in a fresh temporary directory with its own timeout.
"""

from __future__ import annotations

import math
import os
import re
import resource
import secrets
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
_PROMPT = re.compile(r"^[\w']* < ", re.MULTILINE)  # coqtop's prompt before each answer
_TOPLEVEL_ERROR = re.compile(r"(Error:.*?)(?=\n\s*\n|\Z)", re.DOTALL)
BATCH = 200  # files per coqtop process


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


def build_outline(problem: Problem, outline: str) -> str:
    """The file a proof outline is checked as (``pidistill.skeletons``): its holes are ``admit``s,
    closed by ``Admitted`` (Coq refuses ``Qed`` with goals given up)."""
    body = "\n".join("  " + line.strip() if line.strip() else "" for line in outline.split("\n"))
    return f"{file_header(problem)}{problem.meta['statement']}\n{body}\nAdmitted.\n"


_ADMIT = re.compile(r"(?<![\w'])admit(?![\w'])")


def count_holes(proof: str) -> int:
    return len(_ADMIT.findall(_COMMENT.sub(" ", proof)))


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

    def __init__(self, coqc: str = "coqc", *, timeout_s: float = 10.0, workers: int = 1, memory_mb: int = 2048,
                 batch: int = BATCH):
        found = shutil.which(coqc)
        if not found:
            raise ValueError(f"verifier.checker coq: {coqc!r} not found on PATH (install it: `make coq`, Debian's coq)")
        self.coqc, self.timeout_s, self.workers, self.memory_mb = found, timeout_s, max(1, workers), memory_mb
        self.coqtop = shutil.which("coqtop", path=os.path.dirname(found)) or shutil.which("coqtop")
        self.batch = max(1, batch)

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

    def _batch(self, codes: Sequence[str]) -> list[CheckResult] | None:
        """Every file of ``codes`` through one coqtop (None: the process died or overran)."""
        if not self.coqtop:
            return None
        nonce = secrets.token_hex(8)
        mark = f"pidistill_mark_{nonce}_"
        seconds = max(1, math.ceil(self.timeout_s))
        script = "".join(f"Reset Initial.\nSet Default Timeout {seconds}.\nDefinition {mark}{k} := 0.\n{code}\n"
                         for k, code in enumerate(codes)) + f"Reset Initial.\nDefinition {mark}end := 0.\n"
        t0 = time.perf_counter()
        try:
            # errors go to stderr: one stream keeps each in its proof's part
            proc = subprocess.run([self.coqtop, "-q"], input=script, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                  text=True, timeout=self.timeout_s * len(codes) + 30, preexec_fn=self._limits)
        except subprocess.TimeoutExpired:
            return None
        took = round((time.perf_counter() - t0) / len(codes), 3)  # the batch's time, shared evenly
        parts = re.split(rf"{re.escape(mark)}(\d+|end) is defined", proc.stdout)
        found = dict(zip(parts[1::2], parts[2::2]))
        if proc.returncode != 0 or "end" not in found or any(str(k) not in found for k in range(len(codes))):
            return None
        out = []
        for k in range(len(codes)):
            text = _PROMPT.sub("", found[str(k)]).strip()
            errors = [e.strip() for e in _TOPLEVEL_ERROR.findall(text)]
            if any(e.startswith("Error: Timeout!") for e in errors):
                out.append(CheckResult("timeout", time_s=took, detail=f"Coq's timeout of {seconds} s"))
            elif errors:
                out.append(CheckResult("error", [{"severity": "error", "pos": {}, "data": e} for e in errors], took))
            else:
                out.append(CheckResult("valid", [{"severity": "info", "data": text}], took))
        return out

    def check(self, snippets: Sequence[tuple[str, str]]) -> list[CheckResult]:
        codes = [code for _, code in snippets]
        chunks = [codes[i:i + self.batch] for i in range(0, len(codes), self.batch)]

        def run(chunk: list[str]) -> list[CheckResult]:
            return self._batch(chunk) or [self._one(code) for code in chunk]

        with ThreadPoolExecutor(self.workers) as pool:
            return [r for results in pool.map(run, chunks) for r in results]
