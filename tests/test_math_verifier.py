"""Math verifier: extraction, equivalence (with our fixes to math-verify), graded credit, timeouts,
the worker pool, the toy domain and the CLI; plus the all-500 MATH-500 gold checks."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import pytest

from pidistill.problems import Problem
from pidistill.verifiers import VerifierSettings, verify_samples
from pidistill.verifiers import math as mv
from pidistill.verifiers.math_equiv import compound_credit, judge, split_compound

DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"
MATH500 = DATASETS / "MATH-500_test.jsonl"


def settings(**kw) -> VerifierSettings:
    kw.setdefault("progress", False)
    return VerifierSettings(**kw)


def verdict(gold: str, completion: str, **kw):
    return mv.verify_batch([(Problem(id="p", domain="math", prompt="", answer=gold), completion)], settings(**kw))[0]


def boxed(ans: str) -> str:
    return f"Some reasoning. The final answer is $\\boxed{{{ans}}}$."


# ---------------------------------------------------------------- extraction


@pytest.mark.parametrize(
    "text, expected",
    [
        ("so $\\boxed{42}$.", "42"),
        ("\\boxed{\\frac{1}{2}}", "\\frac{1}{2}"),
        ("\\boxed{\\frac{\\sqrt{3}}{2}} done", "\\frac{\\sqrt{3}}{2}"),
        ("\\fbox{7}", "7"),
        ("first \\boxed{1}, then we check again. Final: \\boxed{2}", "2"),
        ("\\boxed{\\{1,2\\}}", "\\{1,2\\}"),
        ("\\boxed{\\{1, 2}", "\\{1, 2"),  # escaped braces are not counted
        ("\\boxed{a\\}b} c", "a\\}b"),
        ("\\boxed 5.", "5"),
        ("\\boxed{2}, \\boxed{3}", "2, 3"),  # several boxes ending the text form one list
        ("$\\boxed{2}$ and $\\boxed{-3}$.", "2, -3"),
        ("\\boxed{2}. Checking: 2+2=4, so the answer is \\boxed{4}", "4"),
        ("\\boxed{}", ""),
        ("no box at all: 42", None),
        ("\\boxed{12", None),  # truncated box is not an answer
        ("<think>\\boxed{1}</think>So \\boxed{2}", "2"),
        ("<think>\\boxed{1}</think>So it is 2", None),
        ("reasoning \\boxed{1}</think>So \\boxed{3}", "3"),  # prompt-side <think>: only the text after </think>
        ("So \\boxed{3}<think>\\boxed{4}", "3"),  # unclosed think: dropped
        ("\\boxedx{3}", None),
    ],
)
def test_last_boxed(text, expected):
    assert mv.last_boxed(text) == expected


@pytest.mark.parametrize(
    "text, expected",
    [
        ("Thus the final answer is $\\frac{1}{2}$.", "\\frac{1}{2}"),
        ("The answer is 12.", "12"),
        ("**Final Answer:** 3.5", "3.5"),
        ("The answer is \\(x+1\\) obviously", "x+1"),
        ("The answer is 7. Wait, the answer is 8.", "8"),
        ("I am not sure.", None),
        ("<think>the answer is 3</think>", None),
    ],
)
def test_answer_is_fallback_extraction(text, expected):
    assert mv.answer_is(text) == expected


def test_fallback_is_off_by_default_and_boxed_wins():
    assert verdict("12", "The answer is 12.").reason == "no_answer"
    on = verdict("12", "The answer is 12.", answer_fallback=True)
    assert on.passed and on.extra["answer_method"] == "fallback"
    # with a box present, the box is the answer even with the fallback on
    assert not verdict("12", "The answer is 12. \\boxed{13}", answer_fallback=True).passed


def test_empty_box_and_no_answer_fail():
    v = verdict("5", "So \\boxed{}.")
    assert (v.passed, v.reason, v.score) == (False, "empty_answer", 0.0)
    v = verdict("5", "I give up.")
    assert (v.passed, v.reason, v.extracted) == (False, "no_answer", None)


def test_think_block_is_ignored():
    assert verdict("5", "<think>maybe \\boxed{4}? no</think> The answer is \\boxed{5}").passed
    assert not verdict("5", "<think>so \\boxed{5}</think> Hmm, I think it is \\boxed{4}").passed
    assert verdict("5", "<think>so \\boxed{5}</think> no box here").reason == "no_answer"


def test_several_boxes():
    assert verdict("3, 5, 7", "\\boxed{3}, \\boxed{5}, and \\boxed{7}").passed
    assert verdict("7", "Try \\boxed{5}. No wait, that fails the check; so \\boxed{7}").passed
    # hedging with adjacent boxes is a list, not the right single answer
    assert not verdict("7", "\\boxed{5} or \\boxed{7}").passed


# ---------------------------------------------------------------- equivalence

PAIRS = [
    # fractions and decimals
    ("\\frac{1}{2}", "0.5", True),
    ("\\frac{1}{2}", "\\dfrac12", True),
    ("\\frac{1}{2}", "1/2", True),
    ("\\frac{1}{3}", "0.333333", True),
    ("\\frac{1}{3}", "0.33", False),
    ("\\frac{3}{4}", "0.7", False),
    ("1.25", "\\frac{5}{4}", True),
    (".0000672", "6.72\\times 10^{-5}", True),
    (".0000672", "0.0000673", False),
    # radicals
    ("3\\sqrt{13}", "\\sqrt{117}", True),
    ("11\\sqrt2", "11\\sqrt{2}", True),
    ("\\frac{\\sqrt{3}}{3}", "\\frac{1}{\\sqrt3}", True),
    ("3\\sqrt{13}", "3\\sqrt{12}", False),
    # intervals
    ("(3,4]", "(3,4]", True),
    ("(3,4]", "(3,4)", False),
    ("(2,\\infty)", "(2, \\infty)", True),
    ("(2,\\infty)", "[2,\\infty)", False),
    ("(-\\infty, 0) \\cup (0, \\infty)", "(-\\infty,0)\\cup(0,\\infty)", True),
    # sets and lists
    ("\\{1,2\\}", "\\{2,1\\}", True),
    ("1,-2", "-2, 1", True),
    ("3, 5, 7", "7,5,3", True),
    ("3, 5, 7", "3, 5", False),
    ("1,-2", "1,2", False),
    # degrees
    ("90^\\circ", "90", True),
    ("90^\\circ", "90^{\\circ}", True),
    ("145^\\circ", "145 degrees", True),
    ("30^\\circ", "60^\\circ", False),
    # percent
    ("50\\%", "50", True),
    ("50\\%", "0.5", True),
    ("25\\%", "30\\%", False),
    # units and \text
    ("\\text{Evelyn}", "Evelyn", True),
    ("\\text{east}", "\\text{East}", True),
    ("\\text{even}", "\\text{odd}", False),
    ("\\frac{270}7\\text{ degrees}", "\\frac{270}{7}", True),
    ("5\\text{ cm}", "5", True),
    ("4 \\text{ inches}", "5 \\text{ inches}", False),
    # \pm
    ("1 \\pm \\sqrt{19}", "1+\\sqrt{19}, 1-\\sqrt{19}", True),
    ("1 \\pm \\sqrt{19}", "1+\\sqrt{19}", False),
    ("\\pm 2", "2,-2", True),
    # ordered pairs vs intervals
    ("(15,-29)", "(15,-29)", True),
    ("(15,-29)", "(-29,15)", False),
    ("(-2,1)", "[-2,1]", False),
    ("(6,31,-1)", "(6,31,1)", False),
    ("\\left( 3, \\frac{\\pi}{2} \\right)", "(3,\\pi/2)", True),
    ("\\left( 3, \\frac{\\pi}{2} \\right)", "(3,\\pi)", False),
    # thousands separators, bases, equations, expressions, complex numbers, matrices
    ("10,\\!080", "10080", True),
    ("2000", "2,000", True),
    ("52_8", "52_8", True),
    ("x=5", "5", True),
    ("p - q", "p-q", True),
    ("p - q", "q-p", False),
    ("x^3+3x-6", "-6+3x+x^3", True),
    ("6 - 5i", "6+5i", False),
    ("\\begin{pmatrix} -1/3 \\\\ 2/3 \\\\ 5/3 \\end{pmatrix}", "\\begin{pmatrix} -\\frac13 \\\\ \\frac23 \\\\ \\frac53 \\end{pmatrix}", True),
    ("\\cot x", "\\frac{\\cos x}{\\sin x}", True),
    ("\\cot x", "\\tan x", False),
    ("2k+2", "2(k+1)", True),
    ("84", "84", True),
    ("84", "83", False),
    ("-3", "3", False),
]


def test_equivalence_pairs():
    problems = [Problem(id=str(i), domain="math", prompt="", answer=g) for i, (g, _, _) in enumerate(PAIRS)]
    verdicts = mv.verify_batch([(p, boxed(pred)) for p, (_, pred, _) in zip(problems, PAIRS)], settings())
    wrong = [(g, p, exp, v.reason) for (g, p, exp), v in zip(PAIRS, verdicts) if v.passed != exp]
    assert not wrong, wrong


# Cases math-verify 0.9.0 gets wrong (judged equal) that our layer corrects.
MV_FALSE_EQUAL = [
    ("\\frac{1}{20!}", "\\frac{1}{21!}"),  # factorials of different numbers
    ("\\frac{1}{100!}", "\\frac{1}{99!}"),
    ("\\frac{1}{2^{99}}", "\\frac{1}{2^{98}}"),
    ("e^{-50}", "e^{-51}"),
    ("10^{-20}", "10^{-21}"),
    ("0.0000001", "0.0000002"),
    ("\\frac{2^{2005}+1}{3 \\cdot 2^{2006}}", "\\frac{1}{3 \\cdot 2^{2006}}"),
    ("\\left(\\frac{1}{20!}, 1\\right)", "\\left(\\frac{1}{21!}, 1\\right)"),  # inside tuples too
]


@pytest.mark.parametrize("gold, pred", MV_FALSE_EQUAL)
def test_known_math_verify_errors_fixed(gold, pred):
    assert not judge(gold, pred, 5).passed
    assert not verdict(gold, boxed(pred)).passed


def test_known_math_verify_errors_are_real():
    """The raw library does judge these equal (if this starts failing, upstream fixed some)."""
    from math_verify import parse, verify

    def raw(s):
        return parse("\\boxed{" + s + "}", parsing_timeout=None)

    right = [(g, p) for g, p in MV_FALSE_EQUAL if not verify(raw(g), raw(p), timeout_seconds=None)]
    assert not right, right


def test_mathrm_e_is_eulers_number():
    """math-verify cannot parse ``\\mathrm{e}`` inside a box (a false negative); we read it as e."""
    from math_verify import parse, verify

    gold, pred = "1-\\frac{1}{\\mathrm{e}}", "\\frac{e-1}{e}"
    raw = [parse("\\boxed{" + s + "}", parsing_timeout=None) for s in (gold, pred)]
    assert not verify(raw[0], raw[1], timeout_seconds=None)
    assert judge(gold, pred, 5).passed
    assert not judge(gold, "1+\\frac{1}{e}", 5).passed


def test_fixes_keep_true_equalities():
    for gold, pred in [
        ("\\frac{1}{20!}", "\\frac{1}{2432902008176640000}"),
        ("\\frac{1}{3}", "0.333333"),
        ("50\\%", "50"),
        ("50\\%", "\\frac12"),
        ("1-\\frac{1}{\\mathrm{e}}", "\\frac{e-1}{e}"),
        ("2^{100}", "1267650600228229401496703205376"),
    ]:
        assert judge(gold, pred, 5).passed, (gold, pred)


# ---------------------------------------------------------------- graded credit


@pytest.mark.parametrize(
    "s, expected",
    [
        ("(1, 2]", ("(", "]", ["1", "2"])),
        ("\\left( 3, \\frac{\\pi}{2} \\right)", ("(", ")", ["3", "\\frac{\\pi}{2}"])),
        ("3, 5, and 7", ("", "", ["3", "5", "7"])),
        ("\\{1, 2\\}", ("\\{", "\\}", ["1", "2"])),
        ("10,080", ("", "", ["10,080"])),
        ("(x+1)", ("", "", ["(x+1)"])),
        ("f(1,2)", ("", "", ["f(1,2)"])),
        ("(1,2)\\cup(3,4)", ("", "", ["(1,2)\\cup(3,4)"])),
    ],
)
def test_split_compound(s, expected):
    assert split_compound(s) == expected


@pytest.mark.parametrize(
    "gold, pred, credit",
    [
        ("5", "5", 1.0),
        ("5", "6", 0.0),  # scalars: no partial credit
        ("(6,31,-1)", "(6,31,1)", 2 / 3),  # ordered: position by position
        ("(6,31,-1)", "(31,6,-1)", 1 / 3),
        ("3, 5, 7", "3, 5", 2 / 3),  # unordered: matched / max(#gold, #pred)
        ("3, 5, 7", "7, 5, 3, 9", 3 / 4),  # padding with guesses costs credit
        ("\\{1,2\\}", "\\{2,9\\}", 1 / 2),
        ("(3,4]", "(3,4)", 0.5),  # parts right, a delimiter wrong: halved
        ("(3,4]", "[3,5)", 0.25),
        ("1,-2", "17", 0.0),
    ],
)
def test_graded_credit(gold, pred, credit):
    v = verdict(gold, boxed(pred), graded=True)
    assert v.score == pytest.approx(credit, abs=1e-6)
    assert v.passed == (credit == 1.0)
    assert v.extra["credit"] == pytest.approx(credit, abs=1e-6)
    binary = verdict(gold, boxed(pred))
    assert binary.passed == v.passed and binary.score == float(v.passed)
    if 0 < credit < 1:
        assert v.reason == "partial"


def test_compound_credit_bounds():
    assert compound_credit("5", "5") == (0.0, False)
    credit, same = compound_credit("(1,2)", "(1,2)")
    assert credit == 1.0 and same


def test_elementwise_rescue_accepts_equal_parts():
    # each part equal, same delimiters: accepted even where the whole-answer comparison may not be
    j = judge("\\left(\\frac{1}{\\sqrt{2}}, \\sqrt{8}\\right)", "\\left(\\frac{\\sqrt2}{2}, 2\\sqrt2\\right)", 5)
    assert j.passed and j.credit == 1.0


# ---------------------------------------------------------------- timeouts and the pool

EXPLOSIVE = "9^{9^{9^{9}}}"


def test_timeout_in_process():
    t = time.monotonic()
    j = judge("5", EXPLOSIVE, 0.5)
    assert j.reason == "timeout" and not j.passed
    assert time.monotonic() - t < 5


def test_timeout_off_main_thread_uses_the_pool():
    out = {}

    def run():
        out["v"] = mv.verify_batch(
            [(Problem(id="a", domain="math", prompt="", answer="5"), boxed(EXPLOSIVE)),
             (Problem(id="b", domain="math", prompt="", answer="\\frac12"), boxed("0.5"))],
            settings(timeout_s=0.5),
        )

    th = threading.Thread(target=run)
    t = time.monotonic()
    th.start()
    th.join(30)
    assert not th.is_alive()
    assert [v.reason for v in out["v"]] == ["timeout", "ok"]
    assert time.monotonic() - t < 20


def _verify_in_child(force_pool: bool):
    if force_pool:
        mv.POOL_MIN = 1
    items = [(Problem(id="a", domain="math", prompt="", answer="5"), boxed(EXPLOSIVE)),
             (Problem(id="b", domain="math", prompt="", answer="\\frac12"), boxed("0.5"))]
    return [v.reason for v in mv.verify_batch(items, settings(timeout_s=0.5, workers=2))]


@pytest.mark.parametrize("force_pool", [False, True])
def test_timeout_inside_a_daemonic_worker_process(force_pool):
    """The pipeline may call the verifier from its own (daemonic) worker processes."""
    import multiprocessing

    with multiprocessing.get_context("fork").Pool(1) as pool:
        reasons = pool.apply_async(_verify_in_child, (force_pool,)).get(timeout=60)
    assert reasons == ["timeout", "ok"]


def test_pool_hard_kill(monkeypatch):
    from pidistill.verifiers.math_pool import HANG_ENV, judge_many

    monkeypatch.setenv(HANG_ENV, "\\hang")
    t = time.monotonic()
    res = judge_many([("5", "\\hang"), ("5", "5"), ("\\frac12", "0.5"), ("1", "2")], workers=2, timeout_s=0.5, grace_s=0.5)
    assert [r.reason for r in res] == ["timeout", "ok", "ok", "wrong_answer"]
    assert "killed" in res[0].detail
    assert time.monotonic() - t < 20


def test_a_slow_worker_start_is_not_a_timeout(monkeypatch):
    """A task's clock starts when its worker is ready: a loaded node's slow interpreter start (here
    2 s against a 0.5 s limit) must not turn correct answers into timeouts."""
    from pidistill.verifiers.math_pool import SLOW_START_ENV, judge_many

    monkeypatch.setenv(SLOW_START_ENV, "2")
    res = judge_many([("5", "5"), ("\\frac12", "0.5"), ("1", "2")], workers=2, timeout_s=0.5, grace_s=0.5)
    assert [r.reason for r in res] == ["ok", "ok", "wrong_answer"]


def test_pool_matches_in_process(monkeypatch):
    monkeypatch.setattr(mv, "POOL_MIN", 1)
    problems = [Problem(id=str(i), domain="math", prompt="", answer=g) for i, (g, _, _) in enumerate(PAIRS[:24])]
    items = [(p, boxed(pred)) for p, (_, pred, _) in zip(problems, PAIRS[:24])]
    pooled = mv.verify_batch(items, settings(workers=2, graded=True))
    local = mv.verify_batch(items, settings(workers=1, graded=True))
    assert [(v.passed, v.score, v.reason) for v in pooled] == [(v.passed, v.score, v.reason) for v in local]


def test_caller_alarm_is_preserved():
    import signal

    fired = []
    old = signal.signal(signal.SIGALRM, lambda *a: fired.append(1))
    try:
        signal.setitimer(signal.ITIMER_REAL, 30)
        assert judge("\\frac12", "0.5", 2).passed
        remaining = signal.getitimer(signal.ITIMER_REAL)[0]
        assert 0 < remaining <= 30
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


# ---------------------------------------------------------------- toy domain


def test_toy_math_through_the_same_interface():
    from pidistill.domains import toy_math
    from pidistill.domains.registry import load

    problems = load("toy_math", None, seed=3, n_train=40, n_test=20)
    import random

    rng = random.Random(0)
    items, expected = [], []
    for _ in range(40):
        for p in problems:
            item = toy_math.item_of(p)
            ans = toy_math.author_attempt(item, rng, 0.5)
            items.append((p, f"{item.expression}={ans}. {toy_math.format_answer(ans)}"))
            expected.append(ans == item.value)
    t = time.monotonic()
    verdicts = mv.verify_batch(items, settings(workers=2))
    elapsed = time.monotonic() - t
    assert [v.passed for v in verdicts] == expected
    assert 0 < sum(expected) < len(expected)
    assert elapsed < 2.0, f"{len(items)} toy verdicts took {elapsed:.2f}s"


# ---------------------------------------------------------------- CLI


def test_cli_prepare_and_verify(tmp_path):
    from pidistill.cli import main

    src = tmp_path / "mini.jsonl"
    rows = [
        {"problem": "What is 1/2 as a decimal?", "solution": "$\\boxed{0.5}$", "answer": "0.5", "subject": "Prealgebra", "level": 1, "unique_id": "test/prealgebra/1.json"},
        {"problem": "Solve.", "solution": "$\\boxed{(1,2]}$", "answer": "(1,2]", "subject": "Algebra", "level": 4, "unique_id": "test/algebra/2.json"},
    ]
    src.write_text("".join(json.dumps(r) + "\n" for r in rows))
    probs = tmp_path / "problems.jsonl"
    assert main(["prepare", "math500", "--source", str(src), "--out", str(probs)]) == 0
    samples = tmp_path / "samples.jsonl"
    samples.write_text(
        "".join(json.dumps(s) + "\n" for s in [
            {"id": "test/prealgebra/1.json", "completion": "So $\\boxed{\\frac{1}{2}}$."},
            {"id": "test/algebra/2.json", "completion": "So $\\boxed{(1,2)}$."},
            {"id": "test/algebra/2.json", "completion": "no idea"},
        ])
    )
    out = tmp_path / "verdicts.jsonl"
    assert main(["verify", "--problems", str(probs), "--samples", str(samples), "--out", str(out), "--graded"]) == 0
    got = [json.loads(line) for line in out.read_text().splitlines()]
    assert [g["passed"] for g in got] == [True, False, False]
    assert [g["score"] for g in got] == [1.0, 0.5, 0.0]
    assert got[0]["id"] == "test/prealgebra/1.json" and got[0]["completion"].startswith("So")
    assert main(["verify", "--problems", str(probs), "--samples", str(samples), "--out", str(out)]) == 0
    assert [json.loads(line)["score"] for line in out.read_text().splitlines()] == [1.0, 0.0, 0.0]


# ---------------------------------------------------------------- MATH-500 gold answers

needs_math500 = pytest.mark.skipif(not MATH500.exists(), reason=f"{MATH500} not present")


def _math500():
    from pidistill.domains.math_benchmarks import load_math500

    return load_math500(str(MATH500))


@needs_math500
def test_all_math500_golds_verify_as_correct():
    problems = _math500()
    assert len(problems) == 500
    items = [(p, f"Let me work it out step by step. ... The final answer is $\\boxed{{{p.answer}}}$.") for p in problems]
    verdicts = mv.verify_batch(items, settings())
    assert all(v.passed for v in verdicts), [(p.answer, v.reason) for p, v in zip(problems, verdicts) if not v.passed]


@needs_math500
def test_all_math500_golds_equal_themselves_through_math_verify():
    """The same, bypassing the exact-match fast path: every gold parses and equals itself."""
    failures = [(p.answer, j.reason) for p in _math500() if not (j := judge(p.answer, p.answer, 5)).passed]
    assert not failures


@needs_math500
def test_other_problems_golds_verify_as_wrong():
    problems = _math500()
    items = [(p, f"The final answer is $\\boxed{{{problems[(i + 1) % len(problems)].answer}}}$.") for i, p in enumerate(problems)]
    verdicts = verify_samples({p.id: p for p in problems}, [{"id": p.id, "completion": c} for p, c in items], settings())
    wrong = sum(not v["passed"] for v in verdicts)
    assert wrong >= 0.99 * len(problems), wrong
