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


# ---- formal-proof PI: skeleton (per problem), checker feedback, heuristic, diagnosis (per attempt) ----

from pidistill.domains import toy_formal  # noqa: E402
from pidistill.retry import attempt_pi, heuristic_diagnosis  # noqa: E402

COQ_MESSAGES = {  # what coqc 8.16 prints for the toy author's slips (see tests/test_toy_formal.py)
    "incomplete": "error at line 4, column 0: Error:  (in proof t): Attempt to save an incomplete proof",
    "unify": "error at line 3, column 12: Error: In environment\nn : nat\nUnable to unify \"n\" with \"n + 0\".",
    "no_tactic": "error at line 3, column 2: Error: Tactic failure: No applicable tactic.",
    "no_name": "error at line 3, column 8: Error: The reference HP was not found in the current environment.",
}


@pytest.fixture
def formal_problems():
    return toy_formal.make_splits(0, 100, 60)[0]


def _failed(problem_id, attempt, feedback):
    return {"id": problem_id, "attempt": attempt, "passed": False, "completion": "intros n. reflexivity.",
            "feedback": feedback}


def test_heuristic_diagnosis_names_the_kind_of_error_and_falls_back():
    got = {k: heuristic_diagnosis(v) for k, v in COQ_MESSAGES.items()}
    assert "still open" in got["incomplete"]
    assert "induction or rewriting" in got["unify"]
    assert "does not apply" in got["no_tactic"]
    assert "name that does not exist" in got["no_name"]
    assert len(set(got.values())) == 4  # four kinds, four readings
    assert heuristic_diagnosis("") == heuristic_diagnosis(None) == "The proof does not check: try a different approach."
    # Lean 4's wording of an open goal reads the same
    assert heuristic_diagnosis("error: unsolved goals\nx : ℕ\n⊢ x + 0 = x") == got["incomplete"]


def test_skeleton_pi_is_the_problems_own_outline_or_none(formal_problems):
    pi = privileged_info(RetrySpec(pi="skeleton"), formal_problems, seed=1)
    with_outline = [p for p in formal_problems if p.meta.get("skeleton")]
    assert with_outline and len(with_outline) < len(formal_problems)
    assert all(pi[p.id] == p.meta["skeleton"] and "admit." in pi[p.id] for p in with_outline)
    assert all(pi[p.id] is None for p in formal_problems if not p.meta.get("skeleton"))


def test_per_attempt_pi_follows_each_failed_attempt(formal_problems):
    p = formal_problems[0]
    first = [_failed(p.id, 0, COQ_MESSAGES["unify"]), _failed(p.id, 1, COQ_MESSAGES["incomplete"]),
             {"id": p.id, "attempt": 2, "passed": True, "completion": "reflexivity.", "feedback": ""}]
    requests, records = retry_requests(formal_problems, first, RetrySpec.build("feedback", max_chars=40), seed=1)
    assert [r["first_attempt"] for r in records] == [0, 1]  # the passing attempt is not retried
    assert records[0]["retry_message"] == ("Your proof does not check. Please try again.\nThe checker says:\n"
                                           + COQ_MESSAGES["unify"][:40])
    assert COQ_MESSAGES["incomplete"][:40] in records[1]["retry_message"]
    _, records = retry_requests(formal_problems, first, RetrySpec(pi="heuristic"), seed=1)
    assert [r["retry_message"].split("A diagnosis: ")[1] for r in records] == [
        heuristic_diagnosis(COQ_MESSAGES["unify"]), heuristic_diagnosis(COQ_MESSAGES["incomplete"])]
    diagnoses = {(p.id, 0): "induction n.", (p.id, 1): "  "}
    _, records = retry_requests(formal_problems, first, RetrySpec(pi="diagnosis"), seed=1, diagnoses=diagnoses)
    assert records[0]["retry_message"].endswith("A diagnosis: induction n.")
    assert records[1]["retry_message"] == "Your proof does not check. Please try again."  # an empty one: no PI
    with pytest.raises(ValueError, match="needs the diagnoses"):
        attempt_pi(RetrySpec(pi="diagnosis"), first[0])
    # no feedback on the attempt: a bare retry
    assert attempt_pi(RetrySpec(pi="feedback"), _failed(p.id, 0, "")) is None


def test_diagnoses_read_each_failed_attempt_and_its_feedback(formal_problems):
    from pidistill.generation import SamplingSettings
    from pidistill.sampling import sample_diagnoses

    class Backend:
        def generate(self, requests, sampling):
            self.requests = list(requests)
            return [f"diagnosis of {r.request_id}" for r in requests]

    p, q = formal_problems[:2]
    first = [_failed(q.id, 1, COQ_MESSAGES["no_tactic"]), _failed(p.id, 0, COQ_MESSAGES["unify"]),
             {"id": p.id, "attempt": 1, "passed": True, "completion": "reflexivity."}]
    backend = Backend()
    rows = sample_diagnoses(backend, formal_problems, first, "It failed:\n{feedback}", 3, SamplingSettings())
    assert [(r["id"], r["attempt"]) for r in rows] == sorted([(p.id, 0), (q.id, 1)])
    conversation = backend.requests[[r["id"] for r in rows].index(p.id)].messages
    assert [m["role"] for m in conversation] == ["user", "assistant", "user"]
    assert conversation[0]["content"] == p.prompt and conversation[1]["content"] == "intros n. reflexivity."
    assert conversation[2]["content"] == "It failed:\n" + COQ_MESSAGES["unify"]
    assert p.solution not in conversation[2]["content"]
    # per-request seeds: the same diagnosis whatever else is in the batch
    again = sample_diagnoses(Backend(), formal_problems, first[1:], "It failed:\n{feedback}", 3, SamplingSettings())
    assert again[0]["seed"] == rows[0]["seed"]
