"""Time an OPSD training round against a LoRA SFT round on the same problems, side by side.

    .venv/bin/python bench/bench_opsd.py [--problems 32] [--steps 8] [--repeats 3] [--model DIR]

Both rounds train the same LoRA (same rank, targets, learning rate, steps and completions per step)
on the same toy-math training problems: SFT on one (problem -> gold answer) pair per problem;
OPSD (pidistill/opsd.py, TRL's SDFTTrainer) on the same problems with the gold answer as the
teacher's PI, sampling its own completions each step. Each round runs as a fresh process, as a
Snakemake job does, and is timed three times: the whole process (imports included, what a job
costs), the training call (model loading included) and the optimisation loop alone (transformers'
``Trainer.train``, which both TRL trainers run: OPSD's generation happens inside it). Without --model it pretrains the tiny demo-shaped model first (a few
seconds, not timed). Reports medians over --repeats and the OPSD/SFT ratios.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

ROUND = r"""
import json, sys, time
sys.path.insert(0, {repo!r})
from pidistill.domains import toy_math
from pidistill.opsd import OPSDSettings, train_opsd
from pidistill.sft import TrainSettings, train_adapter
import transformers
_train, loop = transformers.Trainer.train, []
def timed(self, *a, **k):  # the optimisation loop alone (TRL's trainers run transformers' train())
    t = time.perf_counter()
    out = _train(self, *a, **k)
    loop.append(time.perf_counter() - t)
    return out
transformers.Trainer.train = timed
problems = toy_math.make_splits(0, {n}, 0)[0]
common = dict(steps={steps}, batch_size=16, learning_rate=1e-3, lora_r=8, lora_alpha=16)
t0 = time.perf_counter()
if {kind!r} == "sft":
    pairs = [{{"id": p.id, "attempt": 0, "prompt": [{{"role": "user", "content": p.prompt}}],
              "completion": [{{"role": "assistant", "content": toy_math.format_answer(int(p.answer))}}]}} for p in problems]
    s = train_adapter(pairs, {model!r}, [], TrainSettings(**common, min_pairs=1, max_length=256), seed=1,
                      out_dir={out!r}, threads={threads})
else:
    rows = [{{"id": p.id, "prompt": [{{"role": "user", "content": p.prompt}}],
             "privileged_context": "The correct answer is: " + p.answer}} for p in problems]
    s = train_opsd(rows, {model!r}, [], OPSDSettings(**common, num_generations=4, max_completion_length=12,
                   max_prompt_length=200), seed=1, out_dir={out!r}, threads={threads})
assert s["trained"], s
print(json.dumps({{"train_s": time.perf_counter() - t0, "loop_s": sum(loop)}}))
"""


def tiny_model(dest: Path) -> str:
    from pidistill import tinymodel
    from pidistill.retry import DEFAULT_RETRY_TEXT

    cfg = tinymodel.TinyModelConfig(hidden_size=64, layers=2, heads=4, kv_heads=2, intermediate_size=192, steps=150,
                                    batch_size=32, corpus_size=2000, learning_rate=4e-3)
    dialogues = tinymodel.corpus_dialogues({"toy_math": "toy_math"}, {"math": DEFAULT_RETRY_TEXT["math"]}, cfg)
    tinymodel.pretrain(dest, cfg, dialogues, threads=1)
    return str(dest)


def run_round(kind: str, model: str, out: Path, n: int, steps: int, threads: int) -> dict:
    code = ROUND.format(repo=str(REPO), n=n, steps=steps, kind=kind, model=model, out=str(out), threads=threads)
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    wall = time.perf_counter() - t0
    if proc.returncode:
        raise SystemExit(f"{kind} round failed:\n{proc.stderr[-3000:]}")
    return {"job_s": wall, **json.loads(proc.stdout.strip().splitlines()[-1])}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--problems", type=int, default=32)
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--model", help="a local model directory (default: pretrain the tiny demo-shaped model)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        model = args.model or tiny_model(tmp / "model")
        times: dict[str, list[dict]] = {"sft": [], "opsd": []}
        for i in range(args.repeats):
            for kind in ("sft", "opsd"):  # interleaved, so drift in the machine's speed hits both
                times[kind].append(run_round(kind, model, tmp / f"{kind}{i}", args.problems, args.steps, args.threads))
    keys = ("job_s", "train_s", "loop_s")
    med = {k: {m: statistics.median(r[m] for r in v) for m in keys} for k, v in times.items()}
    print(f"{args.problems} problems, {args.steps} steps of 16 completions, {args.repeats} repeats (medians)")
    print(f"{'':6} {'job s':>8} {'train s':>8} {'loop s':>8}")
    for kind in ("sft", "opsd"):
        print(f"{kind:6} " + " ".join(f"{med[kind][m]:8.2f}" for m in keys))
    print("OPSD/SFT: " + ", ".join(f"{m[:-2]} {med['opsd'][m] / med['sft'][m]:.2f}x" for m in keys))


if __name__ == "__main__":
    main()
