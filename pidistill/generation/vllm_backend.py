"""The vLLM generation backend (cluster GPUs): batched chat generation, per-request seeds,
prefix caching, and the policy's LoRA adapter served by vLLM's LoRA support without merging.
A policy whose weights are a full fine-tune (``PolicySpec.resolve``) is served from that round's
directory as the model (its tokenizer is saved there too), with the LoRA adapter of a later round,
if any, on top.

vLLM is imported only here, and only when the backend is built: the demo never needs it.
Each request becomes one vLLM request with ``SamplingParams(n=1, seed=<request seed>)``, so a
sample depends only on its own seed (vLLM seeds per request), never on the rest of the batch; the n
samples of a problem are n requests with their own seeds (pidistill.seeding.request_seed).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from pidistill.generation import GenerationRequest, PolicySpec, SamplingSettings


@dataclass(frozen=True)
class LoRASpec:
    name: str
    int_id: int
    path: str
    rank: int


def lora_spec(policy: PolicySpec) -> LoRASpec | None:
    """The adapter vLLM should apply for ``policy`` (None for a base policy, untrained rounds, or a
    full fine-tune with no LoRA round after it)."""
    adapter = policy.resolve().adapter
    if adapter is None:
        return None
    config = json.loads((Path(adapter) / "adapter_config.json").read_text())
    # a stable positive id per adapter path (vLLM caches adapters by id)
    int_id = 1 + int.from_bytes(str(Path(adapter).resolve()).encode()[-7:].rjust(7, b"\0"), "big") % (2**31 - 2)
    return LoRASpec(name=Path(adapter).parent.name or "adapter", int_id=int_id, path=str(adapter), rank=int(config["r"]))


def sampling_kwargs(request: GenerationRequest, sampling: SamplingSettings) -> dict:
    """Keyword arguments of vLLM's ``SamplingParams`` for one request."""
    return {
        "n": 1,
        "temperature": sampling.temperature,
        "top_p": sampling.top_p,
        "max_tokens": sampling.max_new_tokens,
        "seed": request.seed,
    }


def engine_kwargs(policy: PolicySpec, lora: LoRASpec | None, **options) -> dict:
    """Keyword arguments of ``vllm.LLM`` for the policy: the base model, or the directory of its
    newest full fine-tune (no revision: it is a local directory)."""
    resolved = policy.resolve()
    # a round's directory, absolute: vLLM must not take a relative results path for a hub id
    model = resolved.model if resolved.model == policy.model else str(Path(resolved.model).absolute())
    kwargs = {
        "model": model,
        "revision": resolved.revision,
        "dtype": "bfloat16" if policy.dtype == "auto" else policy.dtype,
        "enable_prefix_caching": True,  # first attempts, retries and n samples share long prefixes
        "seed": 0,
        "gpu_memory_utilization": options.get("gpu_memory_utilization", 0.9),
    }
    if options.get("max_model_len"):
        kwargs["max_model_len"] = options["max_model_len"]
    if lora is not None:
        kwargs.update(enable_lora=True, max_lora_rank=max(lora.rank, 16), max_loras=1)
    return kwargs


class VLLMBackend:
    def __init__(self, policy: PolicySpec, batch_size: int = 512, progress: bool = True, **options):
        from vllm import LLM

        self.policy = policy
        self.batch_size = batch_size
        self.progress = progress
        self.lora = lora_spec(policy)
        self.llm = LLM(**engine_kwargs(policy, self.lora, **options))

    def _lora_request(self):
        if self.lora is None:
            return None
        from vllm.lora.request import LoRARequest

        return LoRARequest(self.lora.name, self.lora.int_id, self.lora.path)

    def generate(self, requests: Sequence[GenerationRequest], sampling: SamplingSettings) -> list[str]:
        from vllm import SamplingParams

        out: list[str] = []
        lora = self._lora_request()
        for start in range(0, len(requests), self.batch_size):
            chunk = requests[start : start + self.batch_size]
            results = self.llm.chat(
                [list(r.messages) for r in chunk],
                sampling_params=[SamplingParams(**sampling_kwargs(r, sampling)) for r in chunk],
                lora_request=lora,
                chat_template_kwargs=self.policy.chat_template_kwargs or None,
                use_tqdm=self.progress,
            )
            out += [r.outputs[0].text for r in results]  # vLLM returns outputs in input order
        return out
