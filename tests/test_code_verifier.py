"""Code verifier: extraction, formats (toy, HumanEval-style, MBPP-style), verdict fields, CLI."""

from __future__ import annotations

import json

import pytest
from asuser import namespaces_unavailable

from pidistill.domains import toy_code
from pidistill.problems import Problem, write_problems
from pidistill.verifiers import VerifierSettings, verify_samples
from pidistill.verifiers.code import extract_code, program_for, verify_batch

S = VerifierSettings(workers=2, timeout_s=3.0, progress=False)
HE = Problem(
    id="HumanEval/x", domain="code", prompt="", entry_point="add",
    code_prefix='from typing import List\n\ndef helper(x):\n    return x * 10\n\n\ndef add(a: int, b: int) -> int:\n    """Add.\n    >>> add(1, 2)\n    3\n    """\n',
    test_program="def check(candidate):\n    assert candidate(1, 2) == 3\n    assert candidate(5, 5) == 10\n    assert helper(1) == 10\n",
    public_tests=["assert add(1, 2) == 3"],
)
MB = Problem(id="mbpp/x", domain="code", prompt="", entry_point="rev",
             tests=["assert rev([1, 2]) == [2, 1]", "assert rev([]) == []", "assert rev('ab') == 'ba'"],
             public_tests=["assert rev([1, 2]) == [2, 1]"])


def test_extract_fenced_with_prose():
    text = "Sure! Here is the code:\n\n```python\ndef f(x):\n    return x + 1\n```\n\nThis adds one."
    assert extract_code(text) == "def f(x):\n    return x + 1\n"


def test_extract_picks_block_defining_entry_point():
    text = "```python\nprint(f(3))\n```\nand\n```py\ndef f(x):\n    return x\n```\n```\nassert f(1) == 1\n```"
    assert extract_code(text, "f") == "def f(x):\n    return x\n"


def test_extract_unterminated_fence_and_unfenced_prose():
    assert extract_code("```python\ndef f(x):\n    return 1\n") == "def f(x):\n    return 1\n"
    text = "Here is my solution.\ndef f(x):\n    return 1\nThat is all, it is simple."
    assert extract_code(text) == "def f(x):\n    return 1\n"


def test_extract_body_continuation_kept():
    assert extract_code("    return a + b\n") == "    return a + b\n"


def test_humaneval_body_and_restated_signature():
    body = "    return a + b\n"
    full = "```python\ndef add(a: int, b: int) -> int:\n    return a + b\n```"
    wrong = "```python\ndef add(a, b):\n    return a - b\n```"
    assert program_for(HE, body).startswith(HE.code_prefix)
    vs = verify_batch([(HE, body), (HE, full), (HE, wrong)], S)
    assert [v.passed for v in vs] == [True, True, False]
    assert vs[0].public_test_results == [True]
    assert vs[2].reason == "wrong_answer" and vs[2].public_test_results == [False]


def test_prompt_helpers_come_from_the_trusted_prompt():
    # the candidate redefines the prompt's helper; the test still uses the prompt's own helper
    code = "```python\ndef helper(x):\n    return 0\n\ndef add(a, b):\n    return a + b\n```"
    assert verify_batch([(HE, code)], S)[0].passed


def test_mbpp_style_per_test_results_and_mutation():
    good = "def rev(xs):\n    return xs[::-1]\n"
    partial = "def rev(xs):\n    return list(reversed(xs))\n"
    vs = verify_batch([(MB, good), (MB, partial)], S)
    assert vs[0].passed and vs[0].test_results == [True, True, True]
    assert not vs[1].passed and vs[1].test_results == [True, True, False]
    inplace = Problem(id="m2", domain="code", prompt="", entry_point="srt",
                      tests=["xs = [3, 1, 2]\nsrt(xs)\nassert xs == [1, 2, 3]"])
    assert verify_batch([(inplace, "def srt(a):\n    a.sort()\n")], S)[0].passed


def test_class_objects_via_handles():
    p = Problem(id="tree", domain="code", prompt="", entry_point="height",
                test_setup="root = Node(1)\nroot.left = Node(2)\nroot.left.left = Node(3)",
                tests=["assert height(root) == 3"])
    code = ("class Node:\n    def __init__(self, v):\n        self.v = v\n        self.left = None\n        self.right = None\n"
            "def height(n):\n    return 0 if n is None else 1 + max(height(n.left), height(n.right))\n")
    assert verify_batch([(p, code)], S)[0].passed
    assert not verify_batch([(p, code.replace("1 + max", "max"))], S)[0].passed


def test_exceptions_keep_builtin_types():
    p = Problem(id="e", domain="code", prompt="", entry_point="g",
                tests=["try:\n    g(-1)\n    raise AssertionError('no error')\nexcept ValueError:\n    pass"])
    assert verify_batch([(p, "def g(x):\n    raise ValueError('neg')\n")], S)[0].passed
    assert not verify_batch([(p, "def g(x):\n    raise KeyError('neg')\n")], S)[0].passed


