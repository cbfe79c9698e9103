"""Readers for the JSON Lines files the stages hand each other: samples, verdicts and SFT pairs.

Each reader checks every record for the fields its stage uses (and, given the problems, that each
record's id is one of them), so a wrong file is one :class:`~pidistill.io.InputError` naming the
file, the line and the field, and what was expected; never a ``KeyError`` halfway through a stage.
Duplicated ids are normal (n samples per problem); an id that is not in the problem set is an
error, since it means the records were made for another problems file (another split or dataset).
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

from pidistill.io import InputError, iter_jsonl_lines

_KINDS = {str: "a string", bool: "true or false", int: "an integer", float: "a number", list: "a list",
          dict: "an object", type(None): "null"}

SAMPLE = {"id": (str,), "completion": (str, type(None))}
VERDICT = {"id": (str,), "passed": (bool,)}
RETRY_SOURCE = {**VERDICT, "attempt": (int,), "completion": (str, type(None))}
PAIR = {"id": (str,), "prompt": (list,), "completion": (list,)}
OPSD_PROMPT = {"id": (str,), "prompt": (list,), "privileged_context": (str,)}

WHAT = {
    "samples": 'a samples file: one {"id": <problem id>, "completion": <text>} per line, as `pidistill sample` writes',
    "verdicts": "a verdicts file, as `pidistill verify` writes",
    "attempt verdicts": "verdicts of sampled attempts (`pidistill verify` output for what `pidistill sample` or "
                        "`pidistill retry` wrote), whose records carry id, attempt, completion and passed",
    "pairs": "an SFT pairs file, as `pidistill pairs` writes",
    "skeletons": "a skeletons file (id, skeleton, reason per line), as the check_skeletons rule writes",
    "OPSD prompts": "an OPSD prompts file (id, prompt, privileged_context per line), as the build_opsd_prompts rule writes",
}


def _ok(value, kinds: tuple) -> bool:
    if isinstance(value, bool) and bool not in kinds:
        return False  # true is not an attempt number
    return isinstance(value, kinds) or (float in kinds and isinstance(value, int))


def read_rows(path: str | Path, fields: Mapping[str, tuple], kind: str, *, problems: Mapping | None = None,
              problems_path: str | Path | None = None, errors: str = "strict") -> list[dict]:
    """The records of ``path``; each must have ``fields`` (name -> accepted types) and, when
    ``problems`` is given, an id among them. ``kind`` names the file kind for messages (a key of
    ``WHAT``)."""
    what = WHAT.get(kind, kind)
    rows, unknown = [], []
    for lineno, row in iter_jsonl_lines(path, errors=errors):
        for name, kinds in fields.items():
            if name not in row:
                raise InputError(f"{path}:{lineno}: no field {name!r} (expected {what})")
            if not _ok(row[name], kinds):
                accepted = " or ".join(_KINDS.get(k, k.__name__) for k in kinds)
                raise InputError(f"{path}:{lineno}: field {name!r} must be {accepted}, got {_KINDS.get(type(row[name]), type(row[name]).__name__)}")
        if problems is not None and row["id"] not in problems:
            unknown.append((lineno, row["id"]))
        rows.append(row)
    if unknown:
        lineno, pid = unknown[0]
        where = problems_path or "the problem set"
        count = f"{len(unknown)} of {len(rows)} records name problems that are not there"
        if not problems:
            count += f"; {where} holds no problems"
        raise InputError(f"{path}:{lineno}: id {pid!r} is not in {where} ({count}: were these {kind} made for another "
                         f"problems file?)")
    return rows


def read_samples(path: str | Path, problems: Mapping, problems_path: str | Path | None = None) -> list[dict]:
    """Samples to verify. Bytes that are not UTF-8 inside a completion are read as lone surrogates
    (the verifier judges the text around them) rather than stopping the batch; a record without an
    ``id`` or ``completion``, or a completion that is neither text nor null, is an InputError."""
    return read_rows(path, SAMPLE, "samples", problems=problems, problems_path=problems_path, errors="surrogateescape")


def read_verdicts(path: str | Path, problems: Mapping | None = None, problems_path: str | Path | None = None,
                  fields: Mapping[str, tuple] = VERDICT) -> list[dict]:
    """Verdicts with ``fields``: :data:`VERDICT` (id, passed) to count them, :data:`RETRY_SOURCE`
    (also attempt, completion) where a retry or an SFT pair is built from them."""
    kind = "attempt verdicts" if "attempt" in fields else "verdicts"
    return read_rows(path, fields, kind, problems=problems, problems_path=problems_path)


def read_pairs(path: str | Path) -> list[dict]:
    return read_rows(path, PAIR, "pairs")
