"""Bad input at every entry point (issue 17).

A user's mistake (a missing, empty, truncated, mis-formatted or mis-shaped file; ids of another
problem set; an option the loader does not take) ends the real `pidistill` command with exit 2 and
one line, "pidistill CMD: error: ...", naming the file and the line, record or field, and no
traceback; nothing is left at --out. Odd model output (undecodable text, NUL bytes, a huge or a
null completion) is judged as data: that sample fails with a reason and the batch goes on.
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import SHARED_DATASETS

PIDISTILL = str(Path(sys.executable).with_name("pidistill"))

HUMANEVAL = [
    {"task_id": f"HumanEval/{i}", "prompt": f'def add{i}(a, b):\n    """\n    >>> add{i}(1, 2)\n    3\n    """\n',
     "canonical_solution": "    return a + b\n", "test": "def check(candidate):\n    assert candidate(1, 2) == 3\n",
     "entry_point": f"add{i}"} for i in range(3)]
MBPP = [{"task_id": 11 + i, "text": "Write a function to add two numbers.", "code": "def add(a, b):\n    return a + b",
         "test_list": ["assert add(1, 2) == 3"], "test_setup_code": "", "challenge_test_list": []} for i in range(3)]
SANITIZED = [{"source_file": "x.py", "task_id": 11 + i, "prompt": "Write a function to add two numbers.",
              "code": "def add(a, b):\n    return a + b", "test_imports": [], "test_list": ["assert add(1, 2) == 3"]}
             for i in range(3)]
MBPP_PLUS = [{"task_id": f"Mbpp/{2 + i}", "prompt": '"""\nWrite a function to add two numbers.\n"""',
              "entry_point": "add", "canonical_solution": "def add(a, b):\n    return a + b", "base_input": [[1, 2]],
              "atol": 0, "plus_input": [], "contract": "", "assertion": "assert add(1, 2) == 3"} for i in range(3)]
MATH500 = [{"problem": f"Compute {i}+1.", "solution": f"\\boxed{{{i + 1}}}", "answer": str(i + 1), "subject": "Prealgebra",
            "level": 1, "unique_id": f"test/prealgebra/{i}.json"} for i in range(3)]
MATH_TRAIN = [{"problem": f"Compute {i}+2.", "level": "Level 1", "type": "Prealgebra", "solution": f"\\boxed{{{i + 2}}}",
               "unique_id": f"train/prealgebra/{i}.json"} for i in range(3)]

# loader -> (records, published layout, id field, a field to break and the value that breaks it, its message)
LOADERS = {
    "humaneval": (HUMANEVAL, "jsonl", "task_id", ("prompt", 5), "field 'prompt' must be a string, got int 5"),
    "mbpp": (MBPP, "jsonl", "task_id", ("test_list", "assert add(1, 2) == 3"), "field 'test_list' must be a list of strings"),
    "mbpp-sanitized": (SANITIZED, "json", "task_id", ("test_list", []), "field 'test_list' is empty"),
    "mbpp-plus": (MBPP_PLUS, "jsonl", "task_id", ("assertion", ["assert add(1, 2) == 3"]), "field 'assertion' must be a string, got list"),
    "math500": (MATH500, "jsonl", "unique_id", ("problem", 5), "field 'problem' must be a string, got int 5"),
    "math-train": (MATH_TRAIN, "jsonl", "unique_id", ("problem", None), "field 'problem' must be a string, got null"),
}
FORMAT_NAME = {"humaneval": "a HumanEval", "mbpp": "an MBPP", "mbpp-sanitized": "a sanitized MBPP", "mbpp-plus": "an MBPP+",
               "math500": "a MATH-500", "math-train": "a MATH"}


def _write(path: Path, rows: list[dict], layout: str = "jsonl") -> Path:
    text = json.dumps(rows) if layout == "json" else "".join(json.dumps(r) + "\n" for r in rows)
    path.write_bytes(gzip.compress(text.encode(), mtime=0) if path.suffix == ".gz" else text.encode())
    return path


def run(cwd: Path, *args: str, rc: int | None = 2):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    proc = subprocess.run([PIDISTILL, *args], cwd=cwd, capture_output=True, text=True, env=env, timeout=300)
    if rc is not None:
        assert proc.returncode == rc, proc.stderr
    return proc


def assert_one_line_error(proc, command: str, *fragments: str) -> str:
    """Exit 2, exactly one stderr line "pidistill COMMAND: error: ..." holding every fragment, no traceback."""
    assert proc.returncode == 2, proc.stderr
    assert "Traceback (most recent call last)" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    line = lines[0]
    assert line.startswith(f"pidistill {command}: error: "), line
    for fragment in fragments:
        assert fragment in line, (fragment, line)
    return line


# ------------------------------------------------------------------ pidistill prepare NAME --source FILE

def _source_case(tmp_path: Path, name: str, case: str) -> tuple[str, list[str]]:
    """Write the bad source for ``case``; return its file name and the fragments the message must hold."""
    rows, layout, id_field, (field, bad_value), field_msg = LOADERS[name]
    ext = ".json" if layout == "json" else ".jsonl"
    if case == "missing":
        return "absent" + ext, ["absent" + ext + ": file not found"]
    if case == "directory":
        (tmp_path / "adir").mkdir()
        if name.startswith("math"):  # the MATH loaders also read `datasets.save_to_disk` directories
            return "adir", ["adir: cannot be read as a dataset saved with save_to_disk"]
        return "adir", ["adir: is a directory, expected a file"]
    if case == "empty":
        (tmp_path / ("empty" + ext)).write_text("")
        return "empty" + ext, ["empty" + ext + ": no records"]
    if case == "truncated_gz":
        data = gzip.compress((json.dumps(rows) if layout == "json" else "".join(json.dumps(r) + "\n" for r in rows)).encode())
        (tmp_path / ("cut" + ext + ".gz")).write_bytes(data[: len(data) // 2])
        return "cut" + ext + ".gz", ["cut" + ext + ".gz: truncated gzip file"]
    if case == "not_gzip":
        _write(tmp_path / ("plain" + ext), rows, layout)
        os.rename(tmp_path / ("plain" + ext), tmp_path / ("plain" + ext + ".gz"))
        return "plain" + ext + ".gz", ["plain" + ext + ".gz: not a gzip file"]
    if case == "not_utf8":
        text = "".join(json.dumps(r) + "\n" for r in rows).encode()
        (tmp_path / "latin1.jsonl").write_bytes(text + b'{"x": "caf\xe9"}\n')
        return "latin1.jsonl", [f"latin1.jsonl:{len(rows) + 1}: not UTF-8 text (byte 0xe9)"]
    if case == "invalid_json":
        (tmp_path / "broken.jsonl").write_text(json.dumps(rows[0]) + "\n{not json}\n")
        return "broken.jsonl", ["broken.jsonl:2: invalid JSON: Expecting property name enclosed in double quotes (column 2)"]
    if case == "truncated_text":  # a download cut short, uncompressed
        if layout == "json":
            (tmp_path / "cut.json").write_text(json.dumps(rows)[:-10])
            return "cut.json", ["cut.json:1: invalid JSON", "the file looks truncated"]
        text = "".join(json.dumps(r) + "\n" for r in rows)
        (tmp_path / "cut.jsonl").write_text(text[: len(text) - 10])
        return "cut.jsonl", [f"cut.jsonl:{len(rows)}: invalid JSON", "it looks truncated"]
    if case == "not_object":
        (tmp_path / "arrays.jsonl").write_text(json.dumps(rows[0]) + "\n[1, 2]\n")
        return "arrays.jsonl", ["arrays.jsonl:2: expected a JSON object, got an array"]
    if case == "prepared_file":  # the output of `pidistill prepare`, handed back as the raw source
        _write(tmp_path / "problems.jsonl", [{"id": "toy_math/train/0000", "domain": "math", "prompt": "Compute 2+3.",
                                              "answer": "5", "meta": {}}])
        return "problems.jsonl", [f"problems.jsonl:1: not {FORMAT_NAME[name]} record: missing field(s)",
                                  "this looks like a problems file that `pidistill prepare` wrote"]
    if case == "bad_field":
        broken = [dict(r) for r in rows]
        broken[1][field] = bad_value
        _write(tmp_path / ("shape" + ext), broken, layout)
        where = "shape.json: record 2" if layout == "json" else "shape.jsonl:2"
        return "shape" + ext, [f"{where}: {field_msg}"]
    if case == "duplicate_id":
        _write(tmp_path / ("dup" + ext), rows + [rows[0]], layout)
        where, first = ("dup.json: record 4", "record 1") if layout == "json" else ("dup.jsonl:4", "line 1")
        return "dup" + ext, [f"{where}: duplicate {id_field} {rows[0][id_field]!r} (first at {first})"]
    raise AssertionError(case)


SOURCE_CASES = ["missing", "directory", "empty", "truncated_gz", "not_gzip", "not_utf8", "invalid_json", "truncated_text",
                "not_object", "prepared_file", "bad_field", "duplicate_id"]


@pytest.mark.parametrize("case", SOURCE_CASES)
@pytest.mark.parametrize("name", sorted(LOADERS))
def test_prepare_bad_source(tmp_path, name, case):
    source, fragments = _source_case(tmp_path, name, case)
    proc = run(tmp_path, "prepare", name, "--source", source, "--out", "out.jsonl")
    assert_one_line_error(proc, "prepare", *fragments)
    assert not (tmp_path / "out.jsonl").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out.jsonl")]  # no temporary left either


@pytest.mark.parametrize("name", sorted(LOADERS))
def test_prepare_good_source_in_every_layout(tmp_path, name):
    """The same records read as JSON Lines, as one JSON array, and gzip-compressed: the checks accept them."""
    rows = LOADERS[name][0]
    outs = []
    for i, (file, layout) in enumerate([("r.jsonl", "jsonl"), ("r.json", "json"), ("r.jsonl.gz", "jsonl")]):
        _write(tmp_path / file, rows, layout)
        run(tmp_path, "prepare", name, "--source", file, "--out", f"out{i}.jsonl", rc=0)
        outs.append((tmp_path / f"out{i}.jsonl").read_text())
    assert outs[0] == outs[1] == outs[2] and len(outs[0].splitlines()) == 3


OPTION_CASES = [
    (["toy_math", "--option", "foo=1"], "dataset 'toy_math': unknown option(s) foo (its options: seed, n_train, n_test, split)"),
    (["toy_math", "--option", "n_train=many"], "dataset 'toy_math': option n_train must be an integer, got 'many'"),
    (["toy_math", "--option", "split=dev"], "dataset 'toy_math': option split must be one of train, test, all, got 'dev'"),
    (["toy_code", "--source", "code.jsonl"], "dataset 'toy_code' is generated from its options"),
    (["humaneval", "--source", "he.jsonl", "--option", "limit=two"], "dataset 'humaneval': option limit must be an integer or null, got 'two'"),
    (["mbpp", "--source", "he.jsonl", "--option", "challange=true"], "dataset 'mbpp': unknown option(s) challange (its options: split, challenge, revision)"),
    (["mbpp", "--source", "mbpp.jsonl", "--option", "split=dev"], "unknown MBPP split 'dev'; known: all, prompt, test, validation, train"),
    (["math500", "--source", "m.jsonl", "--option", "levels"], "--option expects key=value, got 'levels'"),
    (["math500", "--source", "m.jsonl", "--option", "levels=[1,"], "--option levels=[1,: the value is not valid YAML"),
    (["gsm8k"], "unknown dataset 'gsm8k'; known: humaneval, humaneval-plus, math-train, math500"),
]


@pytest.mark.parametrize("argv,fragment", OPTION_CASES, ids=[" ".join(a) for a, _ in OPTION_CASES])
def test_prepare_bad_option(tmp_path, argv, fragment):
    _write(tmp_path / "he.jsonl", HUMANEVAL)
    _write(tmp_path / "mbpp.jsonl", MBPP)
    _write(tmp_path / "m.jsonl", MATH500)
    proc = run(tmp_path, "prepare", *argv, "--out", "out.jsonl")
    assert_one_line_error(proc, "prepare", fragment)
    assert not (tmp_path / "out.jsonl").exists()


# ------------------------------------------------------------------ pidistill verify / retry / pairs / train / evaluate

@pytest.fixture(scope="module")
def stage(tmp_path_factory):
    """A directory with a small problem set (toy math and code), its samples and verdicts written by
    the real stages, and the bad files of ``STAGE_CASES``; tests only add files of their own."""
    tmp_path = tmp_path_factory.mktemp("stages")
    run(tmp_path, "prepare", "toy_math", "--option", "n_train=3", "--option", "n_test=1", "--option", "split=train",
        "--out", "math.jsonl", rc=0)
    run(tmp_path, "prepare", "toy_code", "--option", "n_train=2", "--option", "n_test=1", "--option", "split=train",
        "--out", "code.jsonl", rc=0)
    math = [json.loads(x) for x in (tmp_path / "math.jsonl").read_text().splitlines()]
    code = [json.loads(x) for x in (tmp_path / "code.jsonl").read_text().splitlines()]
    (tmp_path / "problems.jsonl").write_text((tmp_path / "math.jsonl").read_text() + (tmp_path / "code.jsonl").read_text())
    samples = [{"id": p["id"], "attempt": 0, "completion": f"\\boxed{{{p['answer']}}}"} for p in math]
    samples += [{"id": p["id"], "attempt": 0, "completion": "def f(x):\n    return None"} for p in code]
    _write(tmp_path / "samples.jsonl", samples)
    run(tmp_path, "verify", "--problems", "problems.jsonl", "--samples", "samples.jsonl", "--out", "verdicts.jsonl", rc=0)
    _write(tmp_path / "pairs.jsonl", [{"id": math[0]["id"], "attempt": 0, "prompt": [{"role": "user", "content": "Compute."}],
                                       "completion": [{"role": "assistant", "content": "\\boxed{1}"}]}])
    _write(tmp_path / "other_split.jsonl", [dict(p, id=p["id"].replace("train", "test")) for p in math])
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    (tmp_path / "not_a_model").mkdir()
    files = {"math": math, "code": code, "samples": samples}
    _bad_files(tmp_path, files)
    return tmp_path, files


def _bad_files(tmp_path: Path, files: dict) -> None:
    m0 = files["math"][0]
    _write(tmp_path / "dup_problems.jsonl", [files["math"][0], files["math"][1], files["math"][0]])
    _write(tmp_path / "badtype_problems.jsonl", [dict(files["code"][0], tests="assert f(1) == 1")])
    (tmp_path / "empty.jsonl").write_text("")
    (tmp_path / "broken.jsonl").write_text(json.dumps(files["samples"][0]) + "\n" + '{"id": "x", "completion": "unterminated')
    _write(tmp_path / "no_id.jsonl", [{"completion": "\\boxed{1}"}])
    _write(tmp_path / "list_completion.jsonl", [{"id": m0["id"], "completion": [{"role": "assistant", "content": "5"}]}])
    _write(tmp_path / "unknown_ids.jsonl", files["samples"] + [{"id": "HumanEval/0", "completion": "x"}] * 2)
    _write(tmp_path / "he.jsonl", HUMANEVAL)
    _write(tmp_path / "samples.jsonl.gz", files["samples"])
    (tmp_path / "array_line.jsonl").write_text('["toy_math/train/0000", "\\\\boxed{1}"]\n')
    verdicts = [json.loads(x) for x in (tmp_path / "verdicts.jsonl").read_text().splitlines()]
    (tmp_path / "broken_verdicts.jsonl").write_text(json.dumps(verdicts[0]) + '\n{"id": "x" "passed": true}\n')
    _write(tmp_path / "no_attempt.jsonl", [{k: v for k, v in r.items() if k != "attempt"} for r in verdicts])
    _write(tmp_path / "passed_text.jsonl", [dict(r, passed="yes") for r in verdicts])
    _write(tmp_path / "pairs_text.jsonl", [{"id": m0["id"], "attempt": 0, "prompt": "Compute.", "completion": "\\boxed{1}"}])


VERIFY = ["verify", "--problems", "problems.jsonl", "--samples"]
STAGE_CASES = {
    # pidistill verify: the problems file
    "verify/problems missing": (["verify", "--problems", "absent.jsonl", "--samples", "samples.jsonl"],
                                ["absent.jsonl: file not found"]),
    "verify/problems is a raw dataset": (["verify", "--problems", "he.jsonl", "--samples", "samples.jsonl"],
                                         ["he.jsonl:1: not a problem record: unknown field(s)", "this looks like a raw dataset file"]),
    "verify/problems is samples": (["verify", "--problems", "samples.jsonl", "--samples", "samples.jsonl"],
                                   ["samples.jsonl:1: not a problem record", "this looks like a samples or verdicts file"]),
    "verify/problems duplicated id": (["verify", "--problems", "dup_problems.jsonl", "--samples", "samples.jsonl"],
                                      ["dup_problems.jsonl:3: duplicate problem id 'toy_math/train/", "(also on line 1)"]),
    "verify/problems field type": (["verify", "--problems", "badtype_problems.jsonl", "--samples", "samples.jsonl"],
                                   ["badtype_problems.jsonl:1: not a problem record: field 'tests' must be a list of strings, got str"]),
    "verify/problems empty": (["verify", "--problems", "empty.jsonl", "--samples", "samples.jsonl"],
                              ["samples.jsonl:1: id 'toy_math/train/", "is not in empty.jsonl", "empty.jsonl holds no problems"]),
    # pidistill verify: the samples file
    "verify/samples missing": (VERIFY + ["absent.jsonl"], ["absent.jsonl: file not found"]),
    "verify/samples invalid JSON": (VERIFY + ["broken.jsonl"], ["broken.jsonl:2: invalid JSON: Unterminated string", "looks truncated"]),
    "verify/samples gzip": (VERIFY + ["samples.jsonl.gz"], ["samples.jsonl.gz: is gzip-compressed; expected plain JSON Lines"]),
    "verify/samples line not an object": (VERIFY + ["array_line.jsonl"], ["array_line.jsonl:1: expected a JSON object, got an array"]),
    "verify/samples without id": (VERIFY + ["no_id.jsonl"], ["no_id.jsonl:1: no field 'id' (expected a samples file"]),
    "verify/samples are problems": (VERIFY + ["math.jsonl"], ["math.jsonl:1: no field 'completion' (expected a samples file"]),
    "verify/completion not text": (VERIFY + ["list_completion.jsonl"],
                                   ["list_completion.jsonl:1: field 'completion' must be a string or null, got a list"]),
    "verify/ids not in problems": (VERIFY + ["unknown_ids.jsonl"],
                                   ["unknown_ids.jsonl:6: id 'HumanEval/0' is not in problems.jsonl (2 of 7 records"]),
    "verify/out is a directory": (VERIFY + ["samples.jsonl", "--out", "."], ["--out .: is a directory"]),
    # the other stages' inputs
    "sample/model missing": (["sample", "--model", "./no_model", "--problems", "problems.jsonl"],
                             ["--model ./no_model: no such directory"]),
    "sample/model not a model": (["sample", "--model", "not_a_model", "--problems", "problems.jsonl"],
                                 ["--model not_a_model: no config.json in this directory"]),
    "sample/adapter missing": (["sample", "--model", "model", "--adapter", "rounds/1", "--problems", "problems.jsonl"],
                               ["--adapter rounds/1: no such directory"]),
    "sample/problems invalid": (["sample", "--model", "model", "--problems", "broken.jsonl"], ["broken.jsonl:1: not a problem record"]),
    "retry/verdicts are samples": (["retry", "--model", "model", "--problems", "problems.jsonl", "--verdicts", "samples.jsonl"],
                                   ["samples.jsonl:1: no field 'passed' (expected verdicts of sampled attempts"]),
    "retry/verdicts without attempt": (["retry", "--model", "model", "--problems", "problems.jsonl", "--verdicts", "no_attempt.jsonl"],
                                       ["no_attempt.jsonl:1: no field 'attempt'"]),
    "retry/verdicts of another split": (["retry", "--model", "model", "--problems", "other_split.jsonl", "--verdicts", "verdicts.jsonl"],
                                        ["verdicts.jsonl:1: id 'toy_math/train/", "is not in other_split.jsonl (5 of 5 records"]),
    "pairs/retry verdicts are samples": (["pairs", "--problems", "problems.jsonl", "--first-verdicts", "verdicts.jsonl",
                                          "--retry-verdicts", "samples.jsonl"], ["samples.jsonl:1: no field 'passed'"]),
    "pairs/passed not a boolean": (["pairs", "--problems", "problems.jsonl", "--first-verdicts", "passed_text.jsonl",
                                    "--retry-verdicts", "verdicts.jsonl"],
                                   ["passed_text.jsonl:1: field 'passed' must be true or false, got a string"]),
    "train/pairs are verdicts": (["train", "--model", "model", "--pairs", "verdicts.jsonl"],
                                 ["verdicts.jsonl:1: no field 'prompt' (expected an SFT pairs file"]),
    "train/pairs of plain text": (["train", "--model", "model", "--pairs", "pairs_text.jsonl"],
                                  ["pairs_text.jsonl:1: field 'prompt' must be a list, got a string"]),
    "evaluate/verdicts are samples": (["evaluate", "--problems", "problems.jsonl", "--verdicts", "samples.jsonl"],
                                      ["samples.jsonl:1: no field 'passed' (expected a verdicts file"]),
    "evaluate/verdicts of another split": (["evaluate", "--problems", "other_split.jsonl", "--verdicts", "verdicts.jsonl"],
                                           ["verdicts.jsonl:1: id 'toy_math/train/", "is not in other_split.jsonl"]),
    "evaluate/verdicts invalid JSON": (["evaluate", "--problems", "problems.jsonl", "--verdicts", "broken_verdicts.jsonl"],
                                       ["broken_verdicts.jsonl:2: invalid JSON: Expecting ',' delimiter"]),
}


@pytest.mark.parametrize("case", sorted(STAGE_CASES))
def test_stage_bad_input(stage, case):
    tmp_path, _ = stage
    argv, fragments = STAGE_CASES[case]
    if "--out" not in argv:
        argv = argv + ["--out", "result.out"]
    proc = run(tmp_path, *argv)
    assert_one_line_error(proc, argv[0], *fragments)
    assert not (tmp_path / "result.out").exists()


def test_debug_shows_the_traceback(tmp_path):
    proc = run(tmp_path, "prepare", "humaneval", "--source", "absent.jsonl", "--out", "x.jsonl", "--debug")
    assert "Traceback (most recent call last)" in proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == "pidistill prepare: error: absent.jsonl: file not found"
    proc = run(tmp_path, "--debug", "prepare", "humaneval", "--source", "absent.jsonl", "--out", "x.jsonl")
    assert "Traceback (most recent call last)" in proc.stderr


# ------------------------------------------------------------------ odd model output: judged as data, the batch goes on

def test_odd_completions_are_judged_not_raised(stage):
    from pidistill.verifiers.text import MAX_COMPLETION_CHARS

    tmp_path, files = stage
    m0, m1, c0 = files["math"][0], files["math"][1], files["code"][0]
    right = f"\\boxed{{{m0['answer']}}}"
    rows = [
        {"id": m0["id"], "completion": "\udcff " + right},  # a lone surrogate escape, as other tools write
        {"id": m0["id"], "completion": right + "\x00"},  # a NUL byte after the answer
        {"id": m0["id"], "completion": "x" * (MAX_COMPLETION_CHARS + 1) + right},  # enormous
        {"id": m0["id"], "completion": None},  # a tool that wrote null
        {"id": m1["id"], "completion": "step " * 150_000 + f"\\boxed{{{m1['answer']}}}"},  # large but judged
        {"id": c0["id"], "completion": c0["solution"] + "\n# \udcff\n"},  # a surrogate in a program's comment
        {"id": c0["id"], "completion": "def f(x):\n    return '\udcff'"},  # ... in a string literal
        {"id": c0["id"], "completion": "def f(x):\n\x00    return 1"},  # NUL inside the program
        {"id": c0["id"], "completion": c0["solution"]},  # and an ordinary correct sample, twice: ids repeat
        {"id": c0["id"], "completion": c0["solution"]},
    ]
    data = "".join(json.dumps(r) + "\n" for r in rows).encode()
    # undecodable bytes inside a completion (a Latin-1 "é" in a UTF-8 file): judged, not a file error
    data += b'{"id": ' + json.dumps(m0["id"]).encode() + b', "completion": "caf\xe9 ' + json.dumps(right)[1:-1].encode() + b'"}\n'
    (tmp_path / "odd.jsonl").write_bytes(data)
    start = time.monotonic()
    proc = run(tmp_path, "verify", "--problems", "problems.jsonl", "--samples", "odd.jsonl", "--out", "odd.v.jsonl", rc=0)
    elapsed = time.monotonic() - start
    assert "Traceback" not in proc.stderr
    assert elapsed < 120, elapsed
    raw = (tmp_path / "odd.v.jsonl").read_bytes()
    raw.decode("utf-8")  # the verdict file is valid UTF-8 whatever the completions held
    got = [json.loads(x) for x in raw.decode().splitlines()]
    assert len(got) == len(rows) + 1
    summary = [(g["passed"], g["reason"], g.get("replaced_surrogates")) for g in got]
    assert summary == [
        (True, "ok", 1),
        (True, "ok", None),
        (False, "too_long", None),
        (False, "no_completion", None),
        (True, "ok", None),
        (True, "ok", 1),
        (False, "wrong_answer", 1),  # judged: f returns "\ufffd", not the expected number
        (False, "load_error", None),  # Python refuses a program holding NUL: a failed verdict, not a crash
        (True, "ok", None),
        (True, "ok", None),
        (True, "ok", 1),
    ]
    assert got[0]["completion"] == rows[0]["completion"]  # the sample's own text round-trips, surrogate and all
    assert '"\\udcff ' in raw.decode().splitlines()[0]
    assert got[2]["completion_chars"] == MAX_COMPLETION_CHARS + 1 + len(right)
    assert got[10]["completion"].startswith("caf\udce9")


def test_verify_samples_library_judges_odd_completions():
    """What the verify rule's script calls: the same verdicts without the command line."""
    from pidistill.domains.toy import load_toy_math
    from pidistill.verifiers import VerifierSettings, verify_samples

    p = load_toy_math(n_train=1, n_test=0, split="train")[0]
    rows = [{"id": p.id, "completion": None}, {"id": p.id, "completion": 42}, {"id": p.id, "completion": "\ud800\\boxed{%s}" % p.answer}]
    got = verify_samples({p.id: p}, rows, VerifierSettings(progress=False))
    assert [(g["passed"], g["reason"]) for g in got] == [(False, "no_completion"), (False, "not_text"), (True, "ok")]


