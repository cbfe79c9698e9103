"""HumanEval, HumanEval+, MBPP (full and sanitized) and MBPP+ as problem records.

Each loader takes ``source``: a local raw file exactly as its authors publish it, or None to read
the Hugging Face hub through ``datasets``. Public tests follow muCode: HumanEval's first docstring
example, MBPP's ``test_list[0]``. The verdict uses every test; feedback may quote public ones only.

HumanEval+ and MBPP+ (EvalPlus) as released (the hub's ``evalplus/humanevalplus`` and
``evalplus/mbppplus``): each record's ``test`` is EvalPlus's test program, the base and the extra
("plus") inputs with the expected outputs of the reference solution and EvalPlus's float-tolerant
``assertion``; it is the problem's private test program, as in muCode's MBPP+/HumanEval+ rows. MBPP+'s
older git snapshot (``../shared/datasets/MbppPlus.jsonl``: ``assertion``, ``base_input``,
``plus_input``, no expected outputs) is judged on its ``assertion`` lines only.
"""

from __future__ import annotations

import ast
import json
import re

from pidistill.domains.raw import INT, LIST_OF_STR, STR, RawFormat, check_records, dataset_loader
from pidistill.io import InputError, read_records
from pidistill.problems import Problem

MBPP_SPLITS = {"prompt": (1, 10), "test": (11, 510), "validation": (511, 600), "train": (601, 974)}
_HUB = {
    "humaneval": ("openai_humaneval", None),
    "mbpp": ("google-research-datasets/mbpp", "full"),
    "mbpp-sanitized": ("google-research-datasets/mbpp", "sanitized"),
    "mbpp-plus": ("evalplus/mbppplus", None),
    "humaneval-plus": ("evalplus/humanevalplus", None),
}
FORMATS = {
    "humaneval": RawFormat("HumanEval", {"task_id": STR, "prompt": STR, "canonical_solution": STR, "test": STR,
                                         "entry_point": STR}, {}, "task_id"),
    "mbpp": RawFormat("MBPP", {"task_id": INT, "text": STR, "code": STR, "test_list": LIST_OF_STR},
                      {"test_setup_code": STR, "challenge_test_list": LIST_OF_STR}, "task_id", nonempty=("test_list",)),
    "mbpp-sanitized": RawFormat("sanitized MBPP", {"task_id": INT, "code": STR, "test_list": LIST_OF_STR},
                                {"prompt": STR, "text": STR, "test_imports": LIST_OF_STR}, "task_id", nonempty=("test_list",)),
    "mbpp-plus": RawFormat("MBPP+", {"task_id": STR, "prompt": STR, "entry_point": STR, "canonical_solution": STR,
                                     "assertion": STR}, {}, "task_id"),
    # MBPP+ as EvalPlus releases it (the hub's evalplus/mbppplus): the test program with the plus inputs
    "mbpp-plus-release": RawFormat("MBPP+", {"task_id": INT, "prompt": STR, "code": STR, "test_list": LIST_OF_STR,
                                             "test": STR}, {"source_file": STR, "test_imports": LIST_OF_STR},
                                   "task_id", nonempty=("test_list",)),
}
FORMATS["humaneval-plus"] = RawFormat("HumanEval+", FORMATS["humaneval"].required, {}, "task_id")


def _read_rows(source: str | None, name: str, revision: str | None = None,
               layouts: tuple[str, ...] | None = None) -> list[dict]:
    """The raw records of dataset ``name``, each checked against its published layout (with
    ``layouts``, the first of them whose fields the first record has: one dataset, two releases)."""
    if source is None:
        repo = _HUB[name][0]
        where = f"hub dataset {repo}"
        located = [(f"{where}, row {n}", r) for n, r in enumerate(_hub_rows(name, revision), start=1)]
    else:
        where, located = str(source), list(read_records(source))
    fmt = FORMATS[name]
    if layouts and located:
        first = located[0][1]
        fmt = next((FORMATS[k] for k in layouts if set(FORMATS[k].required) <= set(first)), FORMATS[layouts[-1]])
    return [r for _, r in check_records(where, located, fmt)]


def _hub_rows(name: str, revision: str | None = None) -> list[dict]:
    """All rows of a hub dataset (every split), as plain dicts, loaded at a resolved commit."""
    from datasets import load_dataset  # imported here: heavy, and only needed for the hub

    from pidistill.provenance import hub_dataset_revision

    repo, config = _HUB[name]
    commit = hub_dataset_revision(repo, config, revision)
    data = load_dataset(repo, config, revision=commit) if config else load_dataset(repo, revision=commit)
    rows: list[dict] = []
    for split in data:
        rows.extend(dict(r) for r in data[split])
    return rows


