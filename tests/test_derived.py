"""The derived studies' tables, the paired bootstrap and the overlap detector, on hand-made
evaluation files whose answers are known."""

from __future__ import annotations

import copy
import math

import numpy as np
import pandas as pd
import pytest
import yaml

from pidistill.aggregate import condition_summary, run_rows
from pidistill.config import ConfigError, Run, derived_sources, mucode_studies, run_studies, validate_config
from pidistill.derived import (amortized_rows, band_statement, benchmark_rule, cost_rows, domain_rows, level_rows,
                               lr_rows, read_benchmark, scale_points)
from pidistill.domains import toy_math
from pidistill.overlap import content_hash, split_overlap
from pidistill.problems import Problem
from pidistill.report.numbers import amortized_numbers, ci_statement, levels_numbers, scale_numbers
from pidistill.report.tables import BOOT_MARK, conditions_table, cost_table, domains_table, levels_table
from pidistill.stats import bootstrap_means, gain_ci, paired_rates

BOOT = {"samples": 2000, "seed": 0}


def evaluation(counts, n=4, levels=None):
    """An evaluation.json with per-problem counts c (out of n) for problems p000, p001, ..."""
    rows = []
    for i, c in enumerate(counts):
        row = {"id": f"p{i:03d}", "n": n, "c": c}
        if levels is not None:
            row["level"] = levels[i]
        rows.append(row)
    return {"n_problems": len(rows), "n_samples": n, "metrics": {"pass@1": sum(counts) / (n * len(counts))},
            "per_problem": rows}


# ---- the paired bootstrap -----------------------------------------------------------------------


def test_bootstrap_ci_contains_the_true_difference():
    """Per-problem solve rates drawn around known probabilities: the true mean difference is 0.10."""
    rng = np.random.default_rng(7)
    p_base = rng.uniform(0.1, 0.7, size=400)
    p_other = p_base + 0.10
    base = rng.binomial(8, p_base) / 8
    other = rng.binomial(8, p_other) / 8
    point, lo, hi = gain_ci(base, other, 2000, seed=1)
    assert lo < 0.10 < hi
    assert lo > 0  # 400 problems resolve a 10 pp difference
    assert lo < point < hi


def test_bootstrap_is_deterministic_and_paired():
    base = [0, 0.25, 0.5, 1, 1, 0.75]
    other = [0.25, 0.5, 0.5, 1, 0.75, 1]
    assert gain_ci(base, other, 500, seed=3) == gain_ci(base, other, 500, seed=3)
    assert gain_ci(base, other, 500, seed=3) != gain_ci(base, other, 500, seed=4)
    # identical policies: every resample gives a difference of exactly zero (pairing), unlike unpaired resampling
    assert gain_ci(base, base, 500, seed=3) == (0.0, 0.0, 0.0)
    means = bootstrap_means([base, other], 100, seed=0)
    assert means.shape == (100, 2) and means.min() >= 0 and means.max() <= 1


def test_paired_rates_align_problems_by_id():
    a = evaluation([0, 4])
    b = {"per_problem": list(reversed(evaluation([2, 4])["per_problem"]))}
    assert paired_rates(a, b) == ([0.0, 1.0], [0.5, 1.0])
    with pytest.raises(ValueError, match="different problems"):
        paired_rates(a, evaluation([1, 1, 1]))


def test_single_seed_conditions_carry_the_bootstrap_ci():
    runs = [Run("s", "d", "m", 1, "base"), Run("s", "d", "m", 1, "base/r1-a")]
    evals = {("d/m/seed1", "base"): evaluation([0] * 20 + [4] * 20),
             ("d/m/seed1", "base/r1-a"): evaluation([4] * 20 + [4] * 20)}  # +50 pp on every resample's half
    stats = {("d/m/seed1", "base/r1-a"): {"retry_success_rate": 0.5, "n_pairs": 3}}
    trainings = {("d/m/seed1", "base/r1-a"): {"trained": True}}
    df = run_rows(runs, evals, stats, trainings, {"a": "A"}, BOOT)
    row = df[df["policy"] == "base/r1-a"].iloc[0]
    assert row["gain_pp"] == pytest.approx(50)
    assert row["gain_pp_boot_low"] < 50 < row["gain_pp_boot_high"]
    summary = condition_summary(df[df["policy"] != "base"], ["a"])
    assert summary["ci_method"].tolist() == ["bootstrap"]
    assert summary["gain_pp_ci_low"].iloc[0] == row["gain_pp_boot_low"]
    table = conditions_table("s", "S", summary, df[df["policy"] != "base"], bootstrap=BOOT)
    assert BOOT_MARK in table and "a single seed" in table and "one baseline" in table


