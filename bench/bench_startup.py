"""Time a heavy job's start and exit with the garbage collector as the rule scripts set it, against
Python's default collector.

    .venv/bin/python bench/bench_startup.py [--repeats 7]

Every rule script imports ``scripts/_repo.py`` first, which raises the collector's third threshold
(full collections 100x rarer) and freezes the heap at exit (its docstring says why). This runs
what a demo sampling or training job does before and after its own work, in a fresh process each
time, interleaved, both ways:

- tuned: ``import _repo`` as the scripts do;
- default: the same, then Python's default thresholds (700, 10, 10) put back and the exit freeze
  unregistered (the obvious alternative: leave the collector alone);

the workload: ``import torch``, transformers' auto classes, peft; a 2-layer Qwen3ForCausalLM built
from its config with a LoRA adapter on it (as ``PeftModel.from_pretrained`` makes it), a forward
pass; then the process exits. Reports median seconds per process (exit included) and the ratio
tuned / default.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

PRELUDE = f"import sys; sys.path.insert(0, {str(REPO / 'scripts')!r})\nimport _repo\n"
DEFAULT = "import atexit, gc; gc.set_threshold(700, 10, 10); atexit.unregister(gc.freeze)\n"
WORKLOAD = """
import torch
from transformers import AutoModelForCausalLM, Qwen3Config
from peft import LoraConfig, get_peft_model
cfg = Qwen3Config(vocab_size=512, hidden_size=64, intermediate_size=192, num_hidden_layers=2,
                  num_attention_heads=4, num_key_value_heads=2, head_dim=16)
model = get_peft_model(AutoModelForCausalLM.from_config(cfg),
                       LoraConfig(r=8, target_modules=["q_proj", "v_proj"]))
model(torch.zeros(1, 8, dtype=torch.long))
"""
VARIANTS = {"tuned": PRELUDE + WORKLOAD, "default": PRELUDE + DEFAULT + WORKLOAD}


def run_once(code: str) -> float:
    t = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    for code in VARIANTS.values():  # warm the page cache and the bytecode caches, not timed
        run_once(code)
    times: dict[str, list[float]] = {name: [] for name in VARIANTS}
    for _ in range(args.repeats):
        for name, code in VARIANTS.items():
            times[name].append(run_once(code))
    med = {name: statistics.median(ts) for name, ts in times.items()}
    for name in VARIANTS:
        print(f"{name:<8} median {med[name]:6.2f} s  (min {min(times[name]):.2f}, max {max(times[name]):.2f})")
    print(f"ratio tuned / default: {med['tuned'] / med['default']:.2f} "
          f"({args.repeats} fresh processes each, interleaved; exit included)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
