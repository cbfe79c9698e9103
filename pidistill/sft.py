"""Build SFT pairs from a method's kept candidates, and train one round on them with TRL's ``SFTTrainer``.

An SFT pair is (the original problem, WITHOUT the PI or the failed attempt) -> (the kept solution);
which candidates are kept is the method's filter (``pidistill.methods.filter_candidates``).
Training uses TRL's ``SFTTrainer`` on prompt-completion conversational data (loss on the completion
only). The method's ``train.trainer`` chooses what a round trains (its output is always the rule's
``.../adapter`` directory, with ``training.json``):

* ``lora`` (the default): a PEFT LoRA adapter. Round 1 creates the adapter; round r+1 continues
  training round r's adapter, so every policy is one base plus one adapter (which vLLM can serve
  without merging).
* ``full``: the whole model, no PEFT; the directory holds ``save_pretrained`` of model and
  tokenizer (``config.json``, ``model.safetensors``, tokenizer files), i.e. a model directory that
  loads like a hub model. The parent policy is its starting point (a parent LoRA adapter is merged
  in first), so full rounds after a full round continue fine-tuning the parent's model.

Rounds of either kind stack (``pidistill.generation.resolve_policy``): a full fine-tune becomes the
base of the rounds after it, and a LoRA round after a full one trains a fresh adapter on that
model (LoRA rounds after that continue this adapter). A round whose filtered set is smaller than
``min_pairs`` trains nothing: its directory records why, and its policy is the parent's.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

from pidistill.io import honour_umask, read_json, write_json
from pidistill.problems import Problem


def build_pairs(problems: Sequence[Problem], kept: Sequence[dict], dedupe: bool = True) -> list[dict]:
    by_id = {p.id: p for p in problems}
    pairs, seen = [], set()
    for v in sorted(kept, key=lambda v: (v["id"], v["attempt"])):
        key = (v["id"], v["completion"])
        if dedupe and key in seen:
            continue
        seen.add(key)
        pairs.append({
            "id": v["id"],
            "attempt": v["attempt"],
            "prompt": [{"role": "user", "content": by_id[v["id"]].prompt}],
            "completion": [{"role": "assistant", "content": v["completion"]}],
        })
    return pairs


class TrainSection:
    """A method's ``train`` section as a dataclass: ``from_config`` keeps the fields this trainer has
    (the section also holds train_defaults meant for other trainers)."""

    @classmethod
    def from_config(cls, cfg: dict):
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in cfg.items() if k in known})


TRAINERS = ("lora", "full")  # what train_adapter trains here (GRPO: pidistill.grpo; OPSD: pidistill.opsd)


@dataclass
class TrainSettings(TrainSection):
    """SFT hyperparameters (a method's ``train`` section); ``trainer`` is ``lora`` or ``full`` (the
    lora_* and target_modules fields apply to LoRA rounds only)."""

    trainer: str = "lora"
    steps: int = 60
    epochs: float | None = None  # passes over the pairs instead of ``steps`` (µCode's generators: 2)
    learning_rate: float = 2e-5
    batch_size: int = 8
    grad_accum: int = 1
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.0
    target_modules: list | str = "all-linear"
    max_length: int = 1024
    min_pairs: int = 1
    warmup_ratio: float = 0.0
    bf16: bool = False
    gradient_checkpointing: bool = False
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.trainer not in TRAINERS:
            raise ValueError(f"train.trainer {self.trainer!r}: pidistill.sft trains {' or '.join(TRAINERS)} "
                             "(grpo is pidistill.grpo, opsd pidistill.opsd)")


def setup_torch(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)
    torch.set_flush_denormal(True)  # denormals make CPU training crawl


def load_parent(model: str, parent_adapters: Sequence[str], revision: str | None, bf16: bool, merge: bool):
    """The parent policy's weights, ready to train: (model, tokenizer, resolved policy).

    With ``merge`` the model is the whole parent policy as one plain model (its LoRA adapter, if
    any, merged in: what a full fine-tune starts from); without, it is the parent's base (the model
    or its newest full fine-tune) and ``resolved.adapter`` is the adapter to continue.
    """
    from pidistill.generation import PolicySpec, resolve_policy
    from pidistill.generation.hf import load_policy

    resolved = resolve_policy(model, parent_adapters, revision)
    dtype = "bfloat16" if bf16 else "float32"
    if merge:
        spec = PolicySpec(model, list(parent_adapters), revision=revision, dtype=dtype)
    else:
        spec = PolicySpec(resolved.model, [], revision=resolved.revision, dtype=dtype)
    net, tokenizer = load_policy(spec, merge=True)
    if merge:
        net.requires_grad_(True)  # PEFT froze the base while the parent's adapter was attached
    net.train()
    return net, tokenizer, resolved


def lora_model(base, parent_adapter: str | None, lora_r: int, lora_alpha: int, lora_dropout: float,
               target_modules, seed: int):
    """``base`` with a trainable LoRA adapter: the parent's (continued: its rank and targets), or a
    new one drawn from ``seed``."""
    from peft import LoraConfig, PeftModel, get_peft_model
    from transformers import set_seed

    set_seed(seed)  # LoRA's A matrices are drawn when the adapter is created, before the trainer seeds
    if parent_adapter is not None:
        return PeftModel.from_pretrained(base, parent_adapter, is_trainable=True)
    lora = LoraConfig(r=lora_r, lora_alpha=lora_alpha, lora_dropout=lora_dropout, target_modules=target_modules,
                      task_type="CAUSAL_LM")
    return get_peft_model(base, lora)


def sampling_lora_student(model: str, parent_adapters: Sequence[str], revision: str | None, settings, seed: int,
                          summary: dict):
    """The LoRA student of a trainer that samples its own completions (GRPO, OPSD): the parent's
    base with the parent's adapter continued (or a new one from ``seed``), the tokenizer padding on
    the left (the trainers generate from left-padded prompts); records in ``summary`` which weights
    the round starts from. Returns (model, tokenizer)."""
    base, tokenizer, resolved = load_parent(model, parent_adapters, revision, settings.bf16, merge=False)
    net = lora_model(base, resolved.adapter, settings.lora_r, settings.lora_alpha, settings.lora_dropout,
                     settings.target_modules, seed)
    summary["continued_from"] = resolved.adapter
    summary["parent_weights"] = {"model": resolved.model, "adapter": resolved.adapter}
    tokenizer.padding_side = "left"
    return net, tokenizer


def save_adapter(peft_model, out_dir: Path) -> None:
    """The trained adapter only (not a reference copy a trainer may have added), its config sorted."""
    peft_model.save_pretrained(out_dir, selected_adapters=["default"])
    _sort_target_modules(out_dir / "adapter_config.json")


def save_full_model(model, tokenizer, out_dir: Path) -> None:
    """A full fine-tune as a model directory that loads like a hub model (weights, config,
    generation config and tokenizer). Every file is a function of the weights and settings (no
    timestamps, no paths), so a rebuild writes the same bytes."""
    model.config.use_cache = True  # training may switch the KV cache off; generation wants it
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    # transformers records how this process loaded the tokenizer (is_local, local_files_only): not
    # the tokenizer's, and a hub base and a local copy of it would differ there
    config_path = out_dir / "tokenizer_config.json"
    cfg = read_json(config_path)
    if any(k in cfg for k in _LOAD_KEYS):
        write_json(config_path, {k: v for k, v in cfg.items() if k not in _LOAD_KEYS})


_LOAD_KEYS = ("is_local", "local_files_only")


def finish(trainer, out_dir: Path, summary: dict, history_keys: Sequence[str] = ("loss",),
           completions_per_step: int | None = None) -> dict:
    """Record the history, drop the trainer's scratch directory, write training.json, fix modes.

    A trainer that samples its own completions (GRPO, OPSD; ``completions_per_step`` of them each
    optimizer step) also records ``tokens_generated_in_training``: the completion tokens it sampled,
    from TRL's per-step mean completion length (logged every step)."""
    import shutil

    summary["trained"] = True
    summary["reason"] = "ok"
    key = history_keys[0]
    summary[f"{key}_history"] = [
        {"step": h["step"], **{k: round(float(h[k]), 6) for k in history_keys if h.get(k) is not None}}
        for h in trainer.state.log_history if key in h
    ]
    if completions_per_step:
        lengths = [float(h["completions/mean_length"]) for h in trainer.state.log_history
                   if "completions/mean_length" in h]
        summary["tokens_generated_in_training"] = int(round(sum(lengths) * completions_per_step))
    # the model (or adapter) and this summary are the outputs, not the trainer's scratch
    shutil.rmtree(out_dir / "_trainer", ignore_errors=True)
    write_json(out_dir / "training.json", summary)
    honour_umask(out_dir)
    return summary


