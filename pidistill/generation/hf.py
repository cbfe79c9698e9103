"""The transformers generation backend, with per-request seeded sampling.

Sampling uses the Gumbel-max trick inside ``generate``: each row's logits (after temperature and
top-p) get Gumbel noise drawn from a generator seeded by (request seed, token index), and decoding
takes the argmax. That is an exact sample from the tempered distribution, and it depends only on the
request, not on the batch it shares.
"""

from __future__ import annotations

from typing import Sequence

from pidistill.generation import GenerationRequest, PolicySpec, SamplingSettings
from pidistill.seeding import derive_seed


def load_policy(policy: PolicySpec, device: str | None = None, merge: bool = True):
    """The policy's model and tokenizer: its base model, or the directory of its newest full
    fine-tune (which holds model and tokenizer), with the LoRA adapter in force on top, merged for
    speed unless ``merge`` is False (see ``PolicySpec.resolve``); returns (model, tokenizer)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    dtype = policy.dtype
    if dtype == "auto":
        dtype = torch.bfloat16 if device == "cuda" else torch.float32
    elif isinstance(dtype, str):
        dtype = getattr(torch, dtype)
    resolved = policy.resolve()
    kwargs = {"revision": resolved.revision} if resolved.revision else {}
    tokenizer = AutoTokenizer.from_pretrained(resolved.model, **kwargs)
    model = AutoModelForCausalLM.from_pretrained(resolved.model, dtype=dtype, **kwargs)
    if resolved.adapter is not None:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, resolved.adapter)
        if merge:
            model = model.merge_and_unload()
    model.to(device)
    model.eval()
    return model, tokenizer


class SeededGumbelSampler:
    """A logits processor that turns greedy decoding into per-row seeded sampling."""

    def __init__(self, seeds: Sequence[int], temperature: float, top_p: float):
        self.seeds = list(seeds)
        self.temperature = temperature
        self.top_p = top_p
        self.start_len: int | None = None

    def __call__(self, input_ids, scores):
        import torch

        if self.start_len is None:
            self.start_len = input_ids.shape[1]
        step = input_ids.shape[1] - self.start_len
        scores = scores.float() / self.temperature
        if self.top_p < 1.0:
            sorted_scores, order = torch.sort(scores, descending=True, dim=-1)
            cum = sorted_scores.softmax(-1).cumsum(-1)
            drop_sorted = cum - sorted_scores.softmax(-1) >= self.top_p  # keep the smallest set reaching top_p
            drop = drop_sorted.scatter(1, order, drop_sorted)
            scores = scores.masked_fill(drop, float("-inf"))
        noise = torch.empty_like(scores)
        for row, seed in enumerate(self.seeds):
            gen = torch.Generator(device="cpu").manual_seed(derive_seed(seed, step))
            u = torch.rand(scores.shape[-1], generator=gen, dtype=torch.float64).clamp_(1e-12, 1 - 1e-12)
            noise[row] = (-torch.log(-torch.log(u))).to(scores.dtype).to(scores.device)
        return scores + noise


class TransformersBackend:
    def __init__(self, policy: PolicySpec, batch_size: int = 64, device: str | None = None, progress: bool = True):
        self.policy = policy
        self.model, self.tokenizer = load_policy(policy, device)
        self.batch_size = batch_size
        self.progress = progress
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token

    def _render(self, request: GenerationRequest) -> str:
        return self.tokenizer.apply_chat_template(
            list(request.messages), tokenize=False, add_generation_prompt=True, **self.policy.chat_template_kwargs
        )

    def generate(self, requests: Sequence[GenerationRequest], sampling: SamplingSettings) -> list[str]:
        import torch
        from tqdm import tqdm
        from transformers import LogitsProcessorList

        texts = [self._render(r) for r in requests]
        order = sorted(range(len(requests)), key=lambda i: (len(texts[i]), requests[i].request_id))
        out: list[str | None] = [None] * len(requests)
        bar = tqdm(total=len(requests), desc="generate", disable=not self.progress, mininterval=2)
        for start in range(0, len(order), self.batch_size):
            idx = order[start : start + self.batch_size]
            enc = self.tokenizer([texts[i] for i in idx], return_tensors="pt", padding=True, add_special_tokens=False)
            enc = {k: v.to(self.model.device) for k, v in enc.items()}
            kwargs = dict(max_new_tokens=sampling.max_new_tokens, do_sample=False,
                          pad_token_id=self.tokenizer.pad_token_id, eos_token_id=self.tokenizer.eos_token_id)
            if sampling.temperature > 0:
                sampler = SeededGumbelSampler([requests[i].seed for i in idx], sampling.temperature, sampling.top_p)
                kwargs["logits_processor"] = LogitsProcessorList([sampler])
            with torch.inference_mode():
                gen = self.model.generate(**enc, **kwargs)
            new_tokens = gen[:, enc["input_ids"].shape[1] :]
            for row, i in enumerate(idx):
                out[i] = self.tokenizer.decode(new_tokens[row], skip_special_tokens=True)
            bar.update(len(idx))
        bar.close()
        return [o or "" for o in out]
