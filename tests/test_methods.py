"""The method catalogue: sources, filters, their job names and sharing, and the method table."""

import math
from pathlib import Path

import pandas as pd
import pytest
import yaml

from pidistill.config import ConfigError, method_settings, method_sources, source_settings, validate_config
from pidistill.dagstats import job_keys, sharing_report
from pidistill.derived import method_rows
from pidistill.domains import toy_math
from pidistill.methods import (candidate_statistics, describe_method, filter_candidates, graded_score, method_source,
                               sample_temperatures, source_id)
from pidistill.retry import RetrySpec, first_step, privileged_info, solution_steps
from pidistill.sampling import count_tokens, sample_extra_attempts, sample_hints, sample_resamples

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


def demo_config():
    return validate_config(yaml.safe_load((REPO / "config" / "config.yaml").read_text()))


# ---- sources and their job names --------------------------------------------------------------


def test_retry_source_defaults_and_id():
    assert source_id(method_source({"pi": "none"})) == "retry-none-k1"
    assert source_id(method_source({"pi": "gold", "k": 3})) == "retry-gold-k3"
    assert source_id(method_source({"pi": "none", "source": {"kind": "retry", "model": "big"}})) == "retry-none-k1-by-big"
    custom = source_id(method_source({"pi": "none", "retry_text": "Again."}))
    assert custom.startswith("retry-none-k1-") and custom != source_id(method_source({"pi": "none", "retry_text": "No."}))


def test_other_sources_ids():
    assert source_id(method_source({"source": {"kind": "samples", "n": 16}})) == "samples-n16"
    assert source_id(method_source({"source": {"kind": "samples", "n": 8, "temperature": [0.3, 1.1]}})) == "samples-n8-t0.3to1.1"
    assert source_id(method_source({"source": {"kind": "resample", "per_failure": 2}})) == "resample-x2"
    assert source_id(method_source({"source": {"kind": "first_attempts"}})) is None


def test_hint_source_needs_hint_model():
    with pytest.raises(ValueError, match="hint_model"):
        method_source({"pi": "hint"})
    with pytest.raises(ValueError, match="go with pi 'hint'"):
        method_source({"pi": "none", "source": {"kind": "retry", "hint_model": "big"}})


def test_diagnosis_source_needs_its_model_and_is_named_by_it():
    with pytest.raises(ValueError, match="diagnosis_model"):
        method_source({"pi": "diagnosis"})
    with pytest.raises(ValueError, match="go with pi 'diagnosis'"):
        method_source({"pi": "feedback", "source": {"kind": "retry", "diagnosis_model": "big"}})
    src = method_source({"pi": "diagnosis", "source": {"kind": "retry", "diagnosis_model": "big"}})
    from pidistill.methods import DEFAULT_DIAGNOSIS_PROMPT, diagnosis_key

    assert src["diagnosis_prompt"] == DEFAULT_DIAGNOSIS_PROMPT
    assert source_id(src).startswith("retry-diagnosis-k1-diag-big-")
    other = method_source({"pi": "diagnosis", "source": {"kind": "retry", "diagnosis_model": "big",
                                                         "diagnosis_prompt": "Why?\n{feedback}"}})
    assert diagnosis_key(other) != diagnosis_key(src) and source_id(other) != source_id(src)
    # cutting the PI is part of what the retry is: another job
    assert source_id(method_source({"pi": "feedback", "pi_max_chars": 100})) != source_id(method_source({"pi": "feedback"}))


def test_demo_methods_share_sources():
    config = demo_config()
    sources = method_sources(config)
    # frontier-rejection and double-sample draw the same N=16 samples; the LR sweep and graded
    # reuse try-again's retries: one job each
    assert method_source(method_settings(config, "frontier_rejection")) == method_source(method_settings(config, "double_sample"))
    assert "samples-n16" in sources
    for m in ("tryagain_lr3e3", "graded"):
        assert source_id(method_source(method_settings(config, m))) == "retry-none-k1"
    assert len(sources) == len(set(sources))


def test_source_settings_leave_out_training_and_filter():
    config = demo_config()
    a = source_settings(config, "tryagain", "toy_math")
    assert a == source_settings(config, "tryagain_lr3e3", "toy_math") == source_settings(config, "graded", "toy_math")
    assert "train" not in a and "filter" not in a


def test_sample_temperatures():
    assert sample_temperatures(3, 0.7) == [0.7, 0.7, 0.7]
    assert sample_temperatures(5, [0.2, 1.0]) == [0.2, 0.4, 0.6, 0.8, 1.0]
    assert sample_temperatures(1, [0.2, 1.0]) == [0.6]


