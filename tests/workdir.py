"""A scratch copy of the workflow for tests that run Snakemake (edits there never touch the checkout)."""

from __future__ import annotations

import shutil
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
COPY = ["Snakefile", "rules", "scripts", "config", "envs", "paper", "pidistill", "slurm", "tests/configs"]


def make_workdir(dest: Path) -> Path:
    for item in COPY:
        src = REPO / item
        target = dest / item
        if src.is_dir():
            shutil.copytree(src, target, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, target)
    return dest