def _parses(code: str) -> bool:
    import warnings

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ast.parse(code)
    except SyntaxError:
        return False
    return True


def docstring_example(prompt: str, entry_point: str) -> str | None:
    """The first example in a HumanEval docstring, as an assert statement (or None)."""
    lines = prompt.splitlines()
    for i, line in enumerate(lines):
        s = line.strip()
        if s.startswith(">>>") and entry_point + "(" in s:
            call = s[3:].strip()
            expected = lines[i + 1].strip() if i + 1 < len(lines) else ""
            if not expected or expected.startswith(">>>") or expected.startswith('"""'):
                continue
            test = f"assert {call} == {expected}"
            if _parses(test):
                return test
    pattern = re.compile(rf"({re.escape(entry_point)}\(.*\))\s*(?:==>|==|➞|=>|->|returns|should return|=)\s*(.+)$")
    for line in lines:
        m = pattern.search(line.strip())
        if m:
            call, expected = m.group(1), m.group(2).strip().rstrip(".,;")
            test = f"assert {call} == {expected}"
            if _parses(test):
                return test
    return None


@dataset_loader("humaneval")
def load_humaneval(source: str | None = None, *, limit: int | None = None, revision: str | None = None) -> list[Problem]:
    return _humaneval_problems(_read_rows(source, "humaneval", revision), "humaneval", limit)


@dataset_loader("humaneval-plus")
def load_humaneval_plus(source: str | None = None, *, limit: int | None = None,
                        revision: str | None = None) -> list[Problem]:
    """HumanEval+ (EvalPlus): HumanEval's 164 prompts, its ``test`` the check program with EvalPlus's
    base and plus inputs (the private tests); the public test is the docstring example, as HumanEval's."""
    return _humaneval_problems(_read_rows(source, "humaneval-plus", revision), "humaneval-plus", limit)


def _humaneval_problems(rows: list[dict], benchmark: str, limit: int | None) -> list[Problem]:
    out = []
    for r in rows[: int(limit) if limit else None]:
        public = docstring_example(r["prompt"], r["entry_point"])
        out.append(Problem(
            id=r["task_id"],
            domain="code",
            prompt="Complete the following Python function.\n\n```python\n" + r["prompt"] + "```",
            solution=r["prompt"] + r["canonical_solution"],
            entry_point=r["entry_point"],
            code_prefix=r["prompt"],
            test_program=r["test"],
            public_tests=[public] if public else [],
            meta={"benchmark": benchmark, "canonical_solution": r["canonical_solution"]},
        ))
    return out


_CALL = re.compile(r"assert\s+(?:not\s+)?\(?\s*(?:set|sorted|math\.isclose|abs|round|list|tuple|str|int|float)?\(?\s*([A-Za-z_][A-Za-z0-9_]*)\s*\(")


def entry_point_of(test: str, code: str | None = None) -> str | None:
    """The function a test calls: the first called name that the reference code defines."""
    defined = set(re.findall(r"^def\s+([A-Za-z_][A-Za-z0-9_]*)", code or "", re.MULTILINE))
    try:
        tree = ast.parse(test)
    except SyntaxError:
        tree = None
    if tree is not None:
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                if not defined or node.func.id in defined:
                    if node.func.id not in dir(__builtins__) or node.func.id in defined:
                        return node.func.id
    m = _CALL.search(test)
    return m.group(1) if m else None


def _split_filter(rows: list[dict], split: str | None) -> list[dict]:
    if split in (None, "all"):
        return rows
    if split not in MBPP_SPLITS:
        raise InputError(f"unknown MBPP split {split!r}; known: all, {', '.join(MBPP_SPLITS)}")
    lo, hi = MBPP_SPLITS[split]
    return [r for r in rows if lo <= int(str(r["task_id"]).split("/")[-1]) <= hi]


def _mbpp_prompt(text: str, tests: list[str]) -> str:
    return f"{text.strip()}\nYour code should pass this test:\n{tests[0]}" if tests else text.strip()


@dataset_loader("mbpp")
def load_mbpp(source: str | None = None, split: str | None = "all", challenge: bool = False, *,
              revision: str | None = None) -> list[Problem]:
    """MBPP full. Options: split (all|prompt|test|validation|train, the standard task_id ranges),
    challenge (also require ``challenge_test_list``)."""
    rows = sorted(_split_filter(_read_rows(source, "mbpp", revision), split), key=lambda r: int(r["task_id"]))
    out = []
    for r in rows:
        tests = list(r["test_list"]) + (list(r.get("challenge_test_list") or []) if challenge else [])
        setup = (r.get("test_setup_code") or "").replace("\r\n", "\n")
        out.append(Problem(
            id=f"mbpp/{r['task_id']}",
            domain="code",
            prompt=_mbpp_prompt(r["text"], r["test_list"]),
            solution=r["code"].replace("\r\n", "\n"),
            entry_point=entry_point_of(r["test_list"][0], r["code"]),
            tests=tests,
            public_tests=[r["test_list"][0]],
            test_setup=setup,
            meta={"benchmark": "mbpp", "task_id": r["task_id"], "split": _split_of(int(r["task_id"]))},
        ))
    return out


