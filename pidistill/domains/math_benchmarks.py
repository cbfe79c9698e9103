"""MATH-500 (evaluation) and MATH training problems as :class:`~pidistill.problems.Problem` records.

Both loaders read either a local file in the published format (``source``) or, with no source, a
Hugging Face hub dataset through ``datasets`` (unreachable offline; the hub name is an option).

* MATH-500 rows carry ``problem, solution, answer, subject, level, unique_id``; the record's id is
  the ``unique_id`` (so samples can name it) and ``meta`` keeps ``level``, ``subject`` and
  ``unique_id`` for the per-level table.
* MATH training rows come in two layouts on the hub: with an ``answer`` column (e.g. the PRM800K
  split) or only ``problem, level ("Level 3"), type, solution`` (the original MATH release and its
  mirrors); without an ``answer`` the gold is the last ``\\boxed{}`` of the solution, and rows
  without one are skipped with a logged warning.

The prompt is the problem followed by ``instruction`` (default: ask for a ``\\boxed{}`` answer,
which the verifier requires in its strict setting); pass ``instruction=""`` for the bare problem.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Iterable

from pidistill.domains.raw import STR, STR_OR_NUMBER, RawFormat, check_records, dataset_loader
from pidistill.io import InputError, read_records
from pidistill.problems import Problem

log = logging.getLogger(__name__)

DEFAULT_INSTRUCTION = "Please reason step by step, and put your final answer within \\boxed{}."
MATH500_HUB = "HuggingFaceH4/MATH-500"
MATH_TRAIN_HUB = "EleutherAI/hendrycks_math"
MATH_TRAIN_CONFIGS = (
    "algebra",
    "counting_and_probability",
    "geometry",
    "intermediate_algebra",
    "number_theory",
    "prealgebra",
    "precalculus",
)
_SUBJECT_NAMES = {
    "algebra": "Algebra",
    "counting_and_probability": "Counting & Probability",
    "geometry": "Geometry",
    "intermediate_algebra": "Intermediate Algebra",
    "number_theory": "Number Theory",
    "prealgebra": "Prealgebra",
    "precalculus": "Precalculus",
}


def _prompt(problem: str, instruction: str | None) -> str:
    instruction = DEFAULT_INSTRUCTION if instruction is None else instruction
    return problem.strip() + ("\n\n" + instruction if instruction else "")


def _level(value) -> int | None:
    if value is None:
        return None
    if isinstance(value, int):
        return value
    m = re.search(r"\d+", str(value))
    return int(m.group(0)) if m else None


def _subject(value) -> str | None:
    if value is None:
        return None
    return _SUBJECT_NAMES.get(str(value), str(value))


MATH500_FORMAT = RawFormat("MATH-500", {"problem": STR, "answer": STR_OR_NUMBER, "unique_id": STR},
                           {"solution": STR, "subject": STR, "level": STR_OR_NUMBER}, "unique_id")
MATH_TRAIN_FORMAT = RawFormat("MATH", {"problem": STR},
                              {"solution": STR, "answer": STR_OR_NUMBER, "level": STR_OR_NUMBER, "type": STR,
                               "subject": STR, "unique_id": STR}, "unique_id")


def _local_rows(source: str) -> list[tuple[str, dict]]:
    """The records of a local file: JSON Lines or a JSON array (optionally gzip-compressed) read
    directly; Parquet, CSV and ``save_to_disk`` directories through ``datasets``."""
    path = Path(source)
    if not path.exists():
        raise InputError(f"{source}: file not found")
    suffixes = "".join(path.suffixes).lower()
    if not path.is_dir() and ".parquet" not in suffixes and ".csv" not in suffixes:
        return read_records(path)
    import datasets

    try:
        if path.is_dir():
            loaded = datasets.load_from_disk(str(path))
            if isinstance(loaded, datasets.DatasetDict):
                loaded = loaded[next(iter(loaded))]
        else:
            kind = "parquet" if ".parquet" in suffixes else "csv"
            loaded = datasets.load_dataset(kind, data_files=str(path), split="train")
    except Exception as exc:  # whatever datasets raises for a file it cannot read: the user's file
        what = "a dataset saved with save_to_disk" if path.is_dir() else f"a {kind} file"
        first = (str(exc).strip().splitlines() or [""])[0][:200]
        raise InputError(f"{source}: cannot be read as {what} ({type(exc).__name__}: {first})") from None
    return [(f"{source}: row {n}", dict(row)) for n, row in enumerate(loaded, start=1)]


def _hub_dataset(name: str, split: str, configs: Iterable[str] | None = None, revision: str | None = None):
    """A hub dataset split (configurations concatenated), loaded at a resolved commit."""
    import datasets

    from pidistill.provenance import hub_dataset_revision

    if configs:
        parts = [datasets.load_dataset(name, c, split=split, revision=hub_dataset_revision(name, c, revision))
                 for c in configs]
        return datasets.concatenate_datasets(parts)
    return datasets.load_dataset(name, split=split, revision=hub_dataset_revision(name, None, revision))


def _hub_rows(name: str, split: str, configs: Iterable[str] | None = None, revision: str | None = None):
    return [(f"hub dataset {name}, row {n}", dict(row)) for n, row in enumerate(_hub_dataset(name, split, configs, revision), start=1)]


def _filter(problems: list[Problem], levels=None, subjects=None, limit: int | None = None) -> list[Problem]:
    if levels is not None:
        wanted = {int(x) for x in ([levels] if isinstance(levels, (int, str)) else levels)}
        problems = [p for p in problems if p.meta.get("level") in wanted]
    if subjects is not None:
        wanted_s = {subjects} if isinstance(subjects, str) else set(subjects)
        problems = [p for p in problems if p.meta.get("subject") in wanted_s]
    if limit is not None:
        problems = problems[: int(limit)]
    return problems


@dataset_loader("math500")
def load_math500(
    source: str | None = None,
    *,
    hub: str = MATH500_HUB,
    revision: str | None = None,
    split: str = "test",
    instruction: str | None = None,
    levels=None,
    subjects=None,
    limit: int | None = None,
) -> list[Problem]:
    """MATH-500 problems from ``source`` (the published JSONL) or the hub."""
    located = _local_rows(source) if source else _hub_rows(hub, split, revision=revision)
    problems = []
    for _, row in check_records(source or f"hub dataset {hub}", located, MATH500_FORMAT):
        uid = str(row["unique_id"])
        level, subject = _level(row.get("level")), _subject(row.get("subject"))
        problems.append(
            Problem(
                id=uid,
                domain="math",
                prompt=_prompt(row["problem"], instruction),
                answer=str(row["answer"]).strip(),
                solution=row.get("solution"),
                meta={"level": level, "subject": subject, "unique_id": uid, "dataset": "math500"},
            )
        )
    return _filter(problems, levels, subjects, limit)


@dataset_loader("math-train")
def load_math_train(
    source: str | None = None,
    *,
    hub: str = MATH_TRAIN_HUB,
    revision: str | None = None,
    configs=MATH_TRAIN_CONFIGS,
    split: str = "train",
    instruction: str | None = None,
    levels=None,
    subjects=None,
    limit: int | None = None,
    exclude: str | None = None,
) -> list[Problem]:
    """MATH training problems from ``source`` (a local file or ``save_to_disk`` directory) or the hub.

    ``configs`` are the hub configurations to concatenate (the per-subject ones of
    ``EleutherAI/hendrycks_math``; pass ``configs=null`` for a single-config dataset).
    ``exclude``: a MATH-500 file whose problems (by text) are dropped, a guard against overlap.
    """
    from pidistill.verifiers.math import last_boxed

    if source:
        located = _local_rows(source)
    else:
        located = _hub_rows(hub, split, [configs] if isinstance(configs, str) else configs, revision)
    rows = [row for _, row in check_records(source or f"hub dataset {hub}", located, MATH_TRAIN_FORMAT)]
    excluded: set[str] = set()
    if exclude:
        excluded = {p.prompt for p in load_math500(exclude, instruction="")}
    problems, skipped = [], 0
    for n, row in enumerate(rows):
        answer = row.get("answer")
        if answer is None or not str(answer).strip():
            answer = last_boxed(row.get("solution") or "")
        if answer is None or not answer.strip():
            skipped += 1
            continue
        if row["problem"].strip() in excluded:
            skipped += 1
            continue
        uid = row.get("unique_id") or f"math_train/{n:05d}"
        problems.append(
            Problem(
                id=str(uid),
                domain="math",
                prompt=_prompt(row["problem"], instruction),
                answer=answer.strip(),
                solution=row.get("solution"),
                meta={
                    "level": _level(row.get("level")),
                    "subject": _subject(row.get("subject") or row.get("type")),
                    "dataset": "math_train",
                },
            )
        )
    if skipped:
        log.warning("math-train: skipped %d rows without a boxed answer or overlapping the excluded set", skipped)
    return _filter(problems, levels, subjects, limit)
