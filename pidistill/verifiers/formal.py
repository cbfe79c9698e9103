"""Formal proofs: (header, statement, proof) -> valid / sorry / error / timeout, with the checker's word
and soundness checks on top of it.

The checker never sees the model's file. The checked file is rebuilt from the dataset's exact
header and theorem statement plus the proof the model wrote (``extract_proof``), so a completion
that restates, weakens or renames the theorem proves nothing: if its code block carries a
``theorem <name>`` whose statement is not the dataset's, the sample fails as ``statement_changed``.
Before the checker runs, the proof is rejected when it contains ``sorry``/``admit``, declares an
axiom, or leaves the proof to add commands of its own at the top level (new declarations,
options, ``#exit``...). After it, the theorem's axioms (Lean's ``#print axioms``, appended to every
checked file) must be among the standard ones: a proof that reaches ``sorryAx``, the compiler's
``Lean.ofReduceBool`` (``native_decide``) or any axiom of its own fails.

A verdict passes only when the checker answered ``valid``; a timeout or a failure of the checker on
that proof (a REPL error) is never a pass. A checker that cannot be reached at all (a
``server_error`` after the client's retries) stops the batch with ``CheckerUnavailable``: its
samples were not judged, and a pass rate that counted them as failures would be a made-up number. The checker is the config's ``verifier.checker``:
``lean-server`` (a kimina-lean-server, ``pidistill.verifiers.lean_server``) at
``verifier.server_url``, or one the job starts from the installation ``verifier.lean_server`` names
(``pidistill.verifiers.lean_process``), for Lean 4 problems, or ``coq`` (``coqc``, ``pidistill.verifiers.coq``)
for the demo's Coq problems (``meta.language: coq``). Without one, verification stops with an
error: there is no fallback that guesses.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Protocol, Sequence

from pidistill.verifiers import Verdict, VerifierSettings

if TYPE_CHECKING:
    from pidistill.problems import Problem

STATUSES = ("valid", "sorry", "error", "timeout", "repl_error", "server_error")
ALLOWED_AXIOMS = frozenset({"propext", "Classical.choice", "Quot.sound"})
MAX_FEEDBACK = 1500  # characters of checker messages kept as a verdict's feedback (the type-checker PI)

_FENCE = re.compile(r"```[ \t]*(?:lean4|lean)?[ \t]*\n(.*?)(?:```|\Z)", re.DOTALL)
_WS = re.compile(r"\s+")
_FORBIDDEN_WORDS = re.compile(r"(?<![\w.'])(sorry|admit|axiom|axioms|implemented_by|extern|unsafe)(?![\w'])")
# a line that starts a command ends the tactic block (Lean parses the command whatever its
# indentation) and adds to the file: not a proof's business. `open ... in` and `set_option ... in`
# scope a tactic and stay allowed.
_COMMAND = re.compile(
    r"^[ \t]*(theorem|lemma|def|abbrev|instance|example|opaque|structure|class|inductive|macro|macro_rules|syntax|"
    r"elab|notation|infix|infixl|infixr|prefix|postfix|namespace|section|end|attribute|variable|universe|import|"
    r"noncomputable|private|protected|mutual|deriving|initialize|local|scoped|run_cmd)(?![\w'])|^[ \t]*(#\w+|@\[)",
    re.MULTILINE)
_SCOPING = re.compile(r"^[ \t]*(open|set_option)\b(?!.*\bin\b)", re.MULTILINE)
_DEBUG_OPTION = re.compile(r"set_option\s+(debug\.|trust|compiler\.)")
_AXIOMS = re.compile(r"'(?P<name>[^']+)' depends on axioms: \[(?P<axioms>[^\]]*)\]")
_NO_AXIOMS = re.compile(r"'(?P<name>[^']+)' does not depend on any axioms")


class CheckerUnavailable(ConnectionError):
    """The checker could not judge some proofs (not the proofs' fault): nothing is written."""


@dataclass
class CheckResult:
    """What a checker said of one file: a status of ``STATUSES``, its messages
    (``{"severity", "pos", "data"}``), the time it took, and a detail for the non-Lean statuses."""

    status: str
    messages: list[dict] = field(default_factory=list)
    time_s: float | None = None
    detail: str = ""


class FormalChecker(Protocol):
    name: str
    language: str  # the problems' meta.language it checks

    def check(self, snippets: Sequence[tuple[str, str]]) -> list[CheckResult]:
        """One result per ``(id, code)`` snippet, in order."""


def _norm(text: str) -> str:
    return _WS.sub(" ", text).strip()


def theorem_name(problem: Problem) -> str:
    return problem.meta.get("name") or problem.id


def restated_proof(completion: str, fence: re.Pattern, statement: str, named: re.Pattern, any_theorem: re.Pattern,
                   proof_start: re.Pattern, canon) -> tuple[str | None, str]:
    """The proof text of a completion, for any proof language: in its last code block (``fence``;
    without one, the completion), what follows ``proof_start`` when the block restates the theorem
    (``named``: then ``canon`` of the restated statement must equal ``canon(statement)``), else the
    whole block; a block declaring another theorem (``any_theorem``) is ``statement_changed``."""
    blocks = fence.findall(completion)
    text = blocks[-1] if blocks else completion
    hit = named.search(text)
    if hit:
        rest = text[hit.start():]
        end = proof_start.search(rest)
        if not end or canon(rest[:end.end()]) != canon(statement):
            return None, "statement_changed"
        return rest[end.end():], ""
    if any_theorem.search(text):
        return None, "statement_changed"
    return text, ""


def extract_proof(problem: Problem, completion: str) -> tuple[str | None, str]:
    """(proof, "") or (None, reason). The proof is what follows the statement's ``:= by`` in the last
    Lean code block when the block restates the theorem (it must be the dataset's statement,
    whitespace aside), else the block (or, without a block, the completion) itself."""
    name = re.escape(theorem_name(problem))
    proof, reason = restated_proof(completion, _FENCE, problem.meta["statement"],
                                   re.compile(rf"(?m)^\s*(theorem|lemma)\s+{name}(?![\w'.])"),
                                   re.compile(r"(?m)^\s*(theorem|lemma)\s"), re.compile(r":=\s*by\b"),
                                   lambda text: _norm(text).replace("lemma ", "theorem ", 1))
    if proof is None:
        return None, reason
    proof = proof.strip("\n")
    return (proof, "") if proof.strip() else (None, "no_proof")


def soundness_problems(proof: str) -> list[str]:
    """Why ``proof`` may not go to the checker (empty: it may)."""
    code = _strip_comments(proof)
    found = [f"uses `{word}`" for word in sorted({m.group(1) for m in _FORBIDDEN_WORDS.finditer(code)})]
    if _COMMAND.search(code) or _SCOPING.search(code):
        found.append("adds a command of its own (a proof is the tactic block only)")
    if _DEBUG_OPTION.search(code):
        found.append("sets a debug or trust option")
    return found


def _strip_comments(text: str) -> str:
    text = re.sub(r"/-.*?-/", " ", text, flags=re.DOTALL)
    return re.sub(r"--[^\n]*", " ", text)


def _indent(proof: str) -> str:
    """A tactic block on its own lines, indented under the statement (a one-line proof stays as is)."""
    lines = proof.split("\n")
    if len(lines) == 1:
        return "  " + lines[0].strip()
    width = min((len(line) - len(line.lstrip()) for line in lines if line.strip()), default=0)
    return "\n".join(("  " + line[width:]) if line.strip() else "" for line in lines)


def file_header(problem: Problem) -> str:
    """The dataset's header, ending in a newline unless empty (every checked file starts with it)."""
    header = problem.meta["header"]
    return header + "\n" if header and not header.endswith("\n") else header


def lean_file(problem: Problem, proof: str) -> str:
    """The file the checker sees: the dataset's header and statement, the proof, ``#print axioms``."""
    return f"{file_header(problem)}{problem.meta['statement']}\n{_indent(proof)}\n\n#print axioms {theorem_name(problem)}\n"


def axioms_of(messages: Sequence[dict], name: str) -> list[str] | None:
    """The axioms ``#print axioms name`` reported (None: it reported nothing)."""
    for m in messages:
        data = str(m.get("data", ""))
        hit = _AXIOMS.search(data)
        if hit and hit.group("name") == name:
            return sorted(a.strip() for a in hit.group("axioms").split(",") if a.strip())
        hit = _NO_AXIOMS.search(data)
        if hit and hit.group("name") == name:
            return []
    return None


def lean_outline_file(problem: Problem, outline: str) -> str:
    """The file a proof outline is checked as (``pidistill.skeletons``): its holes are ``sorry``s."""
    return f"{file_header(problem)}{problem.meta['statement']}\n{_indent(outline)}\n"


_SORRY = re.compile(r"(?<![\w.'])sorry(?![\w'])")


def lean_holes(proof: str) -> int:
    return len(_SORRY.findall(_strip_comments(proof)))


@dataclass(frozen=True)
class Language:
    """What the verifier does differently per proof language; ``hole`` is the word that leaves a
    goal open, which an outline (``pidistill.skeletons``) has and a proof may not."""

    name: str
    extract_proof: Callable[[Problem, str], tuple[str | None, str]]
    soundness_problems: Callable[[str], list[str]]
    build_file: Callable[[Problem, str], str]
    axioms_of: Callable[[Sequence[dict], str], list[str] | None]
    allowed_axioms: frozenset
    hole: str
    count_holes: Callable[[str], int]
    build_outline: Callable[[Problem, str], str]


LEAN4 = Language("lean4", extract_proof, soundness_problems, lean_file, axioms_of, ALLOWED_AXIOMS, "sorry", lean_holes,
                 lean_outline_file)


def language_of(problem: Problem) -> Language:
    name = problem.meta.get("language", "lean4")
    if name == "lean4":
        return LEAN4
    if name == "coq":
        from pidistill.verifiers import coq

        return Language("coq", coq.extract_proof, coq.soundness_problems, coq.build_file, coq.axioms_of,
                        frozenset(problem.meta.get("allowed_axioms", ())), "admit", coq.count_holes,
                        coq.build_outline)
    raise ValueError(f"problem {problem.id!r}: meta.language {name!r} (known: lean4, coq)")


def _feedback(messages: Sequence[dict]) -> str:
    """The checker's errors (then warnings) as the model may read them: the type-checker PI."""
    lines = []
    for severity in ("error", "warning"):
        for m in messages:
            if m.get("severity") == severity:
                pos = m.get("pos") or {}
                where = f" at line {pos['line']}, column {pos.get('column', '?')}" if "line" in pos else ""
                lines.append(f"{severity}{where}: {m.get('data', '')}")
    return "\n".join(lines)[:MAX_FEEDBACK]


def verdict_from(problem: Problem, result: CheckResult) -> Verdict:
    """The verdict of a checked proof: a pass needs ``valid``, no sorry, and only standard axioms."""
    # (no time here: a verdict is data, and a rebuild must give the same bytes; verify_batch logs it)
    extra = {"checker_status": result.status}
    if result.status != "valid":
        reason = {"sorry": "sorry", "error": "checker_error", "timeout": "timeout",
                  "repl_error": "checker_failed", "server_error": "checker_failed"}.get(result.status, "checker_failed")
        feedback = _feedback(result.messages) or result.detail
        return Verdict(False, 0.0, reason, feedback[:MAX_FEEDBACK], extra={**extra, "detail": result.detail[:300]})
    language = language_of(problem)
    axioms = language.axioms_of(result.messages, theorem_name(problem))
    if axioms is None:
        return Verdict(False, 0.0, "no_axioms_report", "the checker did not report the theorem's axioms",
                       extra={**extra, "axioms": None})
    bad = sorted(set(axioms) - language.allowed_axioms)
    if bad:
        return Verdict(False, 0.0, "nonstandard_axioms", f"the proof depends on {', '.join(bad)}",
                       extra={**extra, "axioms": axioms})
    return Verdict(True, 1.0, "ok", "", extra={**extra, "axioms": axioms})


def checker_for(settings: VerifierSettings) -> FormalChecker:
    """The checker the config names (``verifier.checker``); none or an unknown one is an error."""
    if settings.checker == "lean-server":
        from pidistill.verifiers.lean_server import LeanServer

        if settings.lean_server:
            from pidistill.verifiers.lean_process import ManagedLeanServer, installation_dir

            return ManagedLeanServer(installation_dir(settings.lean_server), timeout_s=settings.timeout_s,
                                     retries=settings.retries, repls=settings.workers)
        if not settings.server_url:
            raise ValueError("verifier.checker is lean-server but neither verifier.server_url (the URL of a running "
                             "kimina-lean-server) nor verifier.lean_server (an installation each verification job "
                             "starts) is set (see README, 'Formal proofs on the cluster')")
        return LeanServer(settings.server_url, timeout_s=settings.timeout_s, retries=settings.retries)
    if settings.checker == "coq":
        from pidistill.verifiers.coq import CoqChecker

        return CoqChecker(timeout_s=settings.timeout_s, workers=settings.workers, memory_mb=max(settings.memory_mb, 2048))
    raise ValueError(f"verifier.checker {settings.checker!r}: formal problems need a real proof checker "
                     "(lean-server with verifier.server_url, or coq); no pass rate comes without one")


def check_each_file_once(checker: FormalChecker, codes: Sequence[str], what: str) -> dict[str, CheckResult]:
    """The checker's result for each distinct file of ``codes``, in one batch. n samples of one
    problem often write the same proof: each file is checked once, and its result is every such
    sample's (the checker sees nothing but the file). A file the checker could not judge stops the
    batch (``CheckerUnavailable``): nothing is written for it."""
    files = sorted(set(codes))
    results = checker.check([(f"{k}", code) for k, code in enumerate(files)]) if files else []
    if len(results) != len(files):
        raise RuntimeError(f"checker {checker.name} answered {len(results)} results for {len(files)} snippets")
    lost = [r for r in results if r.status == "server_error"]
    if lost:
        raise CheckerUnavailable(f"checker {checker.name}: {len(lost)} of {len(results)} {what} could not be checked "
                                 f"({lost[0].detail}); nothing written: fix the checker and rerun the job")
    return dict(zip(files, results))


def verify_batch(items: Sequence[tuple[Problem, str]], settings: VerifierSettings,
                 checker: FormalChecker | None = None) -> list[Verdict]:
    """Verdicts for (formal problem, completion) pairs, in input order; the proofs that survive the
    extraction and soundness checks go to the checker in one batch, each distinct file once."""
    checker = checker or checker_for(settings)
    out: list[Verdict | None] = [None] * len(items)
    where = []
    for i, (problem, completion) in enumerate(items):
        language = language_of(problem)
        if language.name != checker.language:
            raise ValueError(f"problem {problem.id!r} is {language.name}; checker {checker.name} checks {checker.language}")
        proof, reason = language.extract_proof(problem, completion)
        if proof is None:
            out[i] = Verdict(False, 0.0, reason, "the proof must be for the theorem as stated"
                             if reason == "statement_changed" else "no proof found")
            continue
        problems = language.soundness_problems(proof)
        if problems:
            out[i] = Verdict(False, 0.0, "unsound", "; ".join(problems), extracted=proof)
            continue
        where.append((i, proof, language.build_file(problem, proof)))
    started = time.perf_counter()
    by_file = check_each_file_once(checker, [code for _, _, code in where], "proofs")
    if by_file:
        took = time.perf_counter() - started
        logging.getLogger(__name__).info("%s checked %d distinct proof files in %.2f s (%.4f s per proof)",
                                         checker.name, len(by_file), took, took / len(by_file))
    for i, proof, code in where:
        v = verdict_from(items[i][0], by_file[code])
        v.extracted = proof
        v.extra["checker"] = checker.name
        out[i] = v
    return [v for v in out if v is not None]


def check_outlines(problems: Sequence[Problem], outlines: Sequence[dict], settings: VerifierSettings,
                   checker: FormalChecker | None = None) -> list[dict]:
    """Proof outlines judged as outlines (``pidistill.skeletons``), one record per outline row
    (``id``, ``completion``), in id order: ``skeleton`` (the outline's tactic text when it is a valid
    outline, else None), ``reason`` (``ok`` or why not), the checker's status and its errors.

    The file is rebuilt from the dataset's header and statement as for a proof (a restated or
    weakened theorem is ``statement_changed``); every soundness check of a proof applies except the
    language's hole; an outline needs at least one hole (``no_hole``: a complete proof is the
    answer, not an outline); and the checker must accept the file with its holes, without an error.
    Each distinct file is checked once; a checker that cannot be reached stops the batch."""
    by_id = {p.id: p for p in problems}
    out, pending = [], []
    for row in sorted(outlines, key=lambda r: r["id"]):
        problem = by_id[row["id"]]
        language = language_of(problem)
        record = {"id": row["id"], "skeleton": None, "reason": "", "checker_status": None, "feedback": ""}
        out.append(record)
        proof, reason = language.extract_proof(problem, row.get("completion") or "")
        if proof is None:
            record["reason"] = reason
            continue
        if language.count_holes(proof) == 0:
            record["reason"] = "no_hole"
            continue
        found = [p for p in language.soundness_problems(proof) if p != f"uses `{language.hole}`"]
        if found:
            record["reason"], record["feedback"] = "unsound", "; ".join(found)
            continue
        pending.append((record, proof, language.build_outline(problem, proof)))
    if not pending:
        return out
    by_file = check_each_file_once(checker or checker_for(settings), [code for _, _, code in pending], "outlines")
    for record, proof, code in pending:
        result = by_file[code]
        errors = [m for m in result.messages if m.get("severity") == "error"]
        record["checker_status"] = result.status
        if result.status in ("valid", "sorry") and not errors:
            record["skeleton"], record["reason"] = proof, "ok"
        else:
            record["reason"] = {"timeout": "timeout", "error": "checker_error"}.get(result.status, "checker_failed")
            record["feedback"] = (_feedback(result.messages) or result.detail)[:MAX_FEEDBACK]
    return out
