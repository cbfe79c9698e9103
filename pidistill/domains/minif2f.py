"""miniF2F in Lean 4: the two published variants, as formal problems.

A formal problem's ``meta`` holds what the checker needs to rebuild the file it checks: the
``header`` (imports, options, ``open``) and the ``statement`` (``theorem name ... := by``), exactly
as the dataset has them, plus the informal problem where the dataset gives one, the split and
the ``variant``. The two variants are not interchangeable (most test statements differ between
them, some in meaning), so every record says which one it came from:

* ``minif2f-deepseek`` — DeepSeek-Prover-V1.5's ``datasets/minif2f.jsonl``: 488 records (test and
  valid, 244 each) with ``name``, ``split``, ``informal_prefix``, ``formal_statement``, ``goal``
  and one shared ``header``;
* ``minif2f-lean4`` — a ``git archive`` of yangky11/miniF2F-lean4 (``.tar.gz``): one
  ``MiniF2F/Test/<name>.lean`` per test problem, each a header and one ``theorem ... := by sorry``.
"""

from __future__ import annotations

import re
import tarfile
from pathlib import Path

from pidistill.domains.raw import STR, RawFormat, check_records, dataset_loader
from pidistill.io import InputError, iter_jsonl_lines
from pidistill.problems import Problem

DEEPSEEK_VARIANT = "minif2f-deepseek"
LEAN4_VARIANT = "minif2f-lean4"
DEEPSEEK_FORMAT = RawFormat("miniF2F (DeepSeek-Prover)", {"name": STR, "split": STR, "formal_statement": STR, "header": STR},
                            {"informal_prefix": STR, "goal": STR}, "name")
# The prompt of the Kimina-Prover models (their model card); {informal} may be empty.
DEFAULT_INSTRUCTION = ("Think about and solve the following problem step by step in Lean 4.\n"
                       "# Problem: {informal}\n# Formal statement:\n```lean4\n{header}{statement}\n```\n")
_THEOREM = re.compile(r"^theorem\s+(\S+)", re.MULTILINE)
_SORRY_END = re.compile(r":=\s*by\s+sorry\s*$")
_DOC = re.compile(r"^/--(.*?)-/\s*$", re.DOTALL)


def formal_prompt(header: str, statement: str, informal: str = "", instruction: str | None = None) -> str:
    return (instruction or DEFAULT_INSTRUCTION).format(header=header, statement=statement, informal=informal)


def formal_problem(name: str, header: str, statement: str, *, split: str, variant: str, informal: str = "",
                   instruction: str | None = None, **meta) -> Problem:
    return Problem(id=name, domain="formal", prompt=formal_prompt(header, statement, informal, instruction),
                   meta={"name": name, "header": header, "statement": statement, "informal": informal, "split": split,
                         "variant": variant, **meta})


def _informal(prefix: str | None) -> str:
    """DeepSeek's ``informal_prefix`` is a Lean doc comment (``/-- ... -/``): its text."""
    if not prefix:
        return ""
    m = _DOC.match(prefix.strip())
    return (m.group(1) if m else prefix).strip()


def _local_file(dataset: str, source: str | None, what: str) -> Path:
    if not source:
        raise InputError(f"dataset {dataset!r} reads a local file: set its source to {what}")
    path = Path(source)
    if not path.is_file():
        raise InputError(f"{source}: file not found")
    return path


def _splits(split: str) -> set[str]:
    wanted = {s.strip() for s in split.split(",")}
    if not wanted <= {"test", "valid"}:
        raise InputError(f"miniF2F option split={split!r}: test, valid or test,valid")
    return wanted


@dataset_loader("minif2f-deepseek")
def load_minif2f_deepseek(source: str | None = None, *, split: str = "test", instruction: str | None = None,
                          limit: int | None = None) -> list[Problem]:
    """The DeepSeek-Prover-V1.5 miniF2F file (JSON Lines); ``split``: test, valid or test,valid."""
    path = _local_file("minif2f-deepseek", source, "DeepSeek-Prover-V1.5's datasets/minif2f.jsonl")
    wanted = _splits(split)
    rows = check_records(source, ((f"{source}:{n}", row) for n, row in iter_jsonl_lines(path)), DEEPSEEK_FORMAT)
    problems = []
    for where, row in rows:
        statement = row["formal_statement"].rstrip()
        if not statement.endswith(":= by"):
            raise InputError(f"{where}: formal_statement must end with ':= by' (the proof is what the model writes)")
        if row["split"] not in {"test", "valid"}:
            raise InputError(f"{where}: split must be test or valid, got {row['split']!r}")
        if row["split"] not in wanted:
            continue
        extra = {"goal": row["goal"]} if row.get("goal") else {}
        problems.append(formal_problem(row["name"], row["header"], statement, split=row["split"], variant=DEEPSEEK_VARIANT,
                                       informal=_informal(row.get("informal_prefix")), instruction=instruction, **extra))
    return sorted(problems, key=lambda p: p.id)[:limit]


def parse_lean_file(where: str, text: str) -> tuple[str, str, str]:
    """(name, header, statement) of a miniF2F-lean4 file: one theorem whose proof is ``by sorry``."""
    found = list(_THEOREM.finditer(text))
    if len(found) != 1:
        raise InputError(f"{where}: expected one `theorem` at the start of a line, found {len(found)}")
    m = found[0]
    body = text[m.start():].rstrip()
    if not _SORRY_END.search(body):
        raise InputError(f"{where}: the theorem must end with ':= by sorry' (the proof is what the model writes)")
    statement = _SORRY_END.sub(":= by", body)
    return m.group(1), text[:m.start()], statement


@dataset_loader("minif2f-lean4")
def load_minif2f_lean4(source: str | None = None, *, instruction: str | None = None,
                       limit: int | None = None) -> list[Problem]:
    """The miniF2F-lean4 test split from a ``git archive`` tarball (``MiniF2F/Test/<name>.lean``)."""
    path = _local_file("minif2f-lean4", source, "a .tar.gz of yangky11/miniF2F-lean4 (MiniF2F/Test)")
    try:
        archive = tarfile.open(path, "r:*")
    except tarfile.TarError as exc:
        raise InputError(f"{source}: not a tar archive ({exc})") from None
    problems = []
    with archive:
        for member in sorted(archive.getmembers(), key=lambda m: m.name):
            parts = Path(member.name).parts
            if not (member.isfile() and len(parts) >= 3 and parts[-2] == "Test" and parts[-3] == "MiniF2F"
                    and parts[-1].endswith(".lean")):
                continue
            where = f"{source}: {member.name}"
            text = archive.extractfile(member).read().decode("utf-8")
            name, header, statement = parse_lean_file(where, text)
            if name != Path(member.name).stem:
                raise InputError(f"{where}: theorem {name!r} in a file named {Path(member.name).name}")
            problems.append(formal_problem(name, header, statement, split="test", variant=LEAN4_VARIANT,
                                           instruction=instruction))
    if not problems:
        raise InputError(f"{source}: no MiniF2F/Test/<name>.lean files in the archive")
    return problems[:limit]
