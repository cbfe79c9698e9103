"""Toy math: short arithmetic with a boxed final answer, verified by answer match.

The space is small (208 facts) and the pretraining corpus covers all of it, as a web corpus covers
the arithmetic tables: what the benchmark measures is how reliably the model produces the right
fact among the slips it has also seen, not whether it can derive an unseen one.

The domain also defines an imperfect *author* whose attempts make up the tiny model's pretraining
corpus: it answers correctly with probability ``p_correct`` and otherwise makes one of the
systematic slips a person makes (a dropped carry, a forgotten borrow, a neighbouring times-table
entry, an off-by-one). A model pretrained on that corpus samples a mixture of right and wrong
answers, which is what gives first attempts, retries and filtering something to work with.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from pidistill.domains.toyspace import distinct_splits
from pidistill.problems import Problem

DOMAIN = "math"
FAMILIES = ("add", "sub", "mul")


@dataclass(frozen=True)
class MathItem:
    family: str
    a: int
    b: int

    @property
    def key(self) -> str:
        return f"{self.family}:{self.a}:{self.b}"

    @property
    def expression(self) -> str:
        op = {"add": "+", "sub": "-", "mul": "*"}[self.family]
        return f"{self.a}{op}{self.b}"

    @property
    def value(self) -> int:
        return {"add": self.a + self.b, "sub": self.a - self.b, "mul": self.a * self.b}[self.family]


def random_item(rng: random.Random) -> MathItem:
    """A uniformly drawn fact: single-digit sums and products, and teen-minus-digit differences."""
    family = rng.choice(FAMILIES)
    if family == "sub":
        return MathItem(family, rng.randint(10, 19), rng.randint(2, 9))
    return MathItem(family, rng.randint(2, 9), rng.randint(2, 9))


LEVELS = {
    1: "a sum without carry or a difference without borrow",
    2: "a sum with carry",
    3: "a difference with borrow",
    4: "a product below 30",
    5: "a product of 30 or more",
}
PRODUCT_LEVEL_5 = 30


def level_of(item: MathItem) -> int:
    """Difficulty level 1-5 of a fact, from the problem itself (see ``LEVELS``): additions and
    subtractions before products, a carry or a borrow adds a step, larger products are the harder
    half of the times table. The levels are defined, not measured: the per-level table shows how
    hard each one is for a given policy."""
    if item.family == "add":
        return 2 if item.a + item.b >= 10 else 1
    if item.family == "sub":
        return 3 if item.a % 10 < item.b else 1
    return 5 if item.value >= PRODUCT_LEVEL_5 else 4


def prompt_for(item: MathItem) -> str:
    return f"Compute {item.expression}."


def format_answer(value: int) -> str:
    return f"\\boxed{{{value}}}"


def slips(item: MathItem) -> list[int]:
    """Plausible wrong answers for ``item`` (never the right one)."""
    v, a, b = item.value, item.a, item.b
    cands: list[int] = []
    if item.family == "add":
        if v >= 10:
            cands.append(v - 10)  # dropped carry
        cands += [v + 1, v - 1]
    elif item.family == "sub":
        if (a % 10) < b:
            cands.append(v + 10)  # forgotten borrow
        cands += [v + 1, v - 1]
    else:
        cands += [a * (b + 1), a * (b - 1), v + 1]
    return sorted({c for c in cands if c != v and c >= 0})


def author_attempt(item: MathItem, rng: random.Random, p_correct: float, avoid: int | None = None) -> int:
    """One attempt of the imperfect author; ``avoid`` is an answer it already gave and was told was wrong."""
    wrong = [c for c in slips(item) if c != avoid]
    if avoid == item.value:
        wrong = slips(item)
    if rng.random() < p_correct or not wrong:
        return item.value
    return rng.choice(wrong)


def solution_for(item: MathItem) -> str:
    """A worked solution, one step per sentence, the way a textbook breaks the fact down: a carry
    or a borrow goes through ten, a product through its neighbour in the times table; a fact with
    no such step is a single step. ``pidistill.retry.first_step`` reads the first of several."""
    a, b, v = item.a, item.b, item.value
    if item.family == "add" and v >= 10:
        steps = [f"{a}+{b}={a}+{10 - a}+{b - (10 - a)}=10+{v - 10}.", f"10+{v - 10}={v}."]
    elif item.family == "sub" and a % 10 < b:
        steps = [f"{a}-{b}={a}-{a - 10}-{b - (a - 10)}=10-{b - (a - 10)}.", f"10-{b - (a - 10)}={v}."]
    elif item.family == "mul":
        steps = [f"{a}*{b}={a}*{b - 1}+{a}={a * (b - 1)}+{a}.", f"{a * (b - 1)}+{a}={v}."]
    else:
        steps = [f"{item.expression}={v}."]
    return " ".join(steps + [format_answer(v)])


def to_problem(item: MathItem, index: int, split: str) -> Problem:
    return Problem(
        id=f"toy_math/{split}/{index:04d}",
        domain=DOMAIN,
        prompt=prompt_for(item),
        answer=str(item.value),
        solution=solution_for(item),
        meta={"family": item.family, "key": item.key, "level": level_of(item)},
    )


def make_splits(seed: int, n_train: int, n_test: int) -> tuple[list[Problem], list[Problem]]:
    """Disjoint train and test splits of distinct problems."""
    return distinct_splits(random_item, to_problem, seed, n_train, n_test)


def item_of(problem: Problem) -> MathItem:
    family, a, b = problem.meta["key"].split(":")
    return MathItem(family, int(a), int(b))
