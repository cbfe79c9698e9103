"""Filter correct retries, build SFT pairs, and train a LoRA adapter on them with TRL.

An SFT pair is (the original problem, WITHOUT the PI or the failed attempt) -> (the correct retry).
Training uses TRL's ``SFTTrainer`` on prompt-completion conversational data (loss on the completion
only) with a PEFT LoRA adapter. Round 1 creates the adapter; round r+1 continues training round r's
adapter, so every policy is the base model plus one adapter (which vLLM can serve without merging). A round whose filtered set is smaller than ``min_pairs`` trains nothing:
its adapter directory records why, and its policy is the parent's.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

from pidistill.io import honour_umask, read_json, write_json
from pidistill.problems import Problem


def filter_correct(verdicts: Sequence[dict], threshold: float | None = None) -> list[dict]:
    """Retries that pass (binary), or whose graded score reaches ``threshold`` when given."""
    if threshold is None:
        return [v for v in verdicts if v["passed"]]
    return [v for v in verdicts if float(v.get("score", float(v["passed"]))) >= threshold]


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


def retry_statistics(first_verdicts: Sequence[dict], retry_verdicts: Sequence[dict], pairs: Sequence[dict]) -> dict:
    """Counts for the CSVs: the frontier, retry success, and how much data the round has."""
    n_first = len(first_verdicts)
    failed_attempts = [v for v in first_verdicts if not v["passed"]]
    problems = {v["id"] for v in first_verdicts}
    failed_problems = {v["id"] for v in failed_attempts}
    solved_by_retry = {v["id"] for v in retry_verdicts if v["passed"]}
    n_retry = len(retry_verdicts)
    return {
        "n_train_problems": len(problems),
        "n_first_attempts": n_first,
        "n_first_correct": n_first - len(failed_attempts),
        "n_failed_problems": len(failed_problems),
        "n_retries": n_retry,
        "n_retries_correct": sum(bool(v["passed"]) for v in retry_verdicts),
        "n_frontier": len(solved_by_retry & failed_problems),
        "retry_success_rate": (len(solved_by_retry & failed_problems) / len(failed_problems)) if failed_problems else 0.0,
        "n_pairs": len(pairs),
    }


@dataclass
class TrainSettings:
    """LoRA SFT hyperparameters (a method's ``train`` section)."""

    steps: int = 60
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

    @classmethod
    def from_config(cls, cfg: dict) -> "TrainSettings":
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in cfg.items() if k in known})


def train_adapter(
    pairs: Sequence[dict], model: str, parent_adapters: Sequence[str], settings: TrainSettings, seed: int,
    out_dir: str | Path, threads: int = 1, revision: str | None = None,
) -> dict:
    """Train one round's LoRA adapter into ``out_dir``; returns the training summary."""
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
    from peft import LoraConfig, PeftModel, get_peft_model
    from transformers import set_seed
    from trl import SFTConfig, SFTTrainer

    from pidistill.generation import PolicySpec, effective_adapter
    from pidistill.generation.hf import load_policy

    torch.set_num_threads(threads)
    torch.set_flush_denormal(True)  # denormals make CPU training crawl
    cuda = torch.cuda.is_available()
    base, tokenizer = load_policy(PolicySpec(model, [], revision=revision,
                                             dtype="bfloat16" if settings.bf16 else "float32"))
    base.train()
    set_seed(seed)  # LoRA's A matrices are drawn when the adapter is created, before the trainer seeds
    parent = effective_adapter(parent_adapters)
    if parent is not None:
        # round r+1 starts from round r's policy: continue training its adapter (its rank and targets)
        peft_model = PeftModel.from_pretrained(base, parent, is_trainable=True)
    else:
        lora = LoraConfig(r=settings.lora_r, lora_alpha=settings.lora_alpha, lora_dropout=settings.lora_dropout,
                          target_modules=settings.target_modules, task_type="CAUSAL_LM")
        peft_model = get_peft_model(base, lora)
    summary["continued_from"] = parent
    args = SFTConfig(
        output_dir=str(out_dir / "_trainer"),
        max_steps=settings.steps,
        per_device_train_batch_size=settings.batch_size,
        gradient_accumulation_steps=settings.grad_accum,
        learning_rate=settings.learning_rate,
        warmup_steps=int(settings.warmup_ratio * settings.steps),
        lr_scheduler_type="constant_with_warmup" if settings.warmup_ratio else "constant",
        logging_steps=1,
        save_strategy="no",
        report_to=[],
        seed=seed,
        data_seed=seed,
        use_cpu=not cuda,
        bf16=settings.bf16 and cuda,
        gradient_checkpointing=settings.gradient_checkpointing,
        completion_only_loss=True,
        max_length=settings.max_length,
        disable_tqdm=False,
    )
    data = Dataset.from_list([{"prompt": p["prompt"], "completion": p["completion"]} for p in pairs])
    trainer = SFTTrainer(model=peft_model, args=args, train_dataset=data, processing_class=tokenizer)
    trainer.train()
    peft_model.save_pretrained(out_dir)
    _sort_target_modules(out_dir / "adapter_config.json")
    summary["trained"] = True
    summary["reason"] = "ok"
    summary["loss_history"] = [
        {"step": h["step"], "loss": round(float(h["loss"]), 6)} for h in trainer.state.log_history if "loss" in h
    ]
    # Drop the trainer's scratch directory: the adapter and this summary are the outputs.
    import shutil

    shutil.rmtree(out_dir / "_trainer", ignore_errors=True)
    write_json(out_dir / "training.json", summary)
    honour_umask(out_dir)
    return summary


def _sort_target_modules(config_path: Path) -> None:
    """PEFT keeps target_modules as a set and saves it in hash order, which changes from process to
    process (PYTHONHASHSEED); sorted, the adapter's config is the same file on every rebuild."""
    cfg = read_json(config_path)
    if isinstance(cfg.get("target_modules"), list):
        cfg["target_modules"] = sorted(cfg["target_modules"])
        write_json(config_path, cfg)


def read_training_summary(adapter_dir: str | Path) -> dict:
    return json.loads((Path(adapter_dir) / "training.json").read_text())
