"""The problem record every dataset is converted to, and its JSONL file format.

One record per problem, whatever the source (toy domains, HumanEval, MBPP, MATH-500): the rest of
the pipeline only ever reads these records.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from pidistill.io import InputError, iter_jsonl_lines, write_jsonl

DOMAINS = ("math", "code", "formal")


@dataclass
class Problem:
    """A problem as the pipeline sees it.

    ``prompt`` is the user message the policy answers. Math problems carry the gold ``answer``;
    code problems carry their tests; formal problems their header and theorem statement in ``meta``. For completion-style code benchmarks (HumanEval) the program
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
        if self.domain == "formal" and not (isinstance(self.meta.get("statement"), str) and "header" in self.meta):
            raise ValueError(f"problem {self.id!r}: a formal problem needs meta 'header' and 'statement' (what the "
                             "checker rebuilds the proof file from)")

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
        for name, value in row.items():
            kinds = _FIELD_TYPES[name]
            if not isinstance(value, kinds):
                raise ValueError(f"field {name!r} must be {_FIELD_KINDS[name]}, got {type(value).__name__}")
            if kinds == (list,) and not all(isinstance(x, str) for x in value):
                raise ValueError(f"field {name!r} must be {_FIELD_KINDS[name]}")
        return cls(**row)


_FIELD_TYPES = {"id": (str,), "domain": (str,), "prompt": (str,), "answer": (str, type(None)), "solution": (str, type(None)),
                "entry_point": (str, type(None)), "code_prefix": (str,), "tests": (list,), "public_tests": (list,),
                "test_setup": (str,), "test_program": (str, type(None)), "meta": (dict,)}
_FIELD_KINDS = {name: "a list of strings" if kinds == (list,) else "an object" if kinds == (dict,)
                else "a string" + (" or null" if type(None) in kinds else "") for name, kinds in _FIELD_TYPES.items()}
_NOT_PROBLEMS = {"task_id": "a raw dataset file", "unique_id": "a raw dataset file", "completion": "a samples or verdicts file",
                 "passed": "a verdicts file"}


def write_problems(path: str | Path, problems: Iterable[Problem]) -> int:
    return write_jsonl(path, (p.to_dict() for p in problems))


def read_problems(path: str | Path) -> list[Problem]:
    """The problems of a problems file (what ``pidistill prepare`` writes). A record that is not a
    problem, or a problem id given twice, is an InputError naming the line(s)."""
    problems: list[Problem] = []
    seen: dict[str, int] = {}
    for lineno, row in iter_jsonl_lines(path):
        try:
            problem = Problem.from_dict(row)
        except (TypeError, ValueError) as exc:
            looks = next((what for key, what in _NOT_PROBLEMS.items() if key in row), None)
            hint = f"; this looks like {looks}" if looks else ""
            raise InputError(f"{path}:{lineno}: not a problem record: {exc} "
                             f"(expected a problems file as `pidistill prepare` writes it{hint})") from None
        if problem.id in seen:
            raise InputError(f"{path}:{lineno}: duplicate problem id {problem.id!r} (also on line {seen[problem.id]})")
        seen[problem.id] = lineno
        problems.append(problem)
    return problems


def index_problems(problems: Iterable[Problem]) -> dict[str, Problem]:
    return {p.id: p for p in problems}