def test_ci_statement_is_computed_from_the_intervals():
    summary = pd.DataFrame({"method": ["a", "b", "c"], "label": ["A", "B", "C"], "ci_method": ["t"] * 3,
                            "gain_pp_ci_low": [1.0, 2.0, 20.0], "gain_pp_ci_high": [5.0, 6.0, 25.0]})
    text = ci_statement(summary)
    assert "do not overlap for: A vs C; B vs C" in text
    assert "overlap (over seeds)" in ci_statement(summary.iloc[:2])
    single = summary.iloc[:1].assign(ci_method="bootstrap")
    assert "[+1.0, +5.0]" in ci_statement(single) and "bootstrap" in ci_statement(single)


# ---- amortized -----------------------------------------------------------------------------------


def test_amortized_headroom_fraction():
    """Base: pass@1 40%, pass@4 60% (gap 20 pp); after: pass@1 50%, pass@4 60% (gap 10 pp): half
    of the headroom internalised."""
    base = evaluation([4, 4, 2, 2, 2, 2, 0, 0, 0, 0])        # pass@1 16/40, pass@4 6/10
    after = evaluation([4, 4, 4, 4, 2, 2, 0, 0, 0, 0])       # pass@1 20/40, pass@4 6/10
    rows = amortized_rows([(42, base, after)], 2, BOOT)
    r = rows.iloc[0]
    assert r["base_pass@1"] == pytest.approx(0.4) and r["base_pass@N"] == pytest.approx(0.6)
    assert r["after_pass@1"] == pytest.approx(0.5) and r["after_pass@N"] == pytest.approx(0.6)
    assert r["base_gap_pp"] == pytest.approx(20) and r["after_gap_pp"] == pytest.approx(10)
    assert r["gain_pp"] == pytest.approx(10) and r["internalised"] == pytest.approx(0.5)
    assert r["internalised_ci_low"] <= 0.5 <= r["internalised_ci_high"]
    assert r["N"] == 4 and r["ci_method"] == "bootstrap"
    numbers = amortized_numbers("amortized", rows)
    assert numbers["amortized/internalised"] == "50" and numbers["amortized/base_gap"] == "20.0"
    # the source document's arithmetic: 7.4 / 15.2 = 49%
    assert 1 - 7.8 / 15.2 == pytest.approx(0.4868, abs=1e-4)


def test_amortized_over_seeds_adds_a_mean_row():
    base = evaluation([4, 2, 0, 0])
    rows = amortized_rows([(2, base, evaluation([4, 4, 0, 0])), (1, base, evaluation([4, 2, 2, 0]))], 1, BOOT)
    assert list(rows["seed"]) == [1, 2, "mean"]
    assert rows.iloc[2]["gain_pp"] == pytest.approx((12.5 + 12.5) / 2) and rows.iloc[2]["ci_method"] == "t"


def test_amortized_without_headroom_says_so():
    flat = evaluation([4, 0, 4, 0])  # every problem always or never solved: pass@N == pass@1
    rows = amortized_rows([(1, flat, flat)], 1, BOOT)
    assert math.isnan(rows.iloc[0]["internalised"])
    assert "no stochastic headroom" in amortized_numbers("a", rows)["a/statement"]


# ---- levels --------------------------------------------------------------------------------------