# ---- config validation ------------------------------------------------------------------------


@pytest.mark.parametrize("edit, match", [
    (lambda c: c["methods"]["iprs"].update(source={"kind": "retry"}), "trainer 'grpo' samples its own"),
    (lambda c: c["methods"]["cross_retry"]["source"].update(model="nope"), "source.model: unknown model 'nope'"),
    (lambda c: c["methods"]["double_sample"].update(pi="gold"), "belong to retry sources"),
    (lambda c: c["methods"]["double_sample"]["source"].pop("n"), "needs n"),
    (lambda c: c["methods"]["tryagain"].update(source={"kind": "samples", "n": 2, "model": "tiny"}), "does not take"),
])
def test_bad_methods_name_the_key(edit, match):
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    edit(config)
    with pytest.raises(ConfigError, match=match):
        validate_config(config)


def test_unknown_source_kind_is_a_schema_error():
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    config["methods"]["tryagain"]["source"] = {"kind": "oracle"}
    with pytest.raises(ConfigError, match=r"methods.tryagain.source.kind"):
        validate_config(config)


# ---- filters ----------------------------------------------------------------------------------


def test_graded_score():
    assert graded_score({"passed": True}) == 1.0
    assert graded_score({"passed": False, "credit": 0.5}) == 0.5
    assert graded_score({"passed": False, "test_results": [True, False, True, True]}) == 0.75
    assert graded_score({"passed": False}) == 0.0


def test_filters():
    first = [{"id": "a", "passed": True}, {"id": "a", "passed": True}, {"id": "b", "passed": False}]
    cands = [{"id": "a", "passed": True}, {"id": "b", "passed": True},
             {"id": "b", "passed": False, "test_results": [True, True, False]},
             {"id": "c", "passed": False, "test_results": [False, True, False]}]
    assert [c["id"] for c in filter_candidates(cands, first)] == ["a", "b"]
    assert [c["id"] for c in filter_candidates(cands, first, threshold=0.5)] == ["a", "b", "b"]
    # frontier: only problems with a failed first attempt (b; c has none on record)
    assert [c["id"] for c in filter_candidates(cands, first, frontier=True)] == ["b"]


def test_candidate_statistics_counts_tokens():
    first = [{"id": "a", "passed": False, "tokens": 5}, {"id": "b", "passed": True, "tokens": 7}]
    cands = [{"id": "a", "passed": True, "tokens": 3}, {"id": "a", "passed": False, "tokens": 4}]
    stats = candidate_statistics(first, cands, cands[:1], [{}], {"kind": "retry"})
    assert stats["tokens_first_attempts"] == 12 and stats["tokens_source"] == 7
    assert stats["n_frontier"] == 1 and stats["retry_success_rate"] == 1.0
    rs = candidate_statistics(first, first, first[1:], [{}], {"kind": "first_attempts"})
    assert rs["tokens_source"] == 0 and rs["n_frontier"] == 0  # the first attempts are not counted twice


# ---- PI: first step, hints, donors --------------------------------------------------------------


def test_first_step_of_toy_solutions():
    carry = toy_math.to_problem(toy_math.MathItem("add", 7, 8), 0, "train")
    assert first_step(carry) == "7+8=7+3+5=10+5."
    assert "15" not in first_step(carry)
    assert first_step(toy_math.to_problem(toy_math.MathItem("add", 3, 4), 0, "train")) is None  # one step


@pytest.mark.skipif(not (SHARED / "datasets").exists(), reason="../shared/datasets is absent")
def test_first_step_of_math500_solutions_never_boxes_the_answer():
    from pidistill.domains.math_benchmarks import load_math500

    path = next((SHARED / "datasets").rglob("*500*.jsonl"), None)
    if path is None:
        pytest.skip("no MATH-500 file")
    problems = load_math500(str(path))
    steps = [first_step(p) for p in problems]
    assert sum(s is not None for s in steps) > 0.8 * len(problems)
    assert not any("\\boxed" in s for s in steps if s)


def test_solution_steps_split_sentences_and_lines():
    assert solution_steps("We have $x=2$. So $y=3$.\nThus $5$. $\\boxed{5}$") == ["We have $x=2$.", "So $y=3$.", "Thus $5$."]


def test_hint_and_donor_pi():
    problems = toy_math.make_splits(0, 6, 2)[0]
    hints = {problems[0].id: "think of ten"}
    pi = privileged_info(RetrySpec(pi="hint"), problems, 1, hints=hints)
    assert pi[problems[0].id] == "think of ten" and pi[problems[1].id] is None
    donors = {p.id: q.id for p, q in zip(problems, problems[1:] + problems[:1])}
    pi = privileged_info(RetrySpec(pi="wrong"), problems, 1, donors=donors)
    assert pi[problems[0].id] == problems[1].answer
    with pytest.raises(ValueError, match="another split"):
        privileged_info(RetrySpec(pi="wrong"), problems, 1, donors={})


