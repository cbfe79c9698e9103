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

The donors of ``wrong`` and ``other_tests`` come from ``pidistill.pi_assignment`` (an assignment
in which no problem gets a PI the verifier judges equivalent to its own); without donors the
seeded derangement of the split is used, which can collide.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from pidistill.problems import Problem
from pidistill.seeding import derangement, derive_seed

PI_CONDITIONS = ("none", "gold", "gibberish", "wrong", "tests", "other_tests", "first_step", "hint")
CODE_ONLY = ("tests", "other_tests")

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
}


@dataclass
class RetrySpec:
    """How a method retries: its PI condition, retry text, templates and K retries per failure."""

    pi: str = "none"
    k: int = 1
    retry_text: dict = field(default_factory=lambda: dict(DEFAULT_RETRY_TEXT))
    templates: dict = field(default_factory=lambda: dict(DEFAULT_TEMPLATES))
    gibberish: str = "XYZZY"

    @classmethod
    def build(cls, pi: str, k: int = 1, retry_texts: dict[str, str] | None = None, pi_template: str | None = None,
              gibberish: str = "XYZZY") -> "RetrySpec":
        """A spec from the defaults plus overrides: per-domain retry texts, the condition's template."""
        retry_text = {**DEFAULT_RETRY_TEXT, **{d: t for d, t in (retry_texts or {}).items() if t}}
        templates = dict(DEFAULT_TEMPLATES)
        if pi_template:
            templates[pi] = pi_template
        return cls(pi=pi, k=k, retry_text=retry_text, templates=templates, gibberish=gibberish)

    def __post_init__(self) -> None:
        if self.pi not in PI_CONDITIONS:
            raise ValueError(f"unknown PI condition {self.pi!r} (known: {', '.join(PI_CONDITIONS)})")
        if self.k < 1:
            raise ValueError("k (retries per failed attempt) must be at least 1")


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


def privileged_info(spec: RetrySpec, problems: list[Problem], seed: int, donors: dict[str, str] | None = None,
                    hints: dict[str, str] | None = None) -> dict[str, str | None]:
    """The PI text for every problem of the split (None: the retry message carries none).

    ``donors`` (recipient id -> donor id) give the ``wrong`` and ``other_tests`` PI; ``hints``
    (problem id -> text) the ``hint`` PI."""
    if spec.pi == "none":
        return {p.id: None for p in problems}
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
    return text + "\n" + spec.templates[spec.pi].format(pi=pi_text)


def retry_conversation(problem: Problem, failed_completion: str, message: str) -> list[dict]:
    return [
        {"role": "user", "content": problem.prompt},
        {"role": "assistant", "content": failed_completion},
        {"role": "user", "content": message},
    ]