def test_levels_from_per_problem_results():
    levels = [1, 1, 2, 2, 3, 3]
    base = evaluation([4, 2, 2, 0, 0, 0], levels=levels)    # L1 75%, L2 25%, L3 0%
    post = evaluation([4, 4, 4, 0, 0, 0], levels=levels)    # L1 100%, L2 50%, L3 0%
    rows = level_rows({(1, "base"): base, (1, "base/r1-m"): post}, {"m": [1]}, ["m"], {"m": "M"}, BOOT)
    assert list(rows["level"]) == [1, 2, 3] and list(rows["n_problems"]) == [2, 2, 2]
    assert rows["base_pass@1"].tolist() == pytest.approx([0.75, 0.25, 0.0])
    assert rows["gain_pp_mean"].tolist() == pytest.approx([25, 25, 0])
    assert (rows["ci_method"] == "bootstrap").all() and rows.iloc[2][["gain_pp_ci_low", "gain_pp_ci_high"]].tolist() == [0, 0]
    assert "Problems" in levels_table("levels", "L", rows, "src", BOOT)
    numbers = levels_numbers("levels", rows)
    assert numbers["levels/best_level"] == "1 and 2" and numbers["levels/m/L1/gain"] == "+25.0"


def test_levels_need_levelled_problems():
    with pytest.raises(ValueError, match="no 'level'"):
        level_rows({(1, "base"): evaluation([1]), (1, "base/r1-m"): evaluation([2])}, {"m": [1]}, ["m"], {}, BOOT)


def test_toy_math_levels_are_defined_from_the_problem():
    level = lambda f, a, b: toy_math.level_of(toy_math.MathItem(f, a, b))  # noqa: E731
    assert level("add", 3, 4) == 1 and level("sub", 17, 5) == 1
    assert level("add", 7, 8) == 2 and level("sub", 13, 7) == 3
    assert level("mul", 4, 5) == 4 and level("mul", 6, 7) == 5 and level("mul", 5, 6) == 5
    train, test = toy_math.make_splits(0, 120, 80)
    assert {p.meta["level"] for p in train + test} == {1, 2, 3, 4, 5}
    assert all(p.meta["level"] == toy_math.level_of(toy_math.item_of(p)) for p in test)


# ---- scale ---------------------------------------------------------------------------------------


def runs_csv(study, dataset, method, seeds, base, gain):
    rows = []
    for seed in seeds:
        for policy, m, g in (("base", "base", 0.0), (f"base/r1-{method}", method, gain)):
            rows.append({"study": study, "dataset": dataset, "model": "m", "seed": seed, "policy": policy, "method": m,
                         "label": m, "pass@1": base + g / 100, "base_pass@1": base, "gain_pp": g,
                         "gain_pp_boot_low": g - 1, "gain_pp_boot_high": g + 1, "n_pairs": 3.0,
                         "retry_success_rate": 0.5, "trained": True})
    return pd.DataFrame(rows)


def test_scale_points_count_a_shared_run_once():
    a = runs_csv("pi", "math", "tryagain", [1, 2, 3], 0.4, 8.0)
    b = runs_csv("k", "math", "tryagain", [1], 0.4, 8.0)   # the same seed-1 run, in another study
    c = runs_csv("code", "code", "tryagain", [1], 0.9, 0.5)
    points = scale_points([a, b, c], (0.3, 0.6))
    assert len(points) == 2
    math_point = points[points["dataset"] == "math"].iloc[0]
    assert math_point["n_seeds"] == 3 and math_point["ci_method"] == "t" and bool(math_point["in_band"])
    code_point = points[points["dataset"] == "code"].iloc[0]
    assert code_point["ci_method"] == "bootstrap" and not code_point["in_band"]
    band = band_statement(points, (0.3, 0.6))
    assert (band["n_in_band"], band["n_out_band"]) == (1, 1) and band["gain_in_band"] == pytest.approx(8.0)


def test_lr_table_marks_the_best_learning_rate():
    summary = pd.DataFrame({"method": ["lo", "mid", "hi"], "label": ["lo", "mid", "hi"], "gain_pp_mean": [0.0, 2.8, 1.0],
                            "gain_pp_std": [math.nan] * 3, "gain_pp_ci_low": [-1, 1, -1], "gain_pp_ci_high": [1, 4, 3],
                            "ci_method": ["bootstrap"] * 3, "n_seeds": [1] * 3})
    lr = lr_rows(summary, {"lo": {"learning_rate": 5e-7, "lora_r": 64}, "mid": {"learning_rate": 1e-6, "lora_r": 64},
                           "hi": {"learning_rate": 2e-6, "lora_r": 64}})
    assert lr[lr["best"]]["method"].tolist() == ["mid"]
    points = pd.DataFrame({"gain_pp_mean": [1.0], "in_band": [True]})
    numbers = scale_numbers("scale", points, band_statement(points, (0.3, 0.6)), lr)
    assert numbers["scale/best_lr"] == "1e-06" and "inside the band" in numbers["scale/band_statement"]


