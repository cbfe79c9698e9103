"""Sampling stages: first attempts, retries and evaluation samples, through one backend.

Every request's seed is derived from (run seed, stage, problem id, attempt), so the same sample
comes back whatever the batch, the order of the input, or the set of other problems.
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

from pidistill.generation import GenerationBackend, GenerationRequest, SamplingSettings
from pidistill.problems import Problem
from pidistill.retry import PER_ATTEMPT, RetrySpec, attempt_pi, privileged_info, retry_conversation, retry_message
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


def failed_attempts(first_verdicts: Sequence[dict]) -> list[dict]:
    """The failed first attempts, in (problem id, attempt) order: what retries, resamples and
    diagnoses are made for."""
    return sorted((v for v in first_verdicts if not v["passed"]), key=lambda v: (v["id"], v["attempt"]))


def retry_requests(
    problems: Sequence[Problem], first_verdicts: Sequence[dict], spec: RetrySpec, seed: int,
    donors: dict[str, str] | None = None, hints: dict[str, str] | None = None,
    diagnoses: dict[tuple[str, int], str] | None = None,
) -> tuple[list[GenerationRequest], list[dict]]:
    """K retry requests for every failed first attempt, and the record of each (for the samples file)."""
    by_id = {p.id: p for p in problems}
    pi = privileged_info(spec, list(problems), seed, donors=donors, hints=hints)
    failed = failed_attempts(first_verdicts)
    requests, records = [], []
    for v in failed:
        problem = by_id[v["id"]]
        pi_text = attempt_pi(spec, v, diagnoses) if spec.pi in PER_ATTEMPT else pi[problem.id]
        message = retry_message(spec, problem.domain, pi_text)
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
    seed: int, sampling: SamplingSettings, donors: dict[str, str] | None = None, hints: dict[str, str] | None = None,
    diagnoses: dict[tuple[str, int], str] | None = None,
) -> list[dict]:
    requests, records = retry_requests(problems, first_verdicts, spec, seed, donors=donors, hints=hints,
                                       diagnoses=diagnoses)
    completions = backend.generate(requests, sampling) if requests else []
    return [{**rec, "completion": c} for rec, c in zip(records, completions)]


def _single_turn(problem: Problem, attempt: int, seed: int, stage: str) -> GenerationRequest:
    return GenerationRequest(f"{problem.id}#{attempt}", ({"role": "user", "content": problem.prompt},),
                             request_seed(seed, stage, problem.id, attempt))


def _generate_by_temperature(backend: GenerationBackend, requests: list[GenerationRequest], temperatures: list[float],
                             sampling: SamplingSettings) -> list[str]:
    """Completions of ``requests``, request i sampled at ``temperatures[i]`` (one batch per value)."""
    out: list[str | None] = [None] * len(requests)
    for t in sorted(set(temperatures)):
        idx = [i for i, ti in enumerate(temperatures) if ti == t]
        got = backend.generate([requests[i] for i in idx], dataclasses.replace(sampling, temperature=t))
        for i, c in zip(idx, got):
            out[i] = c
    return [c or "" for c in out]


def sample_extra_attempts(
    backend: GenerationBackend, problems: Sequence[Problem], temperatures: Sequence[float], seed: int, stage: str,
    sampling: SamplingSettings,
) -> list[dict]:
    """``len(temperatures)`` more single-turn samples of every problem, sample a at temperatures[a]
    (the ``samples`` source: no failure signal). Seeds come from ``stage``, not the first attempts'."""
    requests, temps, rows = [], [], []
    for p in sorted(problems, key=lambda p: p.id):
        for a, t in enumerate(temperatures):
            r = _single_turn(p, a, seed, stage)
            requests.append(r)
            temps.append(float(t))
            rows.append({"id": p.id, "attempt": a, "seed": r.seed, "stage": stage, "temperature": float(t)})
    completions = _generate_by_temperature(backend, requests, temps, sampling) if requests else []
    return [{**row, "completion": c} for row, c in zip(rows, completions)]


def sample_resamples(
    backend: GenerationBackend, problems: Sequence[Problem], first_verdicts: Sequence[dict], per_failure: int,
    seed: int, stage: str, sampling: SamplingSettings,
) -> list[dict]:
    """``per_failure`` fresh single-turn samples of the problem for every failed first attempt (the
    ``resample`` source: the same failures as a retry, no failure signal, no failed attempt shown)."""
    by_id = {p.id: p for p in problems}
    failed = failed_attempts(first_verdicts)
    requests, rows = [], []
    for v in failed:
        for j in range(per_failure):
            attempt = v["attempt"] * per_failure + j
            r = _single_turn(by_id[v["id"]], attempt, seed, stage)
            requests.append(r)
            rows.append({"id": v["id"], "attempt": attempt, "first_attempt": v["attempt"], "seed": r.seed,
                         "stage": stage})
    completions = backend.generate(requests, sampling) if requests else []
    return [{**row, "completion": c} for row, c in zip(rows, completions)]


