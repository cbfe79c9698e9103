"""One generation interface for every stage: requests in, completions out, seeded per request.

A :class:`GenerationRequest` carries its own seed (see :func:`pidistill.seeding.request_seed`), so a
completion depends only on the policy, the request and the sampling settings, never on which other
requests share its batch. Backends: ``transformers`` (CPU or GPU, here) and ``vllm`` (the cluster).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, Sequence


@dataclass(frozen=True)
class SamplingSettings:
    temperature: float = 0.7
    top_p: float = 1.0
    max_new_tokens: int = 256

    @classmethod
    def from_config(cls, cfg: dict) -> "SamplingSettings":
        return cls(**{k: cfg[k] for k in ("temperature", "top_p", "max_new_tokens") if k in cfg})


@dataclass(frozen=True)
class GenerationRequest:
    request_id: str
    messages: tuple  # tuple of {"role", "content"} dicts: the conversation so far
    seed: int


def effective_adapter(adapters) -> str | None:
    """The adapter that holds a policy: its newest round that trained something.

    Round r+1 continues training round r's adapter, so one adapter carries all earlier rounds; a
    round that trained nothing (too few pairs) has no weights and leaves its parent's in force.
    """
    from pathlib import Path

    trained = [a for a in adapters if (Path(a) / "adapter_config.json").exists()]
    return trained[-1] if trained else None


@dataclass
class PolicySpec:
    """What generates: a base model (local dir or hub id) and the adapter directories of its rounds,
    oldest first (the newest trained one holds the policy, see ``effective_adapter``)."""

    model: str
    adapters: list[str] = field(default_factory=list)
    revision: str | None = None
    chat_template_kwargs: dict = field(default_factory=dict)
    dtype: str = "auto"


class GenerationBackend(Protocol):
    def generate(self, requests: Sequence[GenerationRequest], sampling: SamplingSettings) -> list[str]:
        """Completions for ``requests``, in the same order."""


def load_backend(name: str, policy: PolicySpec, **options) -> GenerationBackend:
    if name == "transformers":
        from pidistill.generation.hf import TransformersBackend

        return TransformersBackend(policy, **options)
    if name == "vllm":
        from pidistill.generation.vllm_backend import VLLMBackend  # only on the cluster

        return VLLMBackend(policy, **options)
    raise ValueError(f"unknown generation backend {name!r} (known: transformers, vllm)")
