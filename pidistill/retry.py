"""Retry conversations and the privileged information (PI) they may carry.

A failed first attempt is continued with a retry message: the domain's retry text ("Try again
carefully." for math, "Your solution failed the tests. Please try again with a different approach."
for code), optionally followed by PI rendered through the condition's template:

- ``none``: nothing ("try again").
- ``gold``: the problem's own gold answer (math) or canonical solution (code).
- ``gibberish``: a fixed meaningless string ("XYZZY").
- ``wrong``: another problem's gold, by a seeded derangement of the split (no problem keeps its own).
- ``tests``: the problem's own test suite (code).
- ``other_tests``: another problem's test suite, by the same kind of derangement (code).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pidistill.problems import Problem
from pidistill.seeding import derangement, derive_seed

PI_CONDITIONS = ("none", "gold", "gibberish", "wrong", "tests", "other_tests")
CODE_ONLY = ("tests", "other_tests")

DEFAULT_RETRY_TEXT = {
    "math": "Try again carefully.",
    "code": "Your solution failed the tests. Please try again with a different approach.",
}
DEFAULT_TEMPLATES = {
    "gold": "The correct answer is: {pi}",
    "gibberish": "{pi}",
    "wrong": "The correct answer is: {pi}",
    "tests": "The tests are:\n{pi}",
    "other_tests": "The tests are:\n{pi}",
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


def privileged_info(spec: RetrySpec, problems: list[Problem], seed: int) -> dict[str, str | None]:
    """The PI text for every problem of the split (None for ``none``)."""
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
    donors = derangement(ordered, derive_seed("pi-derangement", spec.pi, seed))
    render = _gold if spec.pi == "wrong" else _tests
    return {p.id: render(d) for p, d in zip(ordered, donors)}


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
