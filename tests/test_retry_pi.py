import pytest

from pidistill.domains import toy_code, toy_math
from pidistill.retry import RetrySpec, privileged_info, retry_conversation, retry_message
from pidistill.sampling import retry_requests


@pytest.fixture
def math_problems():
    return toy_math.make_splits(0, 30, 5)[0]


@pytest.fixture
def code_problems():
    return toy_code.make_splits(0, 20, 5)[0]


def test_none_carries_nothing(math_problems):
    spec = RetrySpec(pi="none")
    pi = privileged_info(spec, math_problems, seed=1)
    assert set(pi.values()) == {None}
    assert retry_message(spec, "math", None) == "Try again carefully."


def test_gold_is_own_answer(math_problems, code_problems):
    pi = privileged_info(RetrySpec(pi="gold"), math_problems, seed=1)
    assert all(pi[p.id] == p.answer for p in math_problems)
    pi = privileged_info(RetrySpec(pi="gold"), code_problems, seed=1)
    assert all(pi[p.id] == p.solution for p in code_problems)


def test_wrong_is_another_problems_gold_by_derangement(math_problems):
    spec = RetrySpec(pi="wrong")
    pi = privileged_info(spec, math_problems, seed=7)
    by_id = {p.id: p for p in math_problems}
    golds = sorted(p.answer for p in math_problems)
    assert sorted(pi.values()) == golds  # a permutation of the golds
    # every problem gets a donor other than itself (answers may coincide by value, ids never do)
    donors = {}
    for p in math_problems:
        donors[p.id] = [q.id for q in math_problems if q.answer == pi[p.id]]
    assert all(any(d != pid for d in ds) for pid, ds in donors.items())
    assert pi == privileged_info(spec, list(reversed(math_problems)), seed=7)  # order-independent
    assert pi != privileged_info(spec, math_problems, seed=8)


def test_tests_conditions(code_problems, math_problems):
    own = privileged_info(RetrySpec(pi="tests"), code_problems, seed=1)
    other = privileged_info(RetrySpec(pi="other_tests"), code_problems, seed=1)
    for p in code_problems:
        assert own[p.id] == "\n".join(p.tests)
        assert other[p.id] != own[p.id]
    with pytest.raises(ValueError, match="needs code problems"):
        privileged_info(RetrySpec(pi="tests"), math_problems, seed=1)


def test_gibberish_message():
    spec = RetrySpec(pi="gibberish")
    assert retry_message(spec, "code", "XYZZY").endswith("\nXYZZY")
    assert retry_message(spec, "code", "XYZZY").startswith("Your solution failed the tests.")


def test_retry_requests_only_for_failures_k_each(math_problems):
    verdicts = [{"id": p.id, "attempt": a, "completion": f"\\boxed{{{a}}}", "passed": (i % 3 == 0)}
                for i, p in enumerate(math_problems) for a in range(2)]
    spec = RetrySpec(pi="gold", k=3)
    requests, records = retry_requests(math_problems, verdicts, spec, seed=1)
    n_failed = sum(not v["passed"] for v in verdicts)
    assert len(requests) == len(records) == 3 * n_failed
    rec, req = records[0], requests[0]
    assert req.messages[0]["content"] == next(p.prompt for p in math_problems if p.id == rec["id"])
    assert req.messages[1] == {"role": "assistant", "content": rec["failed_completion"]}
    assert "The correct answer is" in req.messages[2]["content"]
    assert len({r.seed for r in requests}) == len(requests)  # every retry has its own seed


def test_retry_conversation_shape(math_problems):
    conv = retry_conversation(math_problems[0], "\\boxed{0}", "Try again carefully.")
    assert [m["role"] for m in conv] == ["user", "assistant", "user"]


def test_build_applies_overrides_only_where_given():
    spec = RetrySpec.build("gold", 2, retry_texts={"math": "Again.", "code": None}, pi_template="Answer: {pi}")
    assert spec.retry_text["math"] == "Again." and spec.retry_text["code"].startswith("Your solution failed")
    assert retry_message(spec, "math", "5") == "Again.\nAnswer: 5" and spec.k == 2
    assert RetrySpec.build("none").retry_text["math"] == "Try again carefully."
