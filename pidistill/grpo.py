"""GRPO with a failure-shaped reward ("IPRS"): one round of RL on the problems the policy failed.

A method with ``train.trainer: grpo`` trains its round with TRL's ``GRPOTrainer`` instead of SFT on
pairs. Its output is a LoRA adapter directory exactly like the SFT path's (same ``LoraConfig``
fields; ``adapter_config.json``, ``adapter_model.safetensors``, ``training.json``), so sampling,
evaluation and later rounds use it unchanged; like a LoRA SFT round it continues the parent's
adapter, or trains a new one on the parent's base (the model, or its newest full fine-tune: see
``pidistill.generation.resolve_policy``).

Training prompts: the training problems on which the policy failed at least one first attempt
(the set a retry works on), one conversational prompt ``[{"role": "user", "content": prompt}]``
each, in id order. Each step samples ``num_generations`` completions per prompt from the policy.

The reward (one function, :class:`FailureShapedReward`), for a completion ``y`` of problem ``x``
judged by the project's verifier (``pidistill.verifiers.verify_items``)::

    r(y) = 1      if the verifier passes y;
    r(y) = beta   if it fails, but its extracted answer (math) or program (code), ``Verdict.extracted``
                  with whitespace runs collapsed to one space, is not empty and differs from the
                  extracted answer of every failed first attempt at x (it tried something different,
                  as a retry is told to);
    r(y) = 0      otherwise: a failed answer repeated, or no answer at all.

``beta`` (default 0.2, the ``train`` section's ``beta``) is the shaping weight; the KL weight of
GRPO is ``kl_beta`` (GRPOConfig's ``beta``, default 0: no reference model). Pass/fail is the
verifier's binary verdict (a graded verifier's partial credit is not used). The failed first
attempts' answers come from the first-attempt verdicts (``id``, ``attempt``, ``completion``,
``passed``, ``extracted``); a failed attempt without an extracted answer rules nothing out.

Determinism: one ``seed`` (the run's) seeds the new adapter's initialisation, the trainer (which
seeds torch, numpy and random at construction; its generation is ``model.generate`` sampling from
torch's global generator) and its prompt sampler; on CPU two runs write the same bytes.

A round with fewer prompts than it needs (``min_prompts``, and at least one step's worth of
distinct prompts: ``batch_size * grad_accum / num_generations``) trains nothing: its directory holds
only ``training.json`` saying why, and its policy is the parent's.
"""

from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Mapping, Sequence

from pidistill.io import write_json
from pidistill.problems import Problem
from pidistill.sft import TrainSection
from pidistill.verifiers import Verdict, VerifierSettings, verify_items


@dataclass
class GRPOSettings(TrainSection):
    """A ``trainer: grpo`` method's ``train`` section."""

    trainer: str = "grpo"
    steps: int = 50
    learning_rate: float = 1e-5
    batch_size: int = 8  # completions per device and optimizer step (GRPOConfig per_device_train_batch_size)
    grad_accum: int = 1
    num_generations: int = 4  # completions per prompt: a step sees batch_size * grad_accum / num_generations prompts
    max_completion_length: int = 256
    temperature: float = 1.0
    top_p: float = 1.0
    beta: float = 0.2  # shaping: reward of a failed completion whose answer is new (see the module docstring)
    kl_beta: float = 0.0  # GRPOConfig's beta (KL to the parent policy); 0: no reference model
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.0
    target_modules: list | str = "all-linear"
    min_prompts: int = 1
    bf16: bool = False
    gradient_checkpointing: bool = False

    def __post_init__(self) -> None:
        if self.trainer != "grpo":
            raise ValueError(f"GRPOSettings: train.trainer must be 'grpo', got {self.trainer!r}")
        if self.num_generations < 2:
            raise ValueError(f"train.num_generations={self.num_generations}: GRPO needs at least 2 completions per prompt")
        if (self.batch_size * self.grad_accum) % self.num_generations:
            raise ValueError(f"train.batch_size * train.grad_accum = {self.batch_size * self.grad_accum} must be a "
                             f"multiple of train.num_generations = {self.num_generations}")

    @property
    def prompts_per_step(self) -> int:
        return self.batch_size * self.grad_accum // self.num_generations



# ---- the reward ---------------------------------------------------------------------------------


def normalized_answer(extracted: str | None) -> str | None:
    """An extracted answer or program with whitespace runs collapsed; None when there is none."""
    if extracted is None:
        return None
    text = " ".join(str(extracted).split())
    return text or None


def failed_answers(first_verdicts: Sequence[dict]) -> dict[str, frozenset[str]]:
    """Problem id -> the normalized extracted answers of its failed first attempts, for every
    problem with at least one failed first attempt (possibly an empty set: none had an answer)."""
    out: dict[str, set[str]] = {}
    for v in first_verdicts:
        if v["passed"]:
            continue
        answers = out.setdefault(v["id"], set())
        answer = normalized_answer(v.get("extracted"))
        if answer is not None:
            answers.add(answer)
    return {pid: frozenset(answers) for pid, answers in sorted(out.items())}


