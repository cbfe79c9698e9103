"""The problem record every dataset is converted to, and its JSONL file format.

One record per problem, whatever the source (toy domains, HumanEval, MBPP, MATH-500): the rest of
the pipeline only ever reads these records.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from pidistill.io import InputError, iter_jsonl, write_jsonl

DOMAINS = ("math", "code")


@dataclass
class Problem:
    """A problem as the pipeline sees it.

    ``prompt`` is the user message the policy answers. Math problems carry the gold ``answer``;
    code problems carry their tests. For completion-style code benchmarks (HumanEval) the program
    that is executed is ``code_prefix + completion``; otherwise it is the extracted completion.
    """

    id: str
    domain: str
    prompt: str
    answer: str | None = None
    solution: str | None = None
    entry_point: str | None = None
    code_prefix: str = ""
    tests: list[str] = field(default_factory=list)
    public_tests: list[str] = field(default_factory=list)
    test_setup: str = ""
    test_program: str | None = None
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.domain not in DOMAINS:
            raise ValueError(f"problem {self.id!r}: domain must be one of {DOMAINS}, got {self.domain!r}")
        if self.domain == "math" and self.answer is None:
            raise ValueError(f"problem {self.id!r}: a math problem needs a gold 'answer'")
        if self.domain == "code" and not (self.tests or self.test_program):
            raise ValueError(f"problem {self.id!r}: a code problem needs 'tests' or 'test_program'")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, row: dict) -> "Problem":
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(row) - names)
        if unknown:
            raise ValueError(f"unknown field(s) {unknown}")
        missing = [k for k in ("id", "domain", "prompt") if k not in row]
        if missing:
            raise ValueError(f"missing field(s) {missing}")
        return cls(**row)


def write_problems(path: str | Path, problems: Iterable[Problem]) -> int:
    return write_jsonl(path, (p.to_dict() for p in problems))


def read_problems(path: str | Path) -> list[Problem]:
    problems: list[Problem] = []
    seen: set[str] = set()
    for lineno, row in enumerate(iter_jsonl(path), start=1):
        try:
            problem = Problem.from_dict(row)
        except (TypeError, ValueError) as exc:
            raise InputError(f"{path}:{lineno}: {exc}") from None
        if problem.id in seen:
            raise InputError(f"{path}:{lineno}: duplicate problem id {problem.id!r}")
        seen.add(problem.id)
        problems.append(problem)
    return problems


def index_problems(problems: Iterable[Problem]) -> dict[str, Problem]:
    return {p.id: p for p in problems}
