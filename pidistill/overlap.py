"""Train/test overlap, detected from the problem records themselves.

Two problems are the same problem when their content is: the prompt (whitespace collapsed), the
tests (sorted: their order does not change what is checked), the test program and, for math, the
gold answer. Ids and the dataset's name play no part, so a split that reuses the other split's
problems under new ids, or a dataset that is loaded twice (the paper's HumanEval code study trains
and evaluates on the same 164 problems), is caught, and two distinct problems that happen to share
an id are not.
"""

from __future__ import annotations

import hashlib
import json
from typing import Iterable

from pidistill.problems import Problem


def content_hash(problem: Problem) -> str:
    """sha256 of what makes a problem that problem (not its id or where it came from)."""
    content = {
        "prompt": " ".join(problem.prompt.split()),
        "tests": sorted(" ".join(t.split()) for t in problem.tests),
        "test_program": problem.test_program,
        "answer": problem.answer,
    }
    return hashlib.sha256(json.dumps(content, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def split_overlap(train: Iterable[Problem], test: Iterable[Problem], examples: int = 5) -> dict:
    """How many test problems also appear, by content, in the training split."""
    train = list(train)
    train_hashes = {content_hash(p) for p in train}
    test = list(test)
    shared = sorted(p.id for p in test if content_hash(p) in train_hashes)
    return {
        "n_train": len(train),
        "n_test": len(test),
        "n_test_in_train": len(shared),
        "fraction": len(shared) / len(test) if test else 0.0,
        "examples": shared[:examples],
        "method": "sha256 of prompt (whitespace collapsed), sorted tests, test program and gold answer",
    }