# ---- sampling of the sources (a recording backend) ----------------------------------------------


class RecordingBackend:
    def __init__(self):
        self.calls = []

    def generate(self, requests, sampling):
        self.calls.append((sampling.temperature, [r.request_id for r in requests]))
        return [f"{r.request_id}@{sampling.temperature}" for r in requests]


def test_extra_attempts_one_batch_per_temperature_and_own_seeds():
    problems = toy_math.make_splits(0, 3, 1)[0]
    backend = RecordingBackend()
    from pidistill.generation import SamplingSettings

    rows = sample_extra_attempts(backend, problems, [0.3, 0.7, 1.1], 1, "samples-n3", SamplingSettings())
    assert [t for t, _ in backend.calls] == [0.3, 0.7, 1.1]
    assert len(rows) == 9 and {r["temperature"] for r in rows} == {0.3, 0.7, 1.1}
    assert all(r["completion"].endswith(f"@{r['temperature']}") for r in rows)
    other = sample_extra_attempts(RecordingBackend(), problems, [0.3, 0.7, 1.1], 1, "samples-n3b", SamplingSettings())
    assert [r["seed"] for r in rows] != [r["seed"] for r in other]


def test_resamples_follow_failures_and_hints_see_no_gold():
    from pidistill.generation import SamplingSettings

    problems = toy_math.make_splits(0, 3, 1)[0]
    first = [{"id": problems[0].id, "attempt": 0, "passed": False, "completion": "x"},
             {"id": problems[0].id, "attempt": 1, "passed": True, "completion": "y"},
             {"id": problems[2].id, "attempt": 1, "passed": False, "completion": "z"}]
    rows = sample_resamples(RecordingBackend(), problems, first, 2, 1, "resample-x2", SamplingSettings())
    assert [(r["id"], r["attempt"]) for r in rows] == [(problems[0].id, 0), (problems[0].id, 1),
                                                       (problems[2].id, 2), (problems[2].id, 3)]
    hints = sample_hints(RecordingBackend(), problems, "Hint for: {prompt}", 1, SamplingSettings())
    assert all(p.answer not in h["hint_prompt"].split(": ", 1)[1].replace(p.prompt, "") for p, h in zip(
        sorted(problems, key=lambda p: p.id), hints))
    assert hints[0]["hint_prompt"].startswith("Hint for: Compute")


def test_count_tokens():
    class Tok:
        def __call__(self, texts, add_special_tokens=False):
            return {"input_ids": [t.split() for t in texts]}

    assert [r["tokens"] for r in count_tokens([{"completion": "a b c"}, {"completion": None}], Tok())] == [3, 0]


# ---- the method table -------------------------------------------------------------------------


def _summary(method, gains, base=0.45, lo=None, hi=None, ci="t", tokens=1000.0):
    return {"method": method, "label": method.title(), "n_seeds": len(gains), "seeds": ";".join(map(str, range(len(gains)))),
            "base_pass@1_mean": base, "gain_pp_mean": sum(gains) / len(gains),
            "gain_pp_std": (pd.Series(gains).std() if len(gains) > 1 else math.nan),
            "gain_pp_ci_low": lo, "gain_pp_ci_high": hi, "ci_method": ci, "gains_pp": ";".join(f"{g:.2f}" for g in gains),
            "tokens_generated_mean": tokens, "n_untrained": 0}


def test_method_rows_notes_are_computed():
    summaries = {
        "controls": pd.DataFrame([_summary("a", [2.0, 4.0], lo=-10.0, hi=16.0), _summary("b", [5.0], lo=1.0, hi=9.0, ci="bootstrap")]),
        "code": pd.DataFrame([_summary("c", [3.0], base=0.8, lo=0.5, hi=5.0, ci="bootstrap")]),
    }
    specs = {"controls": {"kind": "conditions", "dataset": "m", "model": "x", "domain": "math"},
             "code": {"kind": "conditions", "dataset": "h", "model": "x", "domain": "code"}}
    overlaps = {"m": {"n_test_in_train": 0, "fraction": 0.0}, "h": {"n_test_in_train": 10, "fraction": 1.0}}
    rows = method_rows(summaries, specs, overlaps, (0.3, 0.6), {"b": "fixed"}).set_index("method")
    assert rows.loc["a", "note"] == "95% CI includes 0"
    assert rows.loc["b", "note"] == "fixed; single seed"
    assert rows.loc["c", "note"] == "single seed; baseline 80% outside 30-60%; train/test overlap 100%"
    ordered = method_rows(summaries, specs, overlaps)
    assert list(ordered["method"]) == ["b", "c", "a"]  # largest mean gain first


