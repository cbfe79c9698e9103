"""Retry conversations and the privileged information (PI) they may carry.

A failed first attempt is continued with a retry message: the domain's retry text ("Try again
carefully." for math, "Your solution failed the tests. Please try again with a different approach."
for code), optionally followed by PI rendered through the condition's template:

- ``none``: nothing ("try again").
- ``gold``: the problem's own gold answer (math) or canonical solution (code).
- ``gibberish``: a fixed meaningless string ("XYZZY").
- ``wrong``: another problem's gold, by a seeded derangement of the split (no problem keeps its own).
- ``tests``: the problem's own test suite (code).
- ``other_tests``: another problem's test suite, by the same kind of assignment (code).
- ``first_step``: the first step of the problem's reference solution (``first_step``); a problem
  whose solution has a single step gets no PI (that step would be the answer).
- ``hint``: a hint another model wrote for the problem without seeing the gold (the hints file of
  the ``sample_hints`` rule); a problem without a hint gets no PI.
- ``skeleton``: the problem's proof skeleton (formal problems: ``meta["skeleton"]``, the proof's
  outline with its holes); a problem without one gets no PI.

Three conditions depend on the failed attempt itself, not only on the problem (``attempt_pi``):

- ``feedback``: the verifier's feedback on that attempt (formal: the proof checker's error
  messages, the documents' "type-checker PI"; code: the failing tests' messages);
- ``heuristic``: a fixed rule-based diagnosis of that feedback (``heuristic_diagnosis``: the kind
  of error, in one sentence; no model writes it);
- ``diagnosis``: a diagnosis another model wrote after reading the problem, the attempt and the
  verifier's feedback (the diagnoses file of the ``sample_diagnoses`` rule).

``max_chars`` cuts any PI text to that many characters (a checker's messages can be longer than
a small model's context).

The donors of ``wrong`` and ``other_tests`` come from ``pidistill.pi_assignment`` (an assignment
in which no problem gets a PI the verifier judges equivalent to its own); without donors the
seeded derangement of the split is used, which can collide.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from pidistill.problems import Problem
from pidistill.seeding import derangement, derive_seed

PI_CONDITIONS = ("none", "gold", "gibberish", "wrong", "tests", "other_tests", "first_step", "hint", "skeleton",
                 "feedback", "heuristic", "diagnosis")
CODE_ONLY = ("tests", "other_tests")
PER_ATTEMPT = ("feedback", "heuristic", "diagnosis")  # the PI depends on the failed attempt

DEFAULT_RETRY_TEXT = {
    "math": "Try again carefully.",
    "code": "Your solution failed the tests. Please try again with a different approach.",
    "formal": "Your proof does not check. Please try again.",
}
DEFAULT_TEMPLATES = {
    "gold": "The correct answer is: {pi}",
    "gibberish": "{pi}",
    "wrong": "The correct answer is: {pi}",
    "tests": "The tests are:\n{pi}",
    "other_tests": "The tests are:\n{pi}",
    "first_step": "The first step is: {pi}",
    "hint": "A hint: {pi}",
    "skeleton": "A proof outline (fill in each admit):\n{pi}",
    "feedback": "The checker says:\n{pi}",
    "heuristic": "A diagnosis: {pi}",
    "diagnosis": "A diagnosis: {pi}",
}

# (pattern in the verifier's feedback, the heuristic diagnosis), first match wins: Coq's and Lean 4's
# wording of the same kinds of error
HEURISTICS = (
    (re.compile(r"incomplete proof|unsolved goals|not been proved|Some goals", re.I),
     "Some goals are still open at the end: every case needs its own proof."),
    (re.compile(r"No such goal|no goals|No more subgoals", re.I),
     "The proof goes on after every goal is closed: drop the extra steps."),
    (re.compile(r"Unable to unify|type mismatch|not convertible|does not match|failed to unify", re.I),
     "The two sides are not equal by computation: the goal needs induction or rewriting."),
    (re.compile(r"was not found|unknown (identifier|constant)|not found in the current environment", re.I),
     "The proof uses a name that does not exist here."),
    (re.compile(r"No applicable tactic|failed|Tactic failure|cannot|Cannot", re.I),
     "That tactic does not apply to this goal: try another one."),
    (re.compile(r"timed? ?out|timeout|deterministic", re.I),
     "The proof takes too long to check: use a more direct argument."),
)
HEURISTIC_FALLBACK = "The proof does not check: try a different approach."


@dataclass
class RetrySpec:
    """How a method retries: its PI condition, retry text, templates and K retries per failure."""

    pi: str = "none"
    k: int = 1
    retry_text: dict = field(default_factory=lambda: dict(DEFAULT_RETRY_TEXT))
    templates: dict = field(default_factory=lambda: dict(DEFAULT_TEMPLATES))
    gibberish: str = "XYZZY"
    max_chars: int | None = None

    @classmethod
    def build(cls, pi: str, k: int = 1, retry_texts: dict[str, str] | None = None, pi_template: str | None = None,
              gibberish: str = "XYZZY", max_chars: int | None = None) -> "RetrySpec":
        """A spec from the defaults plus overrides: per-domain retry texts, the condition's template."""
        retry_text = {**DEFAULT_RETRY_TEXT, **{d: t for d, t in (retry_texts or {}).items() if t}}
        templates = dict(DEFAULT_TEMPLATES)
        if pi_template:
            templates[pi] = pi_template
        return cls(pi=pi, k=k, retry_text=retry_text, templates=templates, gibberish=gibberish, max_chars=max_chars)

    def __post_init__(self) -> None:
        if self.pi not in PI_CONDITIONS:
            raise ValueError(f"unknown PI condition {self.pi!r} (known: {', '.join(PI_CONDITIONS)})")
        if self.k < 1:
            raise ValueError("k (retries per failed attempt) must be at least 1")
        if self.max_chars is not None and self.max_chars < 1:
            raise ValueError("max_chars (the longest PI text) must be at least 1")


