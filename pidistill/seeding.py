"""Seeds derived from names, so a sample's randomness depends only on what it is.

A request's sampling seed is a hash of (run seed, stage, problem id, attempt): it does not depend on
which other requests share its batch, on the order of the input file, or on the backend.
"""

from __future__ import annotations

import hashlib
import random


def derive_seed(*parts: object, bits: int = 63) -> int:
    """A stable non-negative integer seed from any printable parts."""
    text = "\x1f".join(str(p) for p in parts)
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") & ((1 << bits) - 1)


def request_seed(run_seed: int, stage: str, problem_id: str, attempt: int) -> int:
    """Sampling seed of one generation request (vLLM takes it as ``SamplingParams.seed``)."""
    return derive_seed("request", run_seed, stage, problem_id, attempt, bits=31)


def derangement(items: list, seed: int) -> list:
    """A seeded permutation of ``items`` that moves every position (needs at least 2 items).

    Used for the "wrong answer" and "another problem's tests" PI conditions: problem i gets the
    privileged information of problem perm[i] != i. Sattolo's algorithm yields a single cycle, which
    is always a derangement.
    """
    if len(items) < 2:
        raise ValueError("a derangement needs at least two items")
    rng = random.Random(seed)
    perm = list(range(len(items)))
    for i in range(len(perm) - 1, 0, -1):
        j = rng.randrange(i)  # j < i: Sattolo
        perm[i], perm[j] = perm[j], perm[i]
    return [items[p] for p in perm]