# ---- domains and overlap -------------------------------------------------------------------------


def code_problem(pid, prompt, tests):
    return Problem(id=pid, domain="code", prompt=prompt, tests=tests, entry_point="f")


def test_overlap_detector_on_an_overlapping_and_a_disjoint_split():
    train = [code_problem("a/0", "Return x plus one.", ["assert f(1) == 2", "assert f(2) == 3"]),
             code_problem("a/1", "Return x times two.", ["assert f(2) == 4"])]
    # the same problems under other ids, with reordered tests and other whitespace: overlap
    same = [code_problem("b/7", "Return  x plus\none.", ["assert f(2) == 3", "assert f(1) == 2"]),
            code_problem("b/8", "Return x minus one.", ["assert f(2) == 1"])]
    over = split_overlap(train, same)
    assert over["n_test_in_train"] == 1 and over["fraction"] == 0.5 and over["examples"] == ["b/7"]
    # the same id with other content is another problem: no overlap
    other = [code_problem("a/0", "Return x plus one.", ["assert f(1) == 3"])]
    assert split_overlap(train, other)["n_test_in_train"] == 0
    assert content_hash(train[0]) == content_hash(same[0]) != content_hash(other[0])
    # the toy splits are disjoint; a dataset loaded twice overlaps whole
    tr, te = toy_math.make_splits(0, 120, 80)
    assert split_overlap(tr, te)["fraction"] == 0.0
    assert split_overlap(te, te)["fraction"] == 1.0


def test_domain_rows_flag_overlap_and_single_seeds():
    summary = pd.DataFrame({"method": ["tryagain", "gold"], "label": ["try again", "gold"], "n_seeds": [1, 1],
                            "base_pass@1_mean": [0.5, 0.5], "gain_pp_mean": [20.0, 1.0], "gain_pp_std": [math.nan] * 2,
                            "gain_pp_ci_low": [10.0, -1.0], "gain_pp_ci_high": [30.0, 3.0],
                            "ci_method": ["bootstrap"] * 2, "n_untrained": [0, 0], "seeds": ["42", "42"]})
    overlap = {"humaneval": {"n_test_in_train": 164, "n_test": 164, "fraction": 1.0}}
    spec = {"dataset": "humaneval", "model": "coder", "domain": "code"}
    rows = domain_rows({"code_retry": summary}, {"code_retry": spec}, overlap, ["tryagain"])
    assert len(rows) == 1
    note = rows.iloc[0]["note"]
    assert "1 seed" in note and "overlap 100%" in note
    assert "overlap 100" in domains_table("domains", "D", rows, BOOT)
    # a run two studies share (same dataset, model, method and seeds) is one row naming both
    rows = domain_rows({"code_retry": summary, "opsd": summary.iloc[:1]}, {"code_retry": spec, "opsd": spec}, overlap)
    assert len(rows) == 2 and sorted(rows["study"]) == ["code_retry", "code_retry, opsd"]


# ---- cost ----------------------------------------------------------------------------------------


def write_benchmark(path, seconds, cpu):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"
                    f"{seconds}\t0:00:01\t1\t1\t1\t1\t0\t0\t0\t{cpu}\n")
    return str(path)


