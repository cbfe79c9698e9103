"""Time what every heavy job pays before it does any work, under two builds of Python 3.11.

    .venv/bin/python bench/bench_interpreter.py [--repeats 5] [--python /usr/bin/python3.11 ...]

A demo job spends most of its time importing torch and transformers and loading the model's code
(README, "Performance"): that is Python executing module bodies, which the interpreter's build
decides. Debian's and Ubuntu's /usr/bin/python3.11 is built with profile-guided and link-time
optimisation into one executable; pyenv's default build is neither, and runs the interpreter from
a shared libpython (position-independent code, every call through the PLT). This runs
the same workload, in a fresh process each time, interleaved, under each interpreter given
(default: the interpreter .venv was made from, and every other python3.11 on the machine), with
.venv's own site-packages on the path so that both import the very same files:

- heavy: ``import torch``, ``from transformers import AutoModelForCausalLM``, a 2-layer
  Qwen3ForCausalLM built from its config (which imports the model's modelling code, as
  ``from_pretrained`` does), a forward pass;
- light: what a verification or aggregation job imports (snakemake's script support, numpy,
  pandas, the math verifier).

Reports per interpreter whether it runs from a shared libpython, the median seconds and the ratio
to the first interpreter.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SITE = Path(sysconfig.get_paths()["purelib"])

WORKLOADS = {
    "heavy": """
import torch
from transformers import AutoModelForCausalLM, Qwen3Config
cfg = Qwen3Config(vocab_size=512, hidden_size=64, intermediate_size=192, num_hidden_layers=2,
                  num_attention_heads=4, num_key_value_heads=2, head_dim=16)
model = AutoModelForCausalLM.from_config(cfg)
model(torch.zeros(1, 8, dtype=torch.long))
""",
    "light": """
import snakemake.script, numpy, pandas
import pidistill.verifiers.math
""",
}

SHARED_PROBE = "print(any('libpython' in line for line in open('/proc/self/maps')))"


def interpreters(given: list[str]) -> list[str]:
    if given:
        return given
    base = Path(sys._base_executable).resolve()
    found = [str(base)]
    for cand in ("/usr/bin/python3.11", "/usr/local/bin/python3.11", shutil.which("python3.11")):
        if cand and "/shims/" in cand:  # a pyenv shim is a shell script in front of an interpreter
            continue
        if cand and Path(cand).exists() and Path(cand).resolve() not in {Path(f).resolve() for f in found}:
            found.append(cand)
    return found


def run_once(python: str, code: str) -> float:
    prelude = f"import sys; sys.path[:0] = [{str(SITE)!r}, {str(REPO)!r}]\n"
    t = time.perf_counter()
    subprocess.run([python, "-s", "-c", prelude + code], check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    return time.perf_counter() - t


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--python", action="append", default=[], help="an interpreter to time (repeatable)")
    args = parser.parse_args()
    pythons = interpreters(args.python)
    if len(pythons) < 2:
        print("only one python3.11 found; give another with --python", file=sys.stderr)
    shared = {p: subprocess.run([p, "-c", SHARED_PROBE], capture_output=True, text=True).stdout.strip() for p in pythons}
    times: dict[tuple[str, str], list[float]] = {(p, w): [] for p in pythons for w in WORKLOADS}
    for p in pythons:  # warm the page cache and the bytecode caches, not timed
        for code in WORKLOADS.values():
            run_once(p, code)
    for _ in range(args.repeats):
        for w, code in WORKLOADS.items():
            for p in pythons:
                times[(p, w)].append(run_once(p, code))
    print(f"{'interpreter':<45} {'libpython':<10} " + " ".join(f"{w + ' s':>10} {'ratio':>6}" for w in WORKLOADS))
    first = pythons[0]
    for p in pythons:
        cells = []
        for w in WORKLOADS:
            med = statistics.median(times[(p, w)])
            cells.append(f"{med:>10.2f} {med / statistics.median(times[(first, w)]):>6.2f}")
        print(f"{p:<45} {shared[p]:<10} " + " ".join(cells))
    print(f"(medians of {args.repeats} fresh processes each, interleaved; ratio: time / the first interpreter's)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