def test_empty_samples_file_is_an_empty_batch(stage):
    """Legitimate in the pipeline (no failed first attempts: no retries), so not an error."""
    tmp_path, _ = stage
    (tmp_path / "none.jsonl").write_text("")
    proc = run(tmp_path, "verify", "--problems", "problems.jsonl", "--samples", "none.jsonl", "--out", "none.v.jsonl", rc=0)
    assert "0/0 samples passed" in proc.stderr and (tmp_path / "none.v.jsonl").read_text() == ""


# ------------------------------------------------------------------ the real benchmark files

@pytest.mark.skipif(not SHARED_DATASETS.is_dir(), reason=f"{SHARED_DATASETS} not present")
@pytest.mark.parametrize("name,source,fragments", [
    ("humaneval", "cut:HumanEval.jsonl.gz", ["HumanEval.jsonl.gz: truncated gzip file"]),
    ("humaneval", "mbpp.jsonl", ["mbpp.jsonl:1: not a HumanEval record: missing field(s) 'prompt', 'canonical_solution', 'test', 'entry_point'"]),
    ("mbpp", "MATH-500_test.jsonl", ["MATH-500_test.jsonl:1: not an MBPP record: missing field(s) 'task_id', 'text', 'code', 'test_list'"]),
    ("mbpp-plus", "sanitized-mbpp.json", ["sanitized-mbpp.json: record 1: not an MBPP+ record: missing field(s) 'entry_point', 'canonical_solution', 'assertion'"]),
    ("math500", "HumanEval.jsonl.gz", ["HumanEval.jsonl.gz:1: not a MATH-500 record: missing field(s) 'problem', 'answer', 'unique_id'"]),
    ("mbpp-sanitized", "miniF2F-lean4_test.tar.gz", ["miniF2F-lean4_test.tar.gz:1: invalid JSON: Expecting value (column 1) (expected JSON Lines, one object per line, or one JSON array of objects)"]),
])
def test_real_files_given_to_the_wrong_loader(tmp_path, name, source, fragments):
    if source.startswith("cut:"):
        data = (SHARED_DATASETS / source[4:]).read_bytes()
        (tmp_path / source[4:]).write_bytes(data[: len(data) - 1000])  # a download cut short
        path = source[4:]
    else:
        path = str(SHARED_DATASETS / source)
    proc = run(tmp_path, "prepare", name, "--source", path, "--out", "out.jsonl")
    assert_one_line_error(proc, "prepare", *fragments)
