"""Pretraining steps with length-sorted micro-batches against whole padded batches, in the same run.

    .venv/bin/python bench/bench_pretrain.py [--model tiny_prover] [--steps 40] [--micro 4] [--threads 1]

Pretrains a demo model of config/config.yaml (its corpus and settings, only ``--steps`` steps) twice:
with ``micro_batches: 1`` (each optimizer batch of random dialogues is padded to its longest dialogue)
and with ``micro_batches: --micro`` (the same batches, run as micro-batches of similar length:
transformers' batch_rebalance sampler with gradient accumulation, pidistill.tinymodel.pretrain).
A model that continues another (``init_from``) starts from a fresh network of the tiny model's shape
with the tiny model's tokenizer trained on the corpus, which costs the same per step. Reports the
training seconds per step of each, their ratio, the padded tokens per step, and the final losses
(the same updates: they agree up to float rounding).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="tiny_prover")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--micro", type=int, default=4)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    import time

    import trl

    from pidistill.retry import DEFAULT_RETRY_TEXT
    from pidistill.tinymodel import TinyModelConfig, corpus_dialogues, pretrain

    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    models = config["models"]
    spec = dict(models[args.model]["pretrain"])
    root = spec
    while root.get("init_from"):  # the network's shape is the chain's head's
        root = models[root["init_from"]]["pretrain"]
    shape = {k: root[k] for k in ("hidden_size", "layers", "heads", "kv_heads", "intermediate_size", "max_positions")
             if k in root}
    datasets = spec.pop("datasets")
    for key in ("tokenizer_datasets", "threads", "init_from"):
        spec.pop(key, None)
    cfg = TinyModelConfig(**{**spec, **shape, "steps": args.steps})
    loaders = {d: config["datasets"][d]["loader"] for d in datasets}
    retry_texts = {config["datasets"][d]["domain"]: DEFAULT_RETRY_TEXT[config["datasets"][d]["domain"]]
                   for d in datasets}
    dialogues = corpus_dialogues(loaders, retry_texts, cfg)

    padded: list[int] = []
    timed: list[float] = []
    original_step, original_train = trl.SFTTrainer.training_step, trl.SFTTrainer.train

    def training_step(self, model, inputs, *a, **kw):
        padded.append(inputs["input_ids"].numel())
        return original_step(self, model, inputs, *a, **kw)

    def train(self, *a, **kw):  # training alone: not the corpus, tokenizer and dataset preparation
        t0 = time.perf_counter()
        out = original_train(self, *a, **kw)
        timed.append(time.perf_counter() - t0)
        return out

    trl.SFTTrainer.training_step, trl.SFTTrainer.train = training_step, train
    rows = {}
    with tempfile.TemporaryDirectory(prefix="pidistill-bench-pretrain-") as tmp:
        for micro in (1, args.micro):
            padded.clear()
            run = dataclasses.replace(cfg, micro_batches=micro)
            info = pretrain(Path(tmp) / f"m{micro}", run, dialogues, threads=args.threads)
            rows[micro] = (timed[-1] / args.steps, sum(padded) / args.steps, info["loss_history"][-1]["loss"])
    print(f"{args.model}: {args.steps} steps of {cfg.batch_size} dialogues, {args.threads} thread(s)")
    for micro, (s, tokens, loss) in rows.items():
        print(f"  micro_batches {micro}: {s:.3f} s/step, {tokens:.0f} padded tokens/step, last logged loss {loss}")
    ratio = rows[args.micro][0] / rows[1][0]
    print(f"ratio (micro_batches {args.micro} / 1): {ratio:.2f} of the time per step")
    return 0


if __name__ == "__main__":
    sys.exit(main())