def _gold(problem: Problem) -> str:
    return problem.answer if problem.domain == "math" else (problem.solution or "")


def _tests(problem: Problem) -> str:
    return "\n".join(problem.tests) if problem.tests else (problem.test_program or "")


_STEP_END = re.compile(r"(?<=[.!?])\s+|\n+")
_BOXED_ONLY = re.compile(r"^\$*\\(boxed|fbox)\{.*\}\$*\.?$", re.S)


def solution_steps(solution: str | None) -> list[str]:
    """The steps of a reference solution: its sentences and lines, without one that only states the
    boxed final answer."""
    steps = [s.strip() for s in _STEP_END.split(solution or "") if s and s.strip()]
    return [s for s in steps if not _BOXED_ONLY.match(s)]


def first_step(problem: Problem) -> str | None:
    """The first step of the reference solution, when it has more than one and the first does not
    already state the boxed final answer (else None: that step would be the answer)."""
    steps = solution_steps(problem.solution)
    if len(steps) < 2 or "\\boxed" in steps[0] or "\\fbox" in steps[0]:
        return None
    return steps[0]


def skeleton(problem: Problem) -> str | None:
    """The problem's proof skeleton (``meta["skeleton"]``), None when it has none."""
    text = problem.meta.get("skeleton")
    return text if isinstance(text, str) and text.strip() else None


def heuristic_diagnosis(feedback: str | None) -> str:
    """The rule-based diagnosis of a verifier's feedback (``HEURISTICS``: the first kind of error
    that matches; otherwise a plain "does not check")."""
    for pattern, text in HEURISTICS:
        if pattern.search(feedback or ""):
            return text
    return HEURISTIC_FALLBACK


def attempt_pi(spec: RetrySpec, verdict: dict, diagnoses: dict[tuple[str, int], str] | None = None) -> str | None:
    """The PI of a per-attempt condition for one failed first attempt (its verdict row): the
    verifier's feedback, its heuristic diagnosis, or the diagnosis another model wrote for it
    (``diagnoses``: (problem id, attempt) -> text). None where there is nothing to carry."""
    if spec.pi == "feedback":
        return (verdict.get("feedback") or "").strip() or None
    if spec.pi == "heuristic":
        return heuristic_diagnosis(verdict.get("feedback"))
    if spec.pi == "diagnosis":
        if diagnoses is None:
            raise ValueError("PI condition 'diagnosis' needs the diagnoses another model wrote")
        return (diagnoses.get((verdict["id"], verdict["attempt"])) or "").strip() or None
    raise ValueError(f"PI condition {spec.pi!r} is not per attempt")


def privileged_info(spec: RetrySpec, problems: list[Problem], seed: int, donors: dict[str, str] | None = None,
                    hints: dict[str, str] | None = None) -> dict[str, str | None]:
    """The PI text for every problem of the split (None: the retry message carries none).

    ``donors`` (recipient id -> donor id) give the ``wrong`` and ``other_tests`` PI; ``hints``
    (problem id -> text) the ``hint`` PI."""
    if spec.pi == "none" or spec.pi in PER_ATTEMPT:
        return {p.id: None for p in problems}  # per-attempt PI: attempt_pi
    for p in problems:
        if spec.pi in CODE_ONLY and p.domain != "code":
            raise ValueError(f"PI condition {spec.pi!r} needs code problems; {p.id!r} is {p.domain}")
    ordered = sorted(problems, key=lambda p: p.id)
    if spec.pi == "gold":
        return {p.id: _gold(p) for p in ordered}
    if spec.pi == "gibberish":
        return {p.id: spec.gibberish for p in ordered}
    if spec.pi == "tests":
        return {p.id: _tests(p) for p in ordered}
    if spec.pi == "first_step":
        return {p.id: first_step(p) for p in ordered}
    if spec.pi == "skeleton":
        return {p.id: skeleton(p) for p in ordered}
    if spec.pi == "hint":
        if hints is None:
            raise ValueError("PI condition 'hint' needs the hints another model wrote")
        return {p.id: (hints.get(p.id) or None) for p in ordered}
    render = _gold if spec.pi == "wrong" else _tests
    if donors is not None:
        by_id = {p.id: p for p in ordered}
        missing = [p.id for p in ordered if donors.get(p.id) not in by_id]
        if missing:
            raise ValueError(f"the PI assignment has no donor among these problems for {missing[0]!r} "
                             f"({len(missing)} of {len(ordered)}): was it made for another split?")
        return {p.id: render(by_id[donors[p.id]]) for p in ordered}
    donor_list = derangement(ordered, derive_seed("pi-derangement", spec.pi, seed))
    return {p.id: render(d) for p, d in zip(ordered, donor_list)}


def retry_message(spec: RetrySpec, domain: str, pi_text: str | None) -> str:
    text = spec.retry_text[domain]
    if pi_text is None:
        return text
    if spec.max_chars is not None:
        pi_text = pi_text[: spec.max_chars]
    return text + "\n" + spec.templates[spec.pi].format(pi=pi_text)


def retry_conversation(problem: Problem, failed_completion: str, message: str) -> list[dict]:
    return [
        {"role": "user", "content": problem.prompt},
        {"role": "assistant", "content": failed_completion},
        {"role": "user", "content": message},
    ]