def _one_per_problem(backend: GenerationBackend, problems: Sequence[Problem], prompt: str, seed: int,
                     sampling: SamplingSettings, stage: str) -> list[dict]:
    """One completion per problem of a model that sees ``prompt`` with ``{prompt}`` the problem's
    (and nothing else of it), in problem-id order, each request with its own seed."""
    requests, rows = [], []
    for p in sorted(problems, key=lambda p: p.id):
        message = prompt.format(prompt=p.prompt)
        r = GenerationRequest(f"{p.id}#0", ({"role": "user", "content": message},), request_seed(seed, stage, p.id, 0))
        requests.append(r)
        rows.append({"id": p.id, "attempt": 0, "seed": r.seed, "stage": stage, f"{stage}_prompt": message})
    completions = backend.generate(requests, sampling) if requests else []
    return [{**row, "completion": c} for row, c in zip(rows, completions)]


def sample_hints(
    backend: GenerationBackend, problems: Sequence[Problem], hint_prompt: str, seed: int, sampling: SamplingSettings,
) -> list[dict]:
    """One hint per problem from the hint model, which sees ``hint_prompt`` (``{prompt}`` is the
    problem) and never the gold."""
    return _one_per_problem(backend, problems, hint_prompt, seed, sampling, "hint")


def sample_outlines(backend: GenerationBackend, problems: Sequence[Problem], prompt: str, seed: int,
                    sampling: SamplingSettings) -> list[dict]:
    """One proof outline per problem from a dataset's skeleton model (``prompt`` with ``{prompt}``
    the problem's), in problem-id order, each with its own request seed (pidistill/skeletons.py)."""
    return _one_per_problem(backend, problems, prompt, seed, sampling, "skeleton")


def sample_diagnoses(
    backend: GenerationBackend, problems: Sequence[Problem], first_verdicts: Sequence[dict], diagnosis_prompt: str,
    seed: int, sampling: SamplingSettings,
) -> list[dict]:
    """One diagnosis per failed first attempt from the diagnosis model: it reads the problem, the
    failed attempt, and ``diagnosis_prompt`` with ``{feedback}`` replaced by the verifier's feedback
    on that attempt (the failure-diagnosis PI). It never sees the reference solution."""
    by_id = {p.id: p for p in problems}
    failed = failed_attempts(first_verdicts)
    requests, rows = [], []
    for v in failed:
        message = diagnosis_prompt.format(feedback=(v.get("feedback") or "").strip() or "(no message)")
        conversation = tuple(retry_conversation(by_id[v["id"]], v["completion"] or "", message))
        r = GenerationRequest(f"{v['id']}#{v['attempt']}", conversation,
                              request_seed(seed, "diagnosis", v["id"], v["attempt"]))
        requests.append(r)
        rows.append({"id": v["id"], "attempt": v["attempt"], "seed": r.seed, "stage": "diagnosis",
                     "diagnosis_prompt": message})
    completions = backend.generate(requests, sampling) if requests else []
    return [{**row, "completion": c} for row, c in zip(rows, completions)]


def count_tokens(rows: list[dict], tokenizer) -> list[dict]:
    """Each row with ``tokens``: its completion as the generating model's tokenizer encodes it (the
    generated length up to the end token; what the method tables count as generation budget)."""
    texts = [r.get("completion") or "" for r in rows]
    if not texts:
        return rows
    ids = tokenizer(texts, add_special_tokens=False)["input_ids"]
    return [{**r, "tokens": len(i)} for r, i in zip(rows, ids)]


def tokenizer_of(backend: GenerationBackend):
    """The tokenizer of the model a backend generates with (transformers or vLLM)."""
    tok = getattr(backend, "tokenizer", None)
    if tok is None and hasattr(backend, "llm"):
        tok = backend.llm.get_tokenizer()
    return tok


def with_token_counts(rows: list[dict], backend: GenerationBackend | None) -> list[dict]:
    """``count_tokens`` with the backend's tokenizer (rows unchanged when nothing was generated)."""
    if backend is None or not rows:
        return rows
    return count_tokens(rows, tokenizer_of(backend))
