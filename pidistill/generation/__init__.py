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


ADAPTER_CONFIG = "adapter_config.json"  # a round that trained a LoRA adapter (PEFT's save_pretrained)
MODEL_CONFIG = "config.json"  # a round that fine-tuned the whole model (save_pretrained of model + tokenizer)


def round_kind(path) -> str | None:
    """What a round's output directory holds: ``"lora"`` (an adapter), ``"full"`` (a whole model,
    tokenizer included) or None (the round trained nothing; its ``training.json`` says why)."""
    from pathlib import Path

    if (Path(path) / ADAPTER_CONFIG).is_file():
        return "lora"
    if (Path(path) / MODEL_CONFIG).is_file():
        return "full"
    return None


@dataclass(frozen=True)
class ResolvedPolicy:
    """Where a policy's weights are: ``model`` (the base, or the newest full fine-tune, whose
    directory also holds the tokenizer) with ``revision`` (None for a round's directory), and the
    LoRA ``adapter`` applied on top of it (None for none)."""

    model: str
    revision: str | None
    adapter: str | None


def resolve_policy(model: str, adapters, revision: str | None = None) -> ResolvedPolicy:
    """Follow a policy's rounds, oldest first: each round's policy is its parent's changed by that
    round's training. A full fine-tune replaces the weights (a LoRA adapter in force before it is
    merged into its weights), so it becomes the base and no adapter is in force; a LoRA round puts
    its adapter in force on the current base (a LoRA round after another continues that adapter,
    so the newest carries them all); a round that trained nothing changes nothing.
    """
    base, rev, adapter = str(model), revision, None
    for path in adapters:
        kind = round_kind(path)
        if kind == "full":
            base, rev, adapter = str(path), None, None
        elif kind == "lora":
            adapter = str(path)
    return ResolvedPolicy(base, rev, adapter)


def effective_adapter(adapters) -> str | None:
    """The LoRA adapter in force for a policy: its newest round that trained an adapter, unless a
    full fine-tune came after it (see ``resolve_policy``; that fine-tune then holds the weights).

    Round r+1 continues training round r's adapter, so one adapter carries all earlier rounds; a
    round that trained nothing (too few pairs) has no weights and leaves its parent's in force.
    """
    return resolve_policy("", adapters).adapter


@dataclass
class PolicySpec:
    """What generates: a base model (local dir or hub id) and the output directories of its rounds,
    oldest first: LoRA adapters, full fine-tunes, or untrained rounds (``resolve`` says which
    weights hold the policy)."""

    model: str
    adapters: list[str] = field(default_factory=list)
    revision: str | None = None
    chat_template_kwargs: dict = field(default_factory=dict)
    dtype: str = "auto"

    def resolve(self) -> ResolvedPolicy:
        return resolve_policy(self.model, self.adapters, self.revision)


class GenerationBackend(Protocol):
    def generate(self, requests: Sequence[GenerationRequest], sampling: SamplingSettings) -> list[str]:
        """Completions for ``requests``, in the same order."""


# name -> "module:class". Imported only when chosen, so the vLLM backend (and vLLM) stays off every
# machine and job that does not use it; rules list the chosen module as code (``backend_module``).
BACKENDS: dict[str, str] = {
    "transformers": "pidistill.generation.hf:TransformersBackend",
    "vllm": "pidistill.generation.vllm_backend:VLLMBackend",  # only on the cluster
}


def backend_module(name: str) -> str:
    """The module that implements backend ``name`` (what a generation job runs)."""
    try:
        return BACKENDS[name].split(":")[0]
    except KeyError:
        raise ValueError(f"unknown generation backend {name!r} (known: {', '.join(sorted(BACKENDS))})") from None


def load_backend(name: str, policy: PolicySpec, **options) -> GenerationBackend:
    import importlib

    module = importlib.import_module(backend_module(name))
    return getattr(module, BACKENDS[name].split(":")[1])(policy, **options)


def rule_backend(params, adapters, revision: str | None, threads: int) -> GenerationBackend:
    """The backend a Snakemake generation rule configures: ``params.model`` (path or hub id),
    ``params.chat_template_kwargs`` and ``params.generation`` (backend, batch size)."""
    generation = params.generation
    name = generation.get("backend", "transformers")
    policy = PolicySpec(
        model=params.model,
        adapters=list(adapters),
        revision=revision,
        chat_template_kwargs=dict(params.chat_template_kwargs),
    )
    if name == "transformers":
        import torch

        torch.set_num_threads(threads)
        torch.set_flush_denormal(True)
    return load_backend(name, policy, batch_size=generation.get("batch_size", 64))
