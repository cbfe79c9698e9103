"""Sampling stages: first attempts, retries and evaluation samples, through one backend.

Every request's seed is derived from (run seed, stage, problem id, attempt), so the same sample
comes back whatever the batch, the order of the input, or the set of other problems.
"""

from __future__ import annotations

from typing import Sequence

from pidistill.generation import GenerationBackend, GenerationRequest, SamplingSettings
from pidistill.problems import Problem
from pidistill.retry import RetrySpec, privileged_info, retry_conversation, retry_message
from pidistill.seeding import request_seed


def attempt_requests(problems: Sequence[Problem], n: int, seed: int, stage: str) -> list[GenerationRequest]:
    """n single-turn requests per problem (first attempts, evaluation)."""
    return [
        GenerationRequest(
            request_id=f"{p.id}#{a}",
            messages=({"role": "user", "content": p.prompt},),
            seed=request_seed(seed, stage, p.id, a),
        )
        for p in sorted(problems, key=lambda p: p.id)
        for a in range(n)
    ]


def sample_attempts(
    backend: GenerationBackend, problems: Sequence[Problem], n: int, seed: int, stage: str, sampling: SamplingSettings
) -> list[dict]:
    requests = attempt_requests(problems, n, seed, stage)
    completions = backend.generate(requests, sampling)
    rows = []
    for r, c in zip(requests, completions):
        problem_id, attempt = r.request_id.rsplit("#", 1)
        rows.append({"id": problem_id, "attempt": int(attempt), "seed": r.seed, "stage": stage, "completion": c})
    return rows


def retry_requests(
    problems: Sequence[Problem], first_verdicts: Sequence[dict], spec: RetrySpec, seed: int
) -> tuple[list[GenerationRequest], list[dict]]:
    """K retry requests for every failed first attempt, and the record of each (for the samples file)."""
    by_id = {p.id: p for p in problems}
    pi = privileged_info(spec, list(problems), seed)
    failed = sorted((v for v in first_verdicts if not v["passed"]), key=lambda v: (v["id"], v["attempt"]))
    requests, records = [], []
    for v in failed:
        problem = by_id[v["id"]]
        message = retry_message(spec, problem.domain, pi[problem.id])
        conversation = tuple(retry_conversation(problem, v["completion"], message))
        for r in range(spec.k):
            attempt = v["attempt"] * spec.k + r
            rseed = request_seed(seed, f"retry-{spec.pi}", problem.id, attempt)
            requests.append(GenerationRequest(f"{problem.id}#{attempt}", conversation, rseed))
            records.append({"id": problem.id, "attempt": attempt, "first_attempt": v["attempt"], "retry": r,
                            "seed": rseed, "stage": "retry", "pi": spec.pi, "retry_message": message,
                            "failed_completion": v["completion"]})
    return requests, records


def sample_retries(
    backend: GenerationBackend, problems: Sequence[Problem], first_verdicts: Sequence[dict], spec: RetrySpec,
    seed: int, sampling: SamplingSettings,
) -> list[dict]:
    requests, records = retry_requests(problems, first_verdicts, spec, seed)
    completions = backend.generate(requests, sampling) if requests else []
    return [{**rec, "completion": c} for rec, c in zip(records, completions)]