# ---- sharing in the DAG -------------------------------------------------------------------------


def test_sources_are_shared_across_methods_and_studies():
    config = demo_config()
    report = sharing_report(config)
    assert report["shared"]["sample_extra_attempts"] < report["unshared"]["sample_extra_attempts"]
    assert report["shared"]["sample_retries"] < report["unshared"]["sample_retries"]
    from pidistill.config import study_runs

    runs = {r.policy: r for r in study_runs(config, "controls")}
    rs = job_keys(runs["base/r1-rejection_sft"], config)
    assert not any(rule in ("sample_retries", "sample_extra_attempts") for rule, _ in rs)
    ds = {k for k in job_keys(runs["base/r1-double_sample"], config) if k[0] == "sample_extra_attempts"}
    fr = {k for k in job_keys(runs["base/r1-frontier_rejection"], config) if k[0] == "sample_extra_attempts"}
    assert ds == fr and len(ds) == 1


def test_describe_method_says_what_it_is():
    config = demo_config()
    assert "16 more samples" in describe_method(method_settings(config, "double_sample"))
    assert "tiny_strong retries" in describe_method(method_settings(config, "cross_retry"))
    assert "graded score is at least 0.5" in describe_method(method_settings(config, "graded"))
    assert describe_method(method_settings(config, "iprs")).startswith("GRPO")


def test_method_rows_one_row_per_shared_run():
    shared = _summary("tryagain", [1.0], lo=-1.0, hi=3.0, ci="bootstrap")
    summaries = {"k_retries": pd.DataFrame([shared]), "controls": pd.DataFrame([shared]),
                 "pi_content": pd.DataFrame([{**shared, "n_seeds": 2, "seeds": "1;2", "gains_pp": "1.00;1.00"}])}
    specs = {s: {"kind": "conditions", "dataset": "m", "model": "x", "domain": "math"} for s in summaries}
    rows = method_rows(summaries, specs, {"m": {"n_test_in_train": 0, "fraction": 0.0}})
    assert sorted(rows["study"]) == ["k_retries, controls", "pi_content"]


def test_the_hierarchy_lists_conditions_and_each_round_largest_gain_first():
    from pidistill.report.numbers import hierarchy_numbers
    from pidistill.report.tables import hierarchy_table

    conditions = pd.DataFrame([_summary("tryagain", [-2.0], lo=-5.0, hi=1.0, ci="bootstrap"),
                               _summary("opsd_skeleton", [3.0], lo=0.5, hi=5.5, ci="bootstrap")])
    rounds = pd.DataFrame([  # aggregate_study's rounds summary: the base row and one row per round
        {"round": 0, "policy": "base", "seed": 1, "pass@1": 0.4, "gain_pp": 0.0},
        *({"round": r, "policy": "base" + "".join(f"/r{i}-lean_heuristic" for i in range(1, r + 1)), "seed": 1,
           "pass@1": 0.4 + g / 100, "gain_pp": g, "gain_pp_ci_low": g - 2, "gain_pp_ci_high": g + 2,
           "trained": True, "n_pairs": 5} for r, g in ((1, -1.0), (2, -2.5), (3, -3.6)))])
    summaries = {"lean": conditions, "lean_iterative": rounds}
    specs = {"lean": {"kind": "conditions", "dataset": "f", "model": "p", "domain": "formal"},
             "lean_iterative": {"kind": "rounds", "dataset": "f", "model": "p", "domain": "formal",
                                "label": "heuristic PI"}}
    rows = method_rows(summaries, specs, {"f": {"n_test_in_train": 0, "fraction": 0.0}})
    assert list(rows["label"]) == ["Opsd_Skeleton", "heuristic PI, round 1", "Tryagain", "heuristic PI, round 2",
                                   "heuristic PI, round 3"]
    numbers = hierarchy_numbers("lean_hierarchy", rows)
    assert numbers["lean_hierarchy/best_gain"] == "+3.0" and numbers["lean_hierarchy/worst_gain"] == "-3.6"
    assert numbers["lean_hierarchy/n_positive"] == "1" and numbers["lean_hierarchy/n_rows"] == "5"
    table = hierarchy_table("lean_hierarchy", "Lean", rows, {"samples": 2000, "seed": 0})
    assert table.index("Opsd") < table.index("round 3") and "\\label{tab:lean_hierarchy}" in table
