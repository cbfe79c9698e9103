"""The learned verifier of µCode: a sequence-classification model with one output, initialised from the
generator, that scores (problem, code) without the history.

Two losses (``VerifierSettings.loss``): ``bt``, Bradley-Terry on (correct, incorrect) pairs of one
problem, with TRL's ``RewardTrainer`` (optional margin-free centering: ``center_rewards``); ``bce``,
binary cross-entropy on every distinct (problem, code) labelled by the oracle, with a plain
transformers ``Trainer`` (``problem_type="multi_label_classification"``). Either way the score head
is drawn under the run's seed: it is created when the model loads, before a trainer would seed.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

from pidistill.io import write_json
from pidistill.mucode import verifier_labels, verifier_messages, verifier_pairs
from pidistill.problems import Problem
from pidistill.sft import TrainSection, finish, save_full_model, setup_torch, trainer_arguments

LOSSES = ("bt", "bce")


@dataclass
class VerifierSettings(TrainSection):
    """The learned verifier's training (a µCode study's ``verifier`` section)."""

    loss: str = "bt"
    pairs_per_problem: int = 16
    steps: int = 60
    epochs: float | None = None  # passes over the data instead of ``steps`` (seed 001: 2)
    learning_rate: float = 1e-6
    batch_size: int = 16
    grad_accum: int = 1
    max_length: int = 2048
    center_rewards: float | None = None  # TRL's center_rewards_coefficient (BT only)
    bf16: bool = False
    gradient_checkpointing: bool = False
    warmup_ratio: float = 0.0

    def __post_init__(self) -> None:
        if self.loss not in LOSSES:
            raise ValueError(f"verifier.loss {self.loss!r}: one of {', '.join(LOSSES)}")


def _render(tokenizer, problem: Problem, code: str) -> str:
    return tokenizer.apply_chat_template(verifier_messages(problem, code), tokenize=False)


def train_verifier(model: str, problems: Sequence[Problem], rows: Sequence[dict], settings: VerifierSettings,
                   seed: int, out_dir: str | Path, threads: int = 1, revision: str | None = None) -> dict:
    """Train the verifier on the turn rows of every iteration so far into ``out_dir`` (a model
    directory with its tokenizer, and training.json); returns the training summary. With no
    (correct, incorrect) pair (BT) or a single label (BCE) nothing can be learned: the summary says
    so and the saved model is the untrained one (its head drawn from ``seed``)."""
    import torch
    from datasets import Dataset
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, set_seed

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    setup_torch(threads)
    cuda = torch.cuda.is_available()
    by_id = {p.id: p for p in problems}
    kwargs = {"revision": revision} if revision else {}
    tokenizer = AutoTokenizer.from_pretrained(model, **kwargs)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "right"
    dtype = torch.bfloat16 if settings.bf16 and cuda else torch.float32
    problem_type = "multi_label_classification" if settings.loss == "bce" else None
    set_seed(seed)  # the score head is drawn here
    net = AutoModelForSequenceClassification.from_pretrained(
        model, num_labels=1, dtype=dtype, pad_token_id=tokenizer.pad_token_id, problem_type=problem_type, **kwargs)
    summary = {"settings": asdict(settings), "seed": seed, "base_model": str(model), "base_revision": revision,
               "loss_history": []}
    if settings.loss == "bt":
        pairs = verifier_pairs(rows, settings.pairs_per_problem, seed)
        summary["n_pairs"] = len(pairs)
        data = [{"prompt": [{"role": "user", "content": by_id[p["id"]].prompt}],
                 "chosen": [{"role": "assistant", "content": p["chosen"]}],
                 "rejected": [{"role": "assistant", "content": p["rejected"]}]} for p in pairs]
        learnable = bool(data)
    else:
        labels = verifier_labels(rows)
        summary["n_examples"] = len(labels)
        summary["n_correct"] = int(sum(x["label"] for x in labels))
        learnable = 0 < summary["n_correct"] < len(labels)
    if not learnable:
        save_full_model(net, tokenizer, out_dir)
        summary.update(trained=False, reason="no (correct, incorrect) contrast in the rollouts: the head is untrained")
        write_json(out_dir / "training.json", summary)
        return summary

    common = trainer_arguments(out_dir, settings, seed, cuda)
    common.update(warmup_steps=settings.warmup_ratio if settings.epochs else int(settings.warmup_ratio * settings.steps),
                  lr_scheduler_type="constant_with_warmup" if settings.warmup_ratio
                  else "constant")
    if settings.loss == "bt":
        from trl import RewardConfig, RewardTrainer

        args = RewardConfig(**common, max_length=settings.max_length,
                            center_rewards_coefficient=settings.center_rewards)
        trainer = RewardTrainer(model=net, args=args, train_dataset=Dataset.from_list(data),
                                processing_class=tokenizer)
    else:
        from transformers import DataCollatorWithPadding, Trainer, TrainingArguments

        def encode(example):
            enc = tokenizer(_render(tokenizer, by_id[example["id"]], example["code"]), truncation=True,
                            max_length=settings.max_length, add_special_tokens=False)
            return {**enc, "labels": [example["label"]]}

        data = Dataset.from_list(labels).map(encode, remove_columns=["id", "code", "label"])
        trainer = Trainer(model=net, args=TrainingArguments(**common, remove_unused_columns=False),
                          train_dataset=data, data_collator=DataCollatorWithPadding(tokenizer),
                          processing_class=tokenizer)
    trainer.train()
    save_full_model(net, tokenizer, out_dir)
    return finish(trainer, out_dir, summary)


class VerifierScorer:
    """Scores (problem, code) pairs with a trained verifier; each distinct pair is scored once."""

    def __init__(self, path: str | Path, batch_size: int = 32, device: str | None = None):
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        self.tokenizer.padding_side = "right"
        dtype = torch.bfloat16 if self.device == "cuda" else torch.float32
        self.model = AutoModelForSequenceClassification.from_pretrained(path, dtype=dtype).to(self.device).eval()
        self.batch_size = batch_size
        self.cache: dict[tuple[str, str], float] = {}

    def __call__(self, items: Sequence[tuple[Problem, str]]) -> list[float]:
        import torch

        from pidistill.verifiers.code import extract_code

        keys = [(p.id, extract_code(c, p.entry_point)) for p, c in items]
        todo = sorted({k: (p, k[1]) for k, (p, _) in zip(keys, items) if k not in self.cache}.items())
        for start in range(0, len(todo), self.batch_size):
            chunk = todo[start:start + self.batch_size]
            texts = [_render(self.tokenizer, p, code) for _, (p, code) in chunk]
            enc = self.tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(self.device)
            with torch.inference_mode():
                logits = self.model(**enc).logits.float().squeeze(-1).tolist()
            for (key, _), value in zip(chunk, logits):
                self.cache[key] = round(float(value), 6)
        return [self.cache[k] for k in keys]