def trainer_arguments(out_dir: Path, settings, seed: int, cuda: bool) -> dict:
    """What every trainer's TRL config shares: steps, batch, learning rate, seeds, device and
    precision, a log line per step, no checkpoints, the scratch directory (removed after)."""
    epochs = getattr(settings, "epochs", None)
    return dict(
        output_dir=str(out_dir / "_trainer"),
        max_steps=-1 if epochs else settings.steps,
        num_train_epochs=epochs or 1.0,
        per_device_train_batch_size=settings.batch_size,
        gradient_accumulation_steps=settings.grad_accum,
        learning_rate=settings.learning_rate,
        logging_steps=1,
        save_strategy="no",
        report_to=[],
        seed=seed,
        data_seed=seed,
        use_cpu=not cuda,
        bf16=settings.bf16 and cuda,
        gradient_checkpointing=settings.gradient_checkpointing,
        disable_tqdm=False,
    )


def train_adapter(
    pairs: Sequence[dict], model: str, parent_adapters: Sequence[str], settings: TrainSettings, seed: int,
    out_dir: str | Path, threads: int = 1, revision: str | None = None,
) -> dict:
    """Train one round (a LoRA adapter, or the full model: ``settings.trainer``) into ``out_dir``;
    returns the training summary."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    summary = {"n_pairs": len(pairs), "settings": asdict(settings), "seed": seed, "base_model": str(model),
               "base_revision": revision, "parent_adapters": list(parent_adapters), "loss_history": []}
    if len(pairs) < settings.min_pairs:
        summary.update(trained=False, reason=f"{len(pairs)} pairs < min_pairs={settings.min_pairs}: policy is the parent's")
        write_json(out_dir / "training.json", summary)
        return summary

    import torch
    from datasets import Dataset
    from transformers import set_seed
    from trl import SFTConfig, SFTTrainer

    setup_torch(threads)
    cuda = torch.cuda.is_available()
    full = settings.trainer == "full"
    base, tokenizer, resolved = load_parent(model, parent_adapters, revision, settings.bf16, merge=full)
    if full:
        set_seed(seed)
        net = base
        # the round directory whose weights this round starts from (None: the base model)
        summary["continued_from"] = resolved.adapter or (resolved.model if resolved.model != str(model) else None)
    else:
        net = lora_model(base, resolved.adapter, settings.lora_r, settings.lora_alpha, settings.lora_dropout,
                         settings.target_modules, seed)
        summary["continued_from"] = resolved.adapter
    summary["parent_weights"] = {"model": resolved.model, "adapter": resolved.adapter}
    args = SFTConfig(
        **trainer_arguments(out_dir, settings, seed, cuda),
        # by epochs the steps are not known here: a float below 1 is a ratio of them to transformers
        warmup_steps=settings.warmup_ratio if settings.epochs else int(settings.warmup_ratio * settings.steps),
        lr_scheduler_type="constant_with_warmup" if settings.warmup_ratio else "constant",
        completion_only_loss=True,
        max_length=settings.max_length,
    )
    data = Dataset.from_list([{"prompt": p["prompt"], "completion": p["completion"]} for p in pairs])
    trainer = SFTTrainer(model=net, args=args, train_dataset=data, processing_class=tokenizer)
    trainer.train()
    if full:
        save_full_model(net, tokenizer, out_dir)
    else:
        save_adapter(net, out_dir)
    return finish(trainer, out_dir, summary)


def _sort_target_modules(config_path: Path) -> None:
    """PEFT keeps target_modules as a set and saves it in hash order, which changes from process to
    process (PYTHONHASHSEED); sorted, the adapter's config is the same file on every rebuild."""
    cfg = read_json(config_path)
    if isinstance(cfg.get("target_modules"), list):
        cfg["target_modules"] = sorted(cfg["target_modules"])
        write_json(config_path, cfg)


def read_training_summary(adapter_dir: str | Path) -> dict:
    return json.loads((Path(adapter_dir) / "training.json").read_text())