def test_cost_splits_shared_jobs_equally_and_reports_the_saving(tmp_path):
    shared = write_benchmark(tmp_path / "runs/a/base/benchmarks/sample_evaluation.tsv", 3600, 100)
    own_a = write_benchmark(tmp_path / "runs/a/base/r1-x/benchmarks/train_adapter.tsv", 7200, 50)
    own_b = write_benchmark(tmp_path / "runs/a/base/r1-y/benchmarks/train_adapter.tsv", 1800, 30)
    pre = write_benchmark(tmp_path / "benchmarks/pretrain_demo_model/tiny.tsv", 360, 700)
    assert benchmark_rule(shared) == "sample_evaluation" and benchmark_rule(pre) == "pretrain_demo_model"
    timings = {p: read_benchmark(p) for p in (shared, own_a, own_b, pre)}
    jobs = {"a": [shared, own_a, pre], "b": [shared, own_b, pre]}
    gpu = cost_rows(jobs, timings, "gpu").set_index("study")
    assert gpu.loc["a", "compute"] == pytest.approx(0.5 + 2.0)      # half the shared hour, pretraining holds no GPU
    assert gpu.loc["b", "compute"] == pytest.approx(0.5 + 0.5)
    assert gpu.loc["total", "compute"] == pytest.approx(3.5) == gpu.loc["a", "compute"] + gpu.loc["b", "compute"]
    assert gpu.loc["total", "compute_alone"] == pytest.approx(4.5) and gpu.loc["total", "saved_compute"] == pytest.approx(1)
    assert gpu.loc["a", "shared_jobs"] == 2 and gpu.loc["total", "jobs"] == 4
    cpu = cost_rows(jobs, timings, "cpu").set_index("study")
    assert cpu.loc["total", "compute"] == pytest.approx(880) and cpu.loc["a", "compute"] == pytest.approx(50 + 400)
    table = cost_table("cost", "Cost", cost_rows(jobs, timings, "gpu"), "gpu")
    assert "split equally" in table and "GPU-h" in table and "22\\%" in table  # 1 of 4.5 GPU-h saved


# ---- configuration -------------------------------------------------------------------------------


@pytest.fixture
def demo(repo):
    return yaml.safe_load((repo / "config" / "config.yaml").read_text())


def test_derived_studies_validate_and_default_their_sources(demo, repo):
    validate_config(demo)
    assert "amortized" not in run_studies(demo) and "lr_sweep" in run_studies(demo)
    assert derived_sources(demo, "cost") == sorted([*run_studies(demo), *mucode_studies(demo)])
    assert "mucode" in derived_sources(demo, "cost")
    assert derived_sources(demo, "amortized") == ["iterative"]
    paper = yaml.safe_load((repo / "config" / "paper.yaml").read_text())
    validate_config(paper)
    for name in ("amortized", "levels", "scale", "domains", "cost"):
        assert paper["studies"][name].get("enabled", True), name


@pytest.mark.parametrize("mutate, message", [
    (lambda c: c["studies"]["amortized"].update({"from": "pi_content"}), r"is of kind 'conditions'; kind 'amortized'"),
    (lambda c: c["studies"]["amortized"].update({"from": "nosuch"}), r"unknown study 'nosuch'"),
    (lambda c: c["studies"]["amortized"].update(round=9), r"amortized\.round: study 'iterative' has only 2 rounds"),
    (lambda c: c["studies"]["levels"].pop("from"), r"studies\.levels: 'from' is a required property"),
    (lambda c: c["studies"]["scale"].update(band=[0.6, 0.3]), r"scale\.band"),
    (lambda c: c["studies"]["domains"].update(methods=["nosuch"]), r"unknown method 'nosuch'"),
    (lambda c: c["studies"]["pi_content"].update(enabled=False, note="off"), r"study 'pi_content' is switched off"),
    (lambda c: c["studies"]["cost"].pop("device"), r"studies\.cost: 'device' is a required property"),
])
def test_derived_config_errors_name_the_key(demo, mutate, message):
    bad = copy.deepcopy(demo)
    mutate(bad)
    with pytest.raises(ConfigError, match=message):
        validate_config(bad)


def test_scale_labels_name_a_crowded_columns_extremes_only():
    from pidistill.report.figures import _scale_labels

    rows = [{"dataset": "d", "model": "m", "base_pass@1_mean": 0.4, "gain_pp_mean": g, "label": f"c{g}"}
            for g in (1.0, -2.0, 5.0, 0.5)]
    rows.append({"dataset": "d", "model": "strong", "base_pass@1_mean": 0.8, "gain_pp_mean": 0.3, "label": "only"})
    labels = sorted(t for _, _, t in _scale_labels(rows))
    assert labels == ["c-2.0 (lowest of 4)", "c5.0 (highest of 4)", "only"]
