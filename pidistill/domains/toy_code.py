"""Toy code: write a one-line Python function from a description and one example.

Verified by running hidden asserts in a subprocess (the code verifier). Like toy math, the domain
(like toy math) covers a small space, 179 functions with single-digit constants, and defines an imperfect author for the pretraining corpus, correct with probability ``p_correct`` and
otherwise making a family-typical slip (a dropped constant, min for max, a wrong operator).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from pidistill.domains.toyspace import distinct_splits
from pidistill.problems import Problem

DOMAIN = "code"
FAMILIES = ("lin", "linm", "max", "min", "sq", "mod")

_DESCRIBE = {
    "lin": "x times {a} plus {b}",
    "linm": "x times {a} minus {b}",
    "max": "the larger of x and {a}",
    "min": "the smaller of x and {a}",
    "sq": "x squared plus {a}",
    "mod": "the remainder of x divided by {a}",
}
_BODY = {
    "lin": "x*{a}+{b}",
    "linm": "x*{a}-{b}",
    "max": "max(x,{a})",
    "min": "min(x,{a})",
    "sq": "x*x+{a}",
    "mod": "x%{a}",
}
_SLIPS = {
    "lin": ["x*{a}", "x+{a}+{b}", "x*({a}+{b})"],
    "linm": ["x*{a}", "x-{a}-{b}", "x*({a}-{b})"],
    "max": ["min(x,{a})", "x+{a}"],
    "min": ["max(x,{a})", "x-{a}"],
    "sq": ["x*2+{a}", "x*x", "x*{a}"],
    "mod": ["x//{a}", "{a}%x"],
}


@dataclass(frozen=True)
class CodeItem:
    family: str
    a: int
    b: int = 0

    @property
    def key(self) -> str:
        return f"{self.family}:{self.a}:{self.b}"

    def body(self, template: str | None = None) -> str:
        return (template or _BODY[self.family]).format(a=self.a, b=self.b)

    def value(self, x: int) -> int:
        return eval(self.body(), {"max": max, "min": min}, {"x": x})  # our own template, not model output


def random_item(rng: random.Random) -> CodeItem:
    family = rng.choice(FAMILIES)
    if family in ("lin", "linm"):
        return CodeItem(family, rng.randint(2, 9), rng.randint(1, 9))
    if family == "mod":
        return CodeItem(family, rng.randint(2, 9))
    return CodeItem(family, rng.randint(1, 9))


def code_for(body: str) -> str:
    return f"def f(x):\n    return {body}"


def example_input(item: CodeItem) -> int:
    return {"max": 4, "min": 4, "mod": 23}.get(item.family, 3)


def prompt_for(item: CodeItem) -> str:
    x = example_input(item)
    return f"Write a Python function f(x) that returns {_DESCRIBE[item.family].format(a=item.a, b=item.b)}. Example: f({x}) == {item.value(x)}"


def hidden_inputs(item: CodeItem) -> list[int]:
    if item.family in ("max", "min"):
        return [item.a - 3, item.a + 3, 20 + item.a]
    return [2, 5, 11]


def slips(item: CodeItem) -> list[str]:
    """Wrong bodies that fail at least one hidden test."""
    out = []
    for template in _SLIPS[item.family]:
        body = item.body(template)
        try:
            outputs = [eval(body, {"max": max, "min": min}, {"x": x}) for x in hidden_inputs(item)]
        except ZeroDivisionError:
            outputs = None
        if outputs != [item.value(x) for x in hidden_inputs(item)]:
            out.append(body)
    return sorted(set(out))


def author_attempt(item: CodeItem, rng: random.Random, p_correct: float, avoid: str | None = None) -> str:
    wrong = [s for s in slips(item) if s != avoid]
    if rng.random() < p_correct or not wrong:
        return code_for(item.body())
    return code_for(rng.choice(wrong))


def to_problem(item: CodeItem, index: int, split: str) -> Problem:
    tests = [f"assert f({x}) == {item.value(x)}" for x in hidden_inputs(item)]
    x = example_input(item)
    return Problem(
        id=f"toy_code/{split}/{index:04d}",
        domain=DOMAIN,
        prompt=prompt_for(item),
        solution=code_for(item.body()),
        entry_point="f",
        tests=tests,
        public_tests=[f"assert f({x}) == {item.value(x)}"],
        meta={"family": item.family, "key": item.key},
    )


def make_splits(seed: int, n_train: int, n_test: int) -> tuple[list[Problem], list[Problem]]:
    """Disjoint train and test splits of distinct problems."""
    return distinct_splits(random_item, to_problem, seed, n_train, n_test)


def item_of(problem: Problem) -> CodeItem:
    family, a, b = problem.meta["key"].split(":")
    return CodeItem(family, int(a), int(b))