def _split_of(task_id: int) -> str:
    return next((name for name, (lo, hi) in MBPP_SPLITS.items() if lo <= task_id <= hi), "unknown")


@dataset_loader("mbpp-sanitized")
def load_mbpp_sanitized(source: str | None = None, split: str | None = "all", *, revision: str | None = None) -> list[Problem]:
    """Sanitized MBPP (427 tasks). ``test_imports`` run before the tests and before the program."""
    rows = sorted(_split_filter(_read_rows(source, "mbpp-sanitized", revision), split), key=lambda r: int(r["task_id"]))
    out = []
    for r in rows:
        imports = "\n".join(r.get("test_imports") or [])
        text = r.get("prompt") or r.get("text") or ""
        out.append(Problem(
            id=f"mbpp-sanitized/{r['task_id']}",
            domain="code",
            prompt=_mbpp_prompt(text, r["test_list"]),
            solution=r["code"],
            entry_point=entry_point_of(r["test_list"][0], r["code"]),
            tests=list(r["test_list"]),
            public_tests=[r["test_list"][0]],
            meta={"benchmark": "mbpp-sanitized", "task_id": r["task_id"], "split": _split_of(int(r["task_id"])),
                  "judge_prelude": imports, "candidate_prelude": imports},
        ))
    return out


@dataset_loader("mbpp-plus")
def load_mbpp_plus(source: str | None = None, *, revision: str | None = None) -> list[Problem]:
    """MBPP+ (EvalPlus). As released (the hub's default, fields ``test``, ``test_list``, ``code``):
    the private tests are the record's test program, base and plus inputs (``_mbpp_plus_release``).
    The older git snapshot (fields ``assertion``, ``base_input``, ``plus_input``) is judged on its
    ``assertion`` lines: it has the plus inputs but not their expected outputs, and computing them
    like EvalPlus needs its per-task input type restoration and special oracles, which this loader
    does not reimplement (see docs/code-verifier.md)."""
    rows = _read_rows(source, "mbpp-plus", revision, layouts=("mbpp-plus-release", "mbpp-plus"))
    if rows and "test" in rows[0] and "assertion" not in rows[0]:
        return [_mbpp_plus_release(r) for r in sorted(rows, key=lambda r: int(r["task_id"]))]
    out = []
    for r in rows:
        tests = [line for line in r["assertion"].replace("\r\n", "\n").split("\n") if line.strip()]
        text = r["prompt"].strip().strip("'\"").strip()
        # the assertions use math.isclose without importing math (EvalPlus's harness provides it)
        imports = "\n".join(["import math"] + [line for line in tests if line.startswith(("import ", "from "))])
        tests = [t for t in tests if not t.startswith(("import ", "from "))]
        out.append(Problem(
            id=r["task_id"],
            domain="code",
            prompt=_mbpp_prompt(text, tests),
            solution=r["canonical_solution"].strip("\n") + "\n",
            entry_point=r["entry_point"],
            tests=tests,
            public_tests=tests[:1],
            meta={"benchmark": "mbpp-plus", "judge_prelude": imports, "atol": r.get("atol"), "n_base_inputs": len(_maybe_json(r.get("base_input"))),
                  "n_plus_inputs": len(_maybe_json(r.get("plus_input")))},
        ))
    return out


def _mbpp_plus_release(r: dict) -> Problem:
    """One record of MBPP+ as EvalPlus releases it: the private tests are its test program (base and
    plus inputs, the reference's outputs); the public test and the prompt's test are ``test_list[0]``."""
    imports = "\n".join(r.get("test_imports") or [])
    public = r["test_list"][0]
    return Problem(
        id=f"Mbpp/{int(r['task_id'])}",  # the ids of EvalPlus's own files
        domain="code",
        prompt=_mbpp_prompt(r["prompt"].strip().strip("'\"").strip(), r["test_list"]),
        solution=r["code"].replace("\r\n", "\n"),
        entry_point=entry_point_of(public, r["code"]),
        test_program=r["test"].replace("\r\n", "\n"),
        public_tests=[public],
        meta={"benchmark": "mbpp-plus", "release": True, "judge_prelude": imports, "candidate_prelude": imports},
    )


def _maybe_json(value):
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return []
    return value or []
