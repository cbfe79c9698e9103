"""Helpers for tests that run Snakemake: a scratch copy of the workflow (edits there never touch the
checkout), the offline environment, dry-run job counts, and byte-for-byte comparison of results."""

from __future__ import annotations

import filecmp
import os
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = Path(sys.executable).with_name("snakemake")
COPY = ["Snakefile", "rules", "scripts", "config", "envs", "paper", "pidistill", "profiles", "slurm", "report",
        "tests/configs", "tests/data"]
HAVE_LATEX = shutil.which("latexmk") is not None and shutil.which("pdflatex") is not None
OFFLINE_ENV = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
DATA_SUFFIXES = {".csv", ".tex", ".json", ".jsonl", ".safetensors"}


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


def standin_environment(dest: Path, inherit: bool = True) -> Path:
    """A venv at ``dest`` (``python -m venv --without-pip`` from this interpreter), to run jobs in
    through the config's ``environments`` as the cluster runs them in envs/ venvs. With ``inherit``,
    a .pth file puts this interpreter's site-packages on its path, so it can run every real job
    without installing the lock again; without, it has the standard library only."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(dest)], check=True)
    if inherit:
        site = Path(sysconfig.get_path("purelib", vars={"base": str(dest), "platbase": str(dest)}))
        # addsitedir (not a bare path line) also runs the .pth files there (the editable pidistill)
        (site / "_driver_site.pth").write_text(f"import site; site.addsitedir({sysconfig.get_path('purelib')!r})\n")
    return dest


def offline_env(**extra: str) -> dict[str, str]:
    return {**os.environ, **OFFLINE_ENV, **extra}


def job_counts(dry_run_output: str) -> dict[str, int]:
    """Rule -> job count from the "Job stats" table of a dry run."""
    counts: dict[str, int] = {}
    for line in dry_run_output.splitlines():
        m = re.match(r"^([a-z_]+)\s+(\d+)$", line.strip())
        if m and m.group(1) != "total":
            counts[m.group(1)] = int(m.group(2))
    return counts


def differing_data(workdir: Path, other: Path) -> tuple[int, list[str]]:
    """How many data files under workdir/results (not logs or benchmarks) were compared with their
    namesakes in other, and those (relative paths) that are missing there or differ in a byte."""
    compared, differ = 0, []
    for path in sorted((workdir / "results").rglob("*")):
        rel = path.relative_to(workdir)
        if path.suffix in DATA_SUFFIXES and path.is_file() and not {"logs", "benchmarks"} & set(rel.parts):
            compared += 1
            if not (other / rel).is_file() or not filecmp.cmp(path, other / rel, shallow=False):
                differ.append(str(rel))
    return compared, differ


def assert_same_data(workdir: Path, other: Path) -> int:
    """Every data file under workdir/results (not logs or benchmarks) is byte-identical in other;
    returns how many files were compared."""
    compared, differ = differing_data(workdir, other)
    assert not differ, f"{differ[0]} differs"
    return compared
