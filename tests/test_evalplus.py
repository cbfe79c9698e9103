"""HumanEval+ and MBPP+ as EvalPlus releases them (the hub's evalplus/humanevalplus and
evalplus/mbppplus, which these machines cannot reach): records in that layout, made here, with a test
program in EvalPlus's shape (base and plus inputs, the reference's outputs, a float-tolerant
``assertion``). The plus inputs are private tests: a solution right on the base input and the public
test, wrong on a plus input, fails, and its feedback never quotes the test program."""

from __future__ import annotations

import json

import pytest

from pidistill.domains.registry import load
from pidistill.io import InputError
from pidistill.verifiers import VerifierSettings
from pidistill.verifiers.code import verify_batch

S = VerifierSettings(workers=2, timeout_s=10.0, progress=False)
ASSERTION = '''
import math

def assertion(out, exp, atol):
    if isinstance(exp, float) or atol:
        assert math.isclose(out, exp, rel_tol=1e-6, abs_tol=atol), f"{out!r} != {exp!r}"
    else:
        assert out == exp, f"{out!r} != {exp!r}"
'''
# the reference is x + 1; -5 and 1000 are the plus inputs
INPUTS, RESULTS = [[1], [3], [-5], [1000]], [2, 4, -4, 1001]
MBPP_TEST = ASSERTION + f'''
inputs = {INPUTS!r}
results = {RESULTS!r}
for i, (inp, exp) in enumerate(zip(inputs, results)):
    assertion(add_one(*inp), exp, 0)
'''
HUMANEVAL_TEST = ASSERTION + f'''
def check(candidate):
    inputs = {INPUTS!r}
    results = {RESULTS!r}
    for i, (inp, exp) in enumerate(zip(inputs, results)):
        assertion(candidate(*inp), exp, 0)
'''
MBPP_RELEASE = {"task_id": 7, "prompt": '"""\nWrite a function that adds one to a number.\n"""\n',
                "code": "def add_one(x):\n    return x + 1\n", "source_file": "Benchmark Questions Verification V2.ipynb",
                "test_imports": [], "test_list": ["assert add_one(1) == 2"], "test": MBPP_TEST}
HUMANEVAL_RELEASE = {"task_id": "HumanEval/7", "entry_point": "add_one",
                     "prompt": 'def add_one(x: int) -> int:\n    """Add one.\n    >>> add_one(1)\n    2\n    """\n',
                     "canonical_solution": "    return x + 1\n", "test": HUMANEVAL_TEST}
RIGHT = "def add_one(x):\n    return x + 1\n"
WRONG_ON_PLUS = "def add_one(x):\n    return abs(x) + 1\n"  # passes the base and public tests


def _write(tmp_path, name, rows):
    path = tmp_path / name
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


@pytest.mark.parametrize("loader, record", [("mbpp-plus", MBPP_RELEASE), ("humaneval-plus", HUMANEVAL_RELEASE)])
def test_plus_inputs_are_private_tests(tmp_path, loader, record):
    [problem] = load(loader, _write(tmp_path, "plus.jsonl", [record]))
    assert problem.test_program and not problem.tests
    assert problem.public_tests == ["assert add_one(1) == 2"] and problem.entry_point == "add_one"
    assert "add_one(1) == 2" in problem.prompt or ">>> add_one(1)" in problem.prompt
    right, wrong, reference = verify_batch([(problem, RIGHT), (problem, WRONG_ON_PLUS), (problem, problem.solution)], S)
    assert right.passed and reference.passed
    assert not wrong.passed and wrong.public_test_results == [True]  # the public test passes; a plus input does not
    assert "inputs" not in wrong.feedback and "1000" not in wrong.feedback  # the private program is not quoted


def test_mbpp_plus_ids_and_both_layouts(tmp_path):
    [release] = load("mbpp-plus", _write(tmp_path, "release.jsonl", [MBPP_RELEASE]))
    assert release.id == "Mbpp/7" and release.meta["release"]  # the ids of EvalPlus's own files
    snapshot = {"task_id": "Mbpp/7", "prompt": "'''\nAdd one.\n'''", "entry_point": "add_one",
                "canonical_solution": RIGHT, "base_input": [[1]], "plus_input": [[-5]], "atol": 0,
                "assertion": "assert add_one(1) == 2\n"}
    [old] = load("mbpp-plus", _write(tmp_path, "snapshot.jsonl", [snapshot]))
    assert old.id == "Mbpp/7" and old.tests == ["assert add_one(1) == 2"] and old.test_program is None
    broken = {k: v for k, v in MBPP_RELEASE.items() if k != "test_list"}
    with pytest.raises(InputError, match=r"not an MBPP\+ record: missing field\(s\) 'entry_point'"):
        load("mbpp-plus", _write(tmp_path, "broken.jsonl", [broken]))