def test_toy_code_domain():
    train, _ = toy_code.make_splits(seed=3, n_train=6, n_test=1)
    items = [(p, f"```python\n{p.solution}\n```") for p in train]
    items += [(p, toy_code.code_for(toy_code.slips(toy_code.item_of(p))[0])) for p in train]
    vs = verify_batch(items, S)
    assert [v.passed for v in vs] == [True] * 6 + [False] * 6
    assert all(len(v.test_results) == 3 for v in vs)


def test_verdict_fields_and_isolation_logged():
    v = verify_batch([(MB, "def rev(xs):\n    return xs\n")], S)[0]
    d = v.to_dict()
    assert d["passed"] is False and d["reason"] == "wrong_answer"
    assert d["isolation"] in ("namespaces", "rlimits")
    assert "Test 1 of 3 failed" in d["feedback"]


def test_syntax_error_and_missing_entry_point():
    vs = verify_batch([(MB, "def rev(xs)\n    return xs"), (MB, "def other(xs):\n    return xs[::-1]\n")], S)
    assert not vs[0].passed and vs[0].reason == "load_error" and "SyntaxError" in vs[0].feedback
    assert not vs[1].passed and "does not define 'rev'" in vs[1].feedback


def test_rlimits_mode_still_judges():
    s = VerifierSettings(workers=1, timeout_s=3.0, progress=False)
    s.isolation = "rlimits"
    vs = verify_batch([(MB, "def rev(xs):\n    return xs[::-1]\n"), (MB, "import sys\nsys.exit(0)")], s)
    assert [v.passed for v in vs] == [True, False]
    assert vs[0].extra["isolation"] == "rlimits"


def test_verify_samples_and_cli(tmp_path):
    from pidistill.cli import main

    problems = tmp_path / "problems.jsonl"
    write_problems(problems, [MB])
    samples = tmp_path / "samples.jsonl"
    rows = [{"id": "mbpp/x", "completion": "```python\ndef rev(xs):\n    return xs[::-1]\n```", "k": 1},
            {"id": "mbpp/x", "completion": "def rev(xs):\n    return xs", "k": 2}]
    samples.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "verdicts.jsonl"
    assert main(["verify", "--problems", str(problems), "--samples", str(samples), "--out", str(out), "--workers", "2"]) == 0
    got = [json.loads(line) for line in out.read_text().splitlines()]
    assert [g["passed"] for g in got] == [True, False] and [g["k"] for g in got] == [1, 2]
    direct = verify_samples({"mbpp/x": MB}, rows, S)
    assert [d["passed"] for d in direct] == [True, False]


@pytest.mark.skipif(namespaces_unavailable() is not None, reason="no namespaces on this machine")
def test_default_isolation_is_namespaces():
    """The default (``auto``) is full isolation, wherever the checkout or venv lives (a checkout
    under /tmp once made the root builder fail and fall back to rlimits)."""
    from pidistill.domains import toy_code
    from pidistill.verifiers import VerifierSettings, verify_items

    problem = toy_code.make_splits(0, 3, 1)[0][0]
    verdict = verify_items([(problem, problem.solution)], VerifierSettings())[0]
    assert verdict.passed and verdict.extra["isolation"] == "namespaces"


NO_USERNS = r"""
import json, sys
sys.path.insert(0, {repo!r})
from pidistill.problems import Problem
from pidistill.verifiers import VerifierSettings
from pidistill.verifiers.code import verify_batch
from pidistill.verifiers.sandbox import IsolationUnavailable
P = Problem(id="m", domain="code", prompt="", entry_point="rev", tests=["assert rev([1, 2]) == [2, 1]"])
items = [(P, "def rev(xs):\n    return xs[::-1]\n"), (P, "def rev(xs):\n    return xs\n")]
out = {{}}
for isolation in ("auto", "namespaces", "rlimits"):
    try:
        vs = verify_batch(items, VerifierSettings(workers=1, timeout_s=3.0, progress=False, isolation=isolation))
        out[isolation] = [[v.passed, v.extra["isolation"]] for v in vs]
    except IsolationUnavailable as exc:
        out[isolation] = str(exc)
print(json.dumps(out))
"""


@pytest.mark.skipif(namespaces_unavailable() is not None, reason="no namespaces on this machine")
def test_without_namespaces_the_verifier_stops_unless_rlimits_is_asked_for(repo):
    """A machine without user namespaces (here: a user namespace whose limit of nested ones is
    0) gets a clear error, not the weaker isolation, unless the config asks for rlimits."""
    import shutil
    import subprocess
    import sys

    if shutil.which("unshare") is None:
        pytest.skip("unshare (util-linux) is not installed")
    shell = 'echo 0 > /proc/sys/user/max_user_namespaces && exec "$0" -c "$1"'
    code = NO_USERNS.format(repo=str(repo))
    proc = subprocess.run(["unshare", "--user", "--map-root-user", "sh", "-c", shell, sys.executable, code],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    for isolation in ("auto", "namespaces"):
        message = out[isolation]
        assert isinstance(message, str), message
        assert "cannot isolate" in message and "user.max_user_namespaces is 0" in message
        assert "`verifier.isolation: rlimits`" in message
    assert out["rlimits"] == [[True, "rlimits"], [False, "rlimits"]]
