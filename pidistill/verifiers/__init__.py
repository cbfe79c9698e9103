"""Verifiers: decide pass/fail (and a graded score) for model samples.

``verify_samples`` is the library API the pipeline's verify rule and ``pidistill verify`` call.
Each domain module exposes ``verify_batch(items, settings) -> list[Verdict]`` where ``items`` is a
list of ``(Problem, completion)`` pairs; batching lets a domain run a worker pool.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Iterable, Sequence

if TYPE_CHECKING:  # only annotations here: the code sandbox's zygotes import this package, lean
    from pidistill.problems import Problem


@dataclass
class Verdict:
    passed: bool
    score: float  # graded credit in [0, 1]; equals float(passed) for binary verifiers
    reason: str = ""  # short machine-readable cause: "ok", "wrong_answer", "no_answer", "timeout", ...
    feedback: str = ""  # short human-readable text that may be shown to the policy
    extracted: str | None = None  # the extracted answer or code
    test_results: list[bool] | None = None  # per-test outcomes where tests are separable
    public_test_results: list[bool] | None = None
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        out = dataclasses.asdict(self)
        extra = out.pop("extra")
        out.update(extra)
        return out


@dataclass
class VerifierSettings:
    """Options shared by the verifiers (the config's ``verifier`` section)."""

    workers: int = 1
    timeout_s: float = 5.0  # per sample wall time (code) / per comparison (math)
    memory_mb: int = 512
    answer_fallback: bool = False  # math: accept "the answer is X" when there is no \boxed{}
    progress: bool = True
    graded: bool = False  # math: Verdict.score is the graded credit (docs/math-verifier.md) instead of float(passed)
    isolation: str = "auto"  # code: "auto" = "namespaces" (or an error) | "rlimits" (docs/code-verifier.md)
    nproc: int = 8  # code: processes/threads a sample may have at once
    output_kb: int = 1024  # code: stdout+stderr+files a sample may write
    hide_private_tests: bool = True  # code: feedback never quotes a non-public test
    checker: str = ""  # formal: the proof checker ("lean-server" or "coq"); unset: formal verification stops
    server_url: str = ""  # formal, lean-server: the kimina-lean-server's base URL
    lean_server: dict | None = None  # formal, lean-server: {variant, prefix}: an installation each job starts
    retries: int = 3  # formal: retries of a failed checker request (then the samples fail as checker_failed)

    @classmethod
    def from_config(cls, cfg: dict | None) -> "VerifierSettings":
        cfg = dict(cfg or {})
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in cfg.items() if k in names})


# domain -> the module whose ``verify_batch`` judges it, imported only when a batch has that domain
# (rules list the one module their job runs as code: ``verifier_module``), and the settings it reads
# (a verification job's params are just these, so a math-only option never reruns code jobs).
VERIFIERS: dict[str, str] = {"math": "pidistill.verifiers.math", "code": "pidistill.verifiers.code",
                             "formal": "pidistill.verifiers.formal"}
DOMAIN_SETTINGS: dict[str, tuple[str, ...]] = {
    "math": ("workers", "timeout_s", "memory_mb", "answer_fallback", "graded"),
    "code": ("workers", "timeout_s", "memory_mb", "isolation", "nproc", "output_kb", "hide_private_tests"),
    "formal": ("workers", "timeout_s", "memory_mb", "checker", "server_url", "lean_server", "retries"),
}


def verifier_module(domain: str) -> str:
    try:
        return VERIFIERS[domain]
    except KeyError:
        raise ValueError(f"no verifier for domain {domain!r} (known: {', '.join(sorted(VERIFIERS))})") from None


def domain_settings(cfg: dict | None, domain: str) -> dict:
    """The part of the config's ``verifier`` section that the ``domain``'s verifier reads."""
    return {k: v for k, v in (cfg or {}).items() if k in DOMAIN_SETTINGS[domain]}


def verify_items(items: Sequence[tuple[Problem, str]], settings: VerifierSettings | None = None) -> list[Verdict]:
    """Verdicts for (problem, completion) pairs, in input order, dispatching on the problem's domain."""
    settings = settings or VerifierSettings()
    out: list[Verdict | None] = [None] * len(items)
    import importlib

    for domain in sorted({p.domain for p, _ in items}):
        idx = [i for i, (p, _) in enumerate(items) if p.domain == domain]
        module = importlib.import_module(verifier_module(domain))
        verdicts = module.verify_batch([items[i] for i in idx], settings)
        for i, v in zip(idx, verdicts):
            out[i] = v
    return [v for v in out if v is not None]


def verify_samples(
    problems: dict[str, Problem], samples: Iterable[dict], settings: VerifierSettings | None = None
) -> list[dict]:
    """One verdict row per sample, in input order: the sample's own fields plus the verdict's."""
    samples = list(samples)
    items = []
    for n, sample in enumerate(samples, start=1):
        if "id" not in sample or "completion" not in sample:
            raise ValueError(f"sample {n}: needs 'id' and 'completion' fields")
        if sample["id"] not in problems:
            raise ValueError(f"sample {n}: unknown problem id {sample['id']!r}")
        items.append((problems[sample["id"]], sample["completion"]))
    verdicts = verify_items(items, settings)
    return [{**s, **v.to_dict()} for s, v in zip(samples, verdicts)]