def shaped_reward(verdict: Verdict, failed: frozenset[str] | set[str], beta: float) -> float:
    """1 for a pass; ``beta`` for a failure whose answer is none of the failed first attempts'; else 0."""
    if verdict.passed:
        return 1.0
    answer = normalized_answer(verdict.extracted)
    if answer is not None and answer not in failed:
        return float(beta)
    return 0.0


def _completion_text(completion) -> str:
    """The text of a completion as GRPOTrainer passes it: a list of assistant messages
    (conversational prompts) or a string."""
    if isinstance(completion, str):
        return completion
    return "".join(str(m.get("content") or "") for m in completion)


class FailureShapedReward:
    """The GRPO reward function (TRL's custom reward interface: called with the batch's prompts,
    completions and dataset columns, here ``id``; returns one float per completion)."""

    __name__ = "iprs"  # how TRL names it in logs ("rewards/iprs/mean")

    def __init__(self, problems: Mapping[str, Problem], failed: Mapping[str, frozenset[str]], beta: float,
                 settings: VerifierSettings):
        self.problems = problems
        self.failed = failed
        self.beta = beta
        self.settings = settings

    def __call__(self, prompts, completions, id, log_metric=None, **kwargs) -> list[float]:  # noqa: A002 (TRL passes the column)
        texts = [_completion_text(c) for c in completions]
        verdicts = verify_items([(self.problems[pid], text) for pid, text in zip(id, texts)], self.settings)
        rewards = [shaped_reward(v, self.failed.get(pid, frozenset()), self.beta) for pid, v in zip(id, verdicts)]
        if log_metric is not None and rewards:
            n = len(rewards)
            log_metric("iprs/passed", sum(v.passed for v in verdicts) / n)
            log_metric("iprs/new_answer", sum(not v.passed and r > 0 for v, r in zip(verdicts, rewards)) / n)
        return rewards


# ---- training -----------------------------------------------------------------------------------


def training_prompts(problems: Sequence[Problem], first_verdicts: Sequence[dict]) -> list[dict]:
    """One row per training problem with a failed first attempt, in id order."""
    failed = failed_answers(first_verdicts)
    by_id = {p.id: p for p in problems}
    return [{"id": pid, "prompt": [{"role": "user", "content": by_id[pid].prompt}]} for pid in failed if pid in by_id]


def train_grpo(
    problems: Sequence[Problem], first_verdicts: Sequence[dict], model: str, parent_adapters: Sequence[str],
    settings: GRPOSettings, verifier: VerifierSettings | dict | None, seed: int, out_dir: str | Path,
    threads: int = 1, revision: str | None = None, chat_template_kwargs: dict | None = None,
) -> dict:
    """Train one round's LoRA adapter with GRPO into ``out_dir``; returns the training summary."""
    from pidistill.sft import finish, sampling_lora_student, save_adapter, setup_torch, trainer_arguments

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if not isinstance(verifier, VerifierSettings):
        verifier = VerifierSettings.from_config(verifier)
    verifier = dataclasses.replace(verifier, progress=False)
    rows = training_prompts(problems, first_verdicts)
    summary = {"n_prompts": len(rows), "settings": asdict(settings), "seed": seed, "base_model": str(model),
               "base_revision": revision, "parent_adapters": list(parent_adapters), "reward_history": []}
    needed = max(settings.min_prompts, settings.prompts_per_step)
    if len(rows) < needed:
        summary.update(trained=False, reason=(
            f"{len(rows)} prompts (problems with a failed first attempt) < {needed} needed (min_prompts="
            f"{settings.min_prompts}, a step's prompts={settings.prompts_per_step}): policy is the parent's"))
        write_json(out_dir / "training.json", summary)
        return summary

    import torch
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    setup_torch(threads)
    cuda = torch.cuda.is_available()
    net, tokenizer = sampling_lora_student(model, parent_adapters, revision, settings, seed, summary)
    args = GRPOConfig(
        **trainer_arguments(out_dir, settings, seed, cuda),
        num_generations=settings.num_generations,
        max_completion_length=settings.max_completion_length,
        temperature=settings.temperature,
        top_p=settings.top_p,
        beta=settings.kl_beta,
        lr_scheduler_type="constant",
        chat_template_kwargs=dict(chat_template_kwargs or {}),
        log_completions=False,
    )
    by_id = {p.id: p for p in problems}
    reward = FailureShapedReward(by_id, failed_answers(first_verdicts), settings.beta, verifier)
    trainer = GRPOTrainer(model=net, reward_funcs=[reward], args=args, train_dataset=Dataset.from_list(rows),
                          processing_class=tokenizer)
    trainer.train()
    save_adapter(net, out_dir)
    return finish(trainer, out_dir, summary,
                  history_keys=("reward", "reward_std", "iprs/passed", "iprs/new_answer", "loss"),
                  completions_per_step=settings.batch_size * settings.grad_accum)
