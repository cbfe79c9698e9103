import math
from itertools import combinations

import pytest

from pidistill.domains import toy_math
from pidistill.evaluate import pass_at_k, summarize
from pidistill.methods import candidate_statistics, filter_candidates
from pidistill.sft import build_pairs


def brute_pass_at_k(n, c, k):
    samples = [1] * c + [0] * (n - c)
    subsets = list(combinations(range(n), k))
    return sum(any(samples[i] for i in s) for s in subsets) / len(subsets)


@pytest.mark.parametrize("n,c,k", [(5, 0, 1), (5, 1, 1), (5, 2, 3), (8, 3, 8), (8, 7, 2), (10, 4, 5)])
def test_pass_at_k_matches_enumeration(n, c, k):
    assert pass_at_k(n, c, k) == pytest.approx(brute_pass_at_k(n, c, k))


def test_pass_at_1_is_mean_fraction():
    assert pass_at_k(8, 3, 1) == pytest.approx(3 / 8)
    with pytest.raises(ValueError):
        pass_at_k(4, 1, 5)


def test_summarize_keeps_per_problem_rows():
    problems = toy_math.make_splits(0, 3, 0)[0]
    verdicts = [{"id": p.id, "passed": j < i} for i, p in enumerate(problems) for j in range(4)]
    out = summarize(problems, verdicts, ks=[1, 4])
    assert out["n_samples"] == 4 and out["n_problems"] == 3
    assert out["metrics"]["pass@1"] == pytest.approx((0 + 1 / 4 + 2 / 4) / 3)
    assert out["metrics"]["pass@4"] == pytest.approx(2 / 3)
    assert [r["c"] for r in out["per_problem"]] == [0, 1, 2]
    assert "family" in out["per_problem"][0]


def test_summarize_rejects_missing_problems():
    problems = toy_math.make_splits(0, 3, 0)[0]
    with pytest.raises(ValueError, match="no samples"):
        summarize(problems, [{"id": problems[0].id, "passed": True}], ks=[1])


def test_pairs_drop_pi_and_failed_attempt_and_dedupe():
    problems = toy_math.make_splits(0, 2, 0)[0]
    p = problems[0]
    retries = [
        {"id": p.id, "attempt": 0, "passed": True, "completion": "\\boxed{5}", "retry_message": "Try again.\nThe correct answer is: 5"},
        {"id": p.id, "attempt": 1, "passed": True, "completion": "\\boxed{5}"},
        {"id": p.id, "attempt": 2, "passed": False, "completion": "\\boxed{6}"},
    ]
    pairs = build_pairs(problems, filter_candidates(retries, []))
    assert len(pairs) == 1
    assert pairs[0]["prompt"] == [{"role": "user", "content": p.prompt}]
    assert pairs[0]["completion"] == [{"role": "assistant", "content": "\\boxed{5}"}]
    assert len(build_pairs(problems, filter_candidates(retries, []), dedupe=False)) == 2


def test_graded_filter_threshold():
    rows = [{"passed": False, "score": 0.6}, {"passed": False, "score": 0.2}]
    assert len(filter_candidates(rows, [], threshold=0.5)) == 1


def test_retry_statistics_frontier():
    first = [{"id": "a", "attempt": 0, "passed": True}, {"id": "b", "attempt": 0, "passed": False},
             {"id": "c", "attempt": 0, "passed": False}]
    retries = [{"id": "b", "passed": True}, {"id": "c", "passed": False}]
    stats = candidate_statistics(first, retries, [], [{}], {"kind": "retry"})
    assert stats["n_failed_problems"] == 2 and stats["n_frontier"] == 1
    assert stats["retry_success_rate"] == 0.5 and stats["n_pairs"] == 1
    assert candidate_statistics(first[:1], [], [], [], {"kind": "retry"})["retry_success_rate"] == 0.0
