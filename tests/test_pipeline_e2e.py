"""The real Snakemake DAG on a small config: outputs' contents, rerun scope, byte-identical rebuild.

These tests run the workflow in a copy of the repository (so editing code there does not touch
the checkout) with tests/configs/e2e.yaml merged over the demo config. The DAG is built once; every
test that edits something does so in its own copy of that build, so the tests do not depend on
their order.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml
from workdir import HAVE_LATEX, SNAKEMAKE, assert_same_data, job_counts, make_workdir, offline_env

pytestmark = pytest.mark.e2e

GOAL = "all" if HAVE_LATEX else "paper_inputs"
LOCAL_DATA = "results/data/mini_humaneval/train.jsonl"  # a local raw file's dataset, in no study
TARGETS = (GOAL, LOCAL_DATA)


def snakemake(workdir: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    cmd = [str(SNAKEMAKE), *args, "--cores", "2", "--configfile", "tests/configs/e2e.yaml"]
    proc = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, env=offline_env())
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-8000:]}")
    return proc


def planned_jobs(workdir: Path, *targets: str) -> dict[str, int]:
    """Rule -> job count that a dry run for ``targets`` would execute."""
    proc = snakemake(workdir, *(targets or TARGETS), "-n")
    return job_counts(proc.stdout + proc.stderr)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    workdir = make_workdir(tmp_path_factory.mktemp("e2e"))
    snakemake(workdir, *TARGETS)
    return workdir


@pytest.fixture
def edited(built, tmp_path):
    """A copy of the finished build (results, Snakemake's metadata and mtimes included) to edit."""
    copy = tmp_path / "copy"
    shutil.copytree(built, copy, symlinks=True)
    return copy


def test_outputs_have_sensible_contents(built):
    results = built / "results"
    runs = pd.read_csv(results / "studies" / "pi_content" / "runs.csv")
    # base + 2 conditions for each of 2 seeds
    assert len(runs) == 6 and set(runs["seed"]) == {1, 2}
    assert set(runs["method"]) == {"base", "gold", "tryagain"}
    for col in ("pass@1", "pass@4", "base_pass@1"):
        assert runs[col].between(0, 1).all()
    assert (runs["pass@4"] >= runs["pass@1"] - 1e-12).all()
    trained = runs[runs["method"] != "base"]
    assert trained["n_first_attempts"].eq(2 * 40).all()  # n=2 first attempts on 40 training problems
    assert (trained["n_retries"] == (trained["n_first_attempts"] - trained["n_first_correct"])).all()  # K=1
    assert (trained["n_pairs"] <= trained["n_retries_correct"]).all()
    assert runs.loc[runs["method"] == "base", "gain_pp"].eq(0).all()

    summary = pd.read_csv(results / "studies" / "pi_content" / "summary.csv")
    assert list(summary["method"]) == ["gold", "tryagain"] and summary["n_seeds"].eq(2).all()

    rounds = pd.read_csv(results / "studies" / "iterative" / "summary.csv")
    assert list(rounds["round"]) == [0, 1, 2]
    assert rounds["retry_success_rate"].iloc[1:].between(0, 1).all()

    ev = json.loads((results / "runs/toy_math/tiny/seed1/base/evaluation.json").read_text())
    assert ev["n_problems"] == 24 and ev["n_samples"] == 4 and len(ev["per_problem"]) == 24

    table = (results / "tables" / "pi_content.tex").read_text()
    assert "\\begin{tabular}" in table and "gold answer" in table and "try again" in table
    numbers = (results / "paper" / "numbers.tex").read_text()
    assert "pdresult@pi_content/gold/gain" in numbers and "pdresult@iterative/r1/acc" in numbers
    for fig in ("pi_content_gains.png", "code_retry_training.png", "iterative_rounds.png"):
        assert (results / "figures" / fig).stat().st_size > 5000
    if HAVE_LATEX:
        assert (results / "paper" / "pidistill.pdf").read_bytes()[:4] == b"%PDF"
    assert len((built / LOCAL_DATA).read_text().splitlines()) == 3


def test_the_formal_study_is_checked_by_coq_and_has_its_hierarchy(built):
    results = built / "results"
    base = results / "runs/toy_formal/tiny_prover/seed1/base"
    first = [json.loads(line) for line in (base / "first_attempts.verdicts.jsonl").read_text().splitlines()]
    assert len(first) == 60  # 30 theorems, 2 attempts each
    assert all(v["checker"] == "coq" for v in first if v["reason"] not in ("unsound", "statement_changed", "no_proof"))
    failed = [(v["id"], v["attempt"]) for v in first if not v["passed"]]
    (diagnoses,) = (base / "diagnoses").glob("*/diagnoses.jsonl")
    rows = [json.loads(line) for line in diagnoses.read_text().splitlines()]
    assert [(r["id"], r["attempt"]) for r in rows] == sorted(failed)  # one per failed first attempt
    assert all("The checker says:" in r["diagnosis_prompt"] for r in rows)
    hierarchy = pd.read_csv(results / "studies/lean_hierarchy/summary.csv")
    assert sorted(hierarchy["method"]) == ["lean_diagnosis", "lean_heuristic@r1", "lean_heuristic@r2",
                                           "lean_skeleton_retry", "tryagain"]
    assert list(hierarchy["gain_pp_mean"]) == sorted(hierarchy["gain_pp_mean"], reverse=True)
    assert "\\label{tab:lean_hierarchy}" in (results / "tables/lean_hierarchy.tex").read_text()
    assert "sec:lean_hierarchy" in (results / "paper/studies.tex").read_text()


def test_the_mucode_study_runs_its_iterations_and_reports_every_table(built):
    results = built / "results"
    run = results / "mucode/mucode/toy_code/tiny/seed42"
    for it in (0, 1):
        rows = [json.loads(line) for line in (run / f"iter{it}/rollouts.jsonl").read_text().splitlines()]
        assert {r["iteration"] for r in rows} == {it} and len({r["id"] for r in rows}) == 30  # every train problem
        episodes = {}
        for r in rows:
            episodes.setdefault((r["id"], r["rollout"]), []).append(r)
        assert len(episodes) == 60  # 2 rollouts each
        for turns in episodes.values():  # up to 2 turns, stopping at the first correct one
            assert [t["turn"] for t in turns] == list(range(len(turns))) and len(turns) <= 2
            assert not any(t["correct"] for t in turns[:-1])
            assert len(turns) == 2 or turns[-1]["correct"]
    assert read_json_file(run / "iter1/verifier/training.json")["settings"]["loss"] == "bt"
    for method in ("mucode", "rft_lv"):  # each generator from the base, on its iteration's data
        summary = read_json_file(run / f"iter2/generator/{method}/training.json")
        assert summary["parent_adapters"] == [] and summary["n_pairs"] == len(
            (run / f"iter1/data/{method}.jsonl").read_text().splitlines())
    last = read_json_file(run / "iter2/eval/mucode/toy_code.json")
    assert last["verifier"] == "iter1" and set(last["bon_by_verifier"]) == {"iter1", "iter0"}
    assert len(last["bon"]["public_verifier"]) == 3 and len(last["pass"]) == 3 and len(last["hidden"]) == 2
    assert "hidden" not in read_json_file(run / "iter1/eval/mucode/toy_code.json")
    csv = pd.read_csv(results / "studies/mucode/mucode.csv")
    assert set(csv["metric"]) == {"pass", "bon", "verifier", "hidden"} and csv["rate"].between(0, 1).all()
    table = (results / "tables/mucode.tex").read_text()
    for label in ("tab:mucode}", "tab:mucode_selectors}", "tab:mucode_verifier}", "tab:mucode_hidden}"):
        assert label in table
    assert "sec:mucode" in (results / "paper/studies.tex").read_text()
    assert "pdresult@mucode/mucode_bon" in (results / "paper/numbers.tex").read_text()
    assert (results / "figures/mucode_turns.png").stat().st_size > 5000


def read_json_file(path: Path) -> dict:
    return json.loads(path.read_text())


def test_derived_studies_have_their_tables_and_figures(built):
    results = built / "results"
    for name in ("amortized", "levels", "scale", "domains"):
        table = (results / "tables" / f"{name}.tex").read_text()
        assert "\\begin{tabular}" in table and "95\\% CI" in table, name
        assert json.loads((results / "studies" / name / "numbers.json").read_text()), name
    assert (results / "figures" / "scale_scale.png").stat().st_size > 5000
    amortized = pd.read_csv(results / "studies/amortized/summary.csv")
    assert list(amortized["round"]) == [2] and (amortized["N"] == 4).all()  # the last round, pass@4
    assert ((amortized["base_pass@N"] >= amortized["base_pass@1"])).all()
    levels = pd.read_csv(results / "studies/levels/summary.csv")
    assert set(levels["method"]) == {"gold", "tryagain"} and levels["level"].between(1, 5).all()
    assert levels.groupby("method")["n_problems"].sum().eq(24).all()  # every toy_math test problem has a level
    points = pd.read_csv(results / "studies/scale/points.csv")
    # tryagain on toy_math seed 1 is in pi_content and lr_sweep: one point, pooled over pi_content's 2 seeds
    assert len(points) == len(points.drop_duplicates(["dataset", "model", "method"]))
    # the formal study's conditions are points too (the documents' table puts Lean on the curve)
    assert set(points["dataset"]) == {"toy_math", "toy_code", "mini_math500", "toy_formal"}
    lr = pd.read_csv(results / "studies/scale/learning_rates.csv")
    assert list(lr["learning_rate"]) == [0.001, 0.003] and lr["best"].sum() == 1
    # the overlap detector: mini_math500 trains on 8 of its 12 test problems, the toy splits are disjoint
    overlap = json.loads((results / "data/mini_math500/overlap.json").read_text())
    assert (overlap["n_test_in_train"], overlap["n_test"]) == (8, 12)
    assert json.loads((results / "data/toy_math/overlap.json").read_text())["n_test_in_train"] == 0
    assert "Train/test overlap:} 8 of the 12" in (results / "tables/file_math.tex").read_text()
    assert "No test problem appears" in (results / "tables/pi_content.tex").read_text()
    domains = pd.read_csv(results / "studies/domains/summary.csv")
    assert set(domains["study"]) == {"pi_content", "code_retry", "file_math"}
    assert "overlap 67%" in domains.set_index("study").loc["file_math", "note"]
    # single-seed gains carry a paired bootstrap CI, multi-seed ones a t-interval
    summary = pd.read_csv(results / "studies/code_retry/summary.csv")
    assert (summary["ci_method"] == "bootstrap").all() and summary["gain_pp_ci_low"].notna().all()
    assert (summary["gain_pp_ci_low"] <= summary["gain_pp_mean"]).all()
    assert (pd.read_csv(results / "studies/pi_content/summary.csv")["ci_method"] == "t").all()
    assert "$^{b}$" in (results / "tables/code_retry.tex").read_text()
    # cost: measured, so kept with the benchmark files; every job once in the total
    cost = pd.read_csv(results / "benchmarks/cost/cost.csv").set_index("study")
    assert cost.loc["total", "compute"] == pytest.approx(cost.drop("total")["compute"].sum())
    assert cost.loc["total", "saved_compute"] > 0  # the shared base evaluations, first attempts, pretraining
    assert "split equally" in (results / "benchmarks/cost/table.tex").read_text()
    sections = (results / "paper" / "studies.tex").read_text()
    assert "\\section{Tracing a number to the raw data}" in sections and "pidistill trace file\\_math/" in sections


def test_lineage_paths_and_sharing(built):
    runs = built / "results" / "runs" / "toy_math" / "tiny" / "seed1"
    # one base evaluation and one set of base first attempts, shared by pi_content and iterative
    assert (runs / "base" / "first_attempts.jsonl").exists()
    assert (runs / "base" / "r1-tryagain" / "r2-tryagain" / "evaluation.json").exists()
    assert (runs / "base" / "r1-tryagain" / "first_attempts.jsonl").exists()  # round 2 samples from round 1's policy
    for child in ("r1-gold", "r1-tryagain"):
        assert (runs / "base" / child / "adapter" / "training.json").exists()


def test_method_catalogue(built):
    """One method per source kind and trainer: sources are shared jobs, the filters and trainers did
    what the methods say, and the method table and the K curve are made from the runs."""
    results = built / "results"
    base = results / "runs" / "toy_math" / "tiny" / "seed1" / "base"
    sources = sorted(p.name for p in (base / "sources").iterdir())
    # try again (and the LR sweep, k_retries' K=1), gold, K=2, the hint, the stronger model's retries,
    # double-sample and frontier-rejection (one job), compute-matched
    assert sources == sorted(["retry-none-k1", "retry-gold-k1", "retry-none-k2",
                              next(s for s in sources if s.startswith("retry-hint-k1-hint-tiny_strong-")),
                              "retry-none-k1-by-tiny_strong", "samples-n4", "resample-x2"])
    stats = {m: json.loads((base / f"r1-{m}" / "round_stats.json").read_text())
             for m in ("tryagain", "double_sample", "frontier_rejection", "rejection_sft", "compute_matched", "iprs")}
    first = [json.loads(line) for line in (base / "first_attempts.verdicts.jsonl").read_text().splitlines()]
    samples = [json.loads(line) for line in (base / "sources/samples-n4/samples.verdicts.jsonl").read_text().splitlines()]
    assert len(samples) == 4 * 40 and all(r["tokens"] > 0 for r in samples if r["completion"])
    failed = {r["id"] for r in first if not r["passed"]}
    # frontier-rejection keeps the double-sample's passing samples of problems with a failed first attempt
    assert stats["double_sample"]["n_kept"] == sum(r["passed"] for r in samples)
    assert stats["frontier_rejection"]["n_kept"] == sum(r["passed"] and r["id"] in failed for r in samples)
    assert stats["rejection_sft"]["n_kept"] == sum(r["passed"] for r in first) and stats["rejection_sft"]["tokens_source"] == 0
    assert stats["compute_matched"]["n_retries"] == 2 * len([r for r in first if not r["passed"]])
    assert stats["tryagain"]["tokens_first_attempts"] == sum(r["tokens"] for r in first) > 0
    assert stats["iprs"]["n_pairs"] == 0 and stats["iprs"]["trainer"] == "grpo"
    grpo = json.loads((base / "r1-iprs" / "adapter" / "training.json").read_text())
    assert grpo["trained"] and grpo["n_prompts"] == len(failed)
    # OPSD's frontier: the problems failed first-try whose try-again retry passed (the shared retry job),
    # each with the gold answer as the teacher's PI; an adapter trained by SDFT
    retries = [json.loads(line) for line in (base / "sources/retry-none-k1/samples.verdicts.jsonl").read_text().splitlines()]
    prompts = [json.loads(line) for line in (base / "r1-opsd_frontier" / "opsd_prompts.jsonl").read_text().splitlines()]
    assert [p["id"] for p in prompts] == sorted({r["id"] for r in retries if r["passed"] and r["id"] in failed})
    assert all(p["privileged_context"].startswith("The correct answer is: ") for p in prompts)
    opsd = json.loads((base / "r1-opsd_frontier" / "adapter" / "training.json").read_text())
    assert opsd["trained"] and opsd["n_prompts"] == len(prompts) and opsd["settings"]["teacher_model_kind"] == "base"
    opsd_rows = pd.read_csv(results / "studies" / "opsd" / "summary.csv")
    assert {"opsd_frontier", "tryagain"} <= set(opsd_rows["method"])
    assert (base / "r1-full_ft" / "adapter" / "model.safetensors").exists()
    assert not (base / "r1-full_ft" / "adapter" / "adapter_config.json").exists()
    # another model retried: the log names it, and the student's adapters were not loaded
    log = (base / "sources/retry-none-k1-by-tiny_strong/logs/sample_retries.log").read_text()
    assert "by results/models/tiny_strong" in log
    # the wrong-answer / shuffled-tests donors: an assignment, never the problem itself
    donors = json.loads((results / "data/toy_code/pi_donors/other_tests-seed1.json").read_text())
    assert donors["donors"] and all(r != d for r, d in donors["donors"].items())
    assert sorted(donors["donors"].values()) == sorted(donors["donors"])  # a permutation
    assert "derangement_collisions" in donors
    table = pd.read_csv(results / "studies" / "controls" / "methods.csv")
    controls = set(table[table["study"].str.contains("controls")]["method"])
    assert {"rejection_sft", "double_sample", "frontier_rejection", "compute_matched", "cross_hint", "cross_retry",
            "iprs", "full_ft", "opsd_frontier"} <= controls
    assert len(table) == len(table.drop_duplicates(["dataset", "model", "method", "seeds"]))  # shared runs once
    assert table["note"].str.contains("single seed").any()
    assert "Compute-matched (2x)" in (results / "paper" / "studies.tex").read_text()
    assert (results / "figures" / "k_retries_curve.png").stat().st_size > 5000


def test_rule_logs_name_the_host_and_the_interpreter(built):
    for log in (built / "results").rglob("*.log"):
        if log.parent.name == "logs" or "logs" in log.parts:
            text = log.read_text()
            if "build_paper" in log.name:
                continue  # latexmk's own log
            assert "running on host" in text and "python " in text, log


def test_outputs_honour_the_umask(built):
    """Data files are as readable as any other file the user creates (not mkstemp's 0600)."""
    umask = os.umask(0o022)
    os.umask(umask)
    modes = {p.relative_to(built): stat.S_IMODE(p.stat().st_mode)
             for p in (built / "results").rglob("*") if p.is_file()}
    assert modes and {p: m for p, m in modes.items() if m != 0o666 & ~umask} == {}


def test_second_run_has_nothing_to_do(built):
    assert planned_jobs(built) == {}


# ---- what an edit replans: exactly the jobs that run the edited code or read the edited value -------

# the e2e DAG: toy_math seeds 1 and 2 (pi_content: gold, tryagain; iterative: 2 rounds of tryagain on
# seed 1, round 1 shared; lr_sweep: tryagain (shared) and tryagain_lr3e3; k_retries: tryagain and K=2;
# controls on seed 1: rejection-sampling SFT, double-sample and frontier-rejection (one shared samples
# job), compute-matched, cross-model hint (hints by tiny_strong) and retry (by tiny_strong), IPRS (GRPO),
# full fine-tune, OPSD's frontier on try again's retries), toy_code seed 1 (code_retry: tryagain, tests, other_tests (the donors' assignment);
# controls_graded: tryagain, graded), mini_math500 seed 1 (file_math: tryagain), and the derived studies:
# amortized (from iterative), levels (pi_content), scale (figure over the conditions studies, LR table of
# lr_sweep), domains (tryagain of pi_content, code_retry, file_math), opsd (the OPSD rows and try again of
# pi_content, code_retry, controls), cost (benchmarks of every run study) and the method table (controls:
# every run study's methods)
REPORT_TAIL = {"write_paper_sections": 1, **({"build_paper": 1, "all": 1} if HAVE_LATEX else {})}
SCALE = {"plot_scale": 1, "tabulate_scale": 1}
DOMAINS = {"tabulate_domains": 2}  # the domains table and the opsd study's (OPSD rows beside try again)
DERIVED = {"tabulate_amortized": 1, "tabulate_levels": 1, **SCALE, **DOMAINS, "tabulate_cost": 1,
           "tabulate_methods": 1}
# µCode on toy_code (2 iterations of mucode and rft_lv): everything after its rollouts
MUCODE = {"sample_rollouts": 2, "train_verifier": 2, "relabel_trajectories": 4, "train_generator": 4,
          "evaluate_mucode": 5, "tabulate_mucode": 1, "plot_mucode_turns": 1}
EVERYTHING_OF_THE_TOY_DATASETS = {  # not the demo models, not file_math (its dataset is a local file)
    "prepare_dataset": 2, "detect_overlap": 2, "sample_first_attempts": 4, "verify_samples": 40, "sample_retries": 11,
    "sample_extra_attempts": 2, "sample_hints": 1, "assign_pi_donors": 1, "build_sft_pairs": 20, "train_adapter": 20,
    "build_opsd_prompts": 1, "sample_evaluation": 23, "evaluate_policy": 23, "aggregate_study": 7, "plot_condition_study": 6,
    "plot_round_study": 1, "plot_gain_curve": 1, "tabulate_study": 6, **DERIVED, **MUCODE, **REPORT_TAIL,
}
CODE_VERIFICATION_AND_AFTER = {  # and µCode: its rollouts and evaluations run the code verifier  # the 9 code verifications (first attempts, 3 retry sources, 5 evaluations)
    "verify_samples": 9, "assign_pi_donors": 1, "sample_retries": 3, "build_sft_pairs": 4, "train_adapter": 4,
    "sample_evaluation": 4, "evaluate_policy": 5, "aggregate_study": 2, "plot_condition_study": 2, "tabulate_study": 2,
    **SCALE, **DOMAINS, "tabulate_cost": 1, "tabulate_methods": 1, **MUCODE, **REPORT_TAIL,
}
MATH_VERIFICATION_AND_AFTER = {  # toy_math: 3 first attempts, 10 sources, 18 evaluations; mini_math500: 1, 1, 2
    "verify_samples": 35, "sample_retries": 9, "sample_extra_attempts": 1, "build_sft_pairs": 17, "train_adapter": 17,
    "build_opsd_prompts": 1, "sample_evaluation": 17, "evaluate_policy": 20, "aggregate_study": 6, "plot_condition_study": 5,
    "plot_round_study": 1, "plot_gain_curve": 1, "tabulate_study": 5, "sample_first_attempts": 1, **DERIVED,
    **REPORT_TAIL,
}
# pidistill/domains/math_benchmarks.py (the math500 loader's module) imports the math verifier (last_boxed,
# for MATH training answers), so editing the verifier's code also prepares mini_math500 again, and so
# reruns its base policy's first attempts and evaluation too
MATH_VERIFIER_CODE_AND_AFTER = {
    **MATH_VERIFICATION_AND_AFTER, "prepare_dataset": 1, "detect_overlap": 1, "sample_first_attempts": 2,
    "sample_evaluation": 18,
}
MATH_EVALUATION_AND_AFTER = {  # the 18 toy_math evaluations and the 5 toy-math studies' reports
    "sample_evaluation": 18, "verify_samples": 18, "evaluate_policy": 18, "aggregate_study": 5,
    "plot_condition_study": 4, "plot_round_study": 1, "plot_gain_curve": 1, "tabulate_study": 4, **DERIVED,
    **REPORT_TAIL,
}
ONE_STUDY_REPORT = {  # pi_content's report, and the derived tables that show its methods' labels
    "aggregate_study": 1, "plot_condition_study": 1, "tabulate_study": 1, "tabulate_levels": 1, **SCALE,
    **DOMAINS, "tabulate_methods": 1, **REPORT_TAIL,
}
EVERY_STUDY_REPORT_BUT_COST = {  # what reads the bootstrap: every study's statistics, not the cost table
    "aggregate_study": 10, "plot_condition_study": 8, "plot_round_study": 2, "plot_gain_curve": 1,
    "tabulate_study": 9, "tabulate_amortized": 1, "tabulate_levels": 1, **SCALE, **DOMAINS,
    "tabulate_methods": 1, "tabulate_hierarchy": 1, **REPORT_TAIL,
}
EVERY_TABLE = {"tabulate_study": 9, "tabulate_amortized": 1, "tabulate_levels": 1, "tabulate_scale": 1,
               **DOMAINS, "tabulate_cost": 1, "tabulate_methods": 1, "tabulate_hierarchy": 1, "tabulate_mucode": 1,
               "plot_mucode_turns": 1, **REPORT_TAIL}


def append(path: Path, text: str = "\n# edited\n") -> None:
    path.write_text(path.read_text() + text)


def set_config(workdir: Path, keys: str, value) -> None:
    path = workdir / "tests" / "configs" / "e2e.yaml"
    cfg = yaml.safe_load(path.read_text())
    node = cfg
    *parents, last = keys.split(".")
    for key in parents:
        node = node.setdefault(key, {})
    node[last] = value
    path.write_text(yaml.safe_dump(cfg))


EDITS = {
    # code: a rule reruns when code its job runs changes, and no other
    "vllm backend": (lambda w: append(w / "pidistill/generation/vllm_backend.py"), {}),
    "loader of the toy datasets": (lambda w: append(w / "pidistill/domains/toy.py"), EVERYTHING_OF_THE_TOY_DATASETS),
    "HumanEval loader": (lambda w: append(w / "pidistill/domains/code_benchmarks.py"), {"prepare_dataset": 1}),
    "code judge (run by the sandbox by name)": (lambda w: append(w / "pidistill/verifiers/code_runner.py"),
                                                CODE_VERIFICATION_AND_AFTER),
    "code wire format": (lambda w: append(w / "pidistill/verifiers/code_wire.py"), CODE_VERIFICATION_AND_AFTER),
    "math verifier": (lambda w: append(w / "pidistill/verifiers/math_equiv.py"), MATH_VERIFIER_CODE_AND_AFTER),
    "report tables": (lambda w: append(w / "pidistill/report/tables.py"), EVERY_TABLE),
    # inputs
    "local raw source file": (lambda w: append(w / "tests/data/humaneval_format.jsonl", "\n"), {"prepare_dataset": 1}),
    # config: only the jobs that read the value
    "evaluation sampling of one dataset": (lambda w: set_config(w, "datasets.toy_math.evaluation.max_new_tokens", 11),
                                           MATH_EVALUATION_AND_AFTER),
    "one method's label": (lambda w: set_config(w, "methods.gold.label", "the gold"), ONE_STUDY_REPORT),
    "a math-only verifier option": (lambda w: set_config(w, "verifier.answer_fallback", True),
                                    MATH_VERIFICATION_AND_AFTER),
    "one study's params": (lambda w: set_config(w, "studies.iterative.stop_below", 0.5),
                           {"aggregate_study": 1, "plot_round_study": 1, "tabulate_study": 1, "tabulate_methods": 1,
                            **REPORT_TAIL}),
    "the bootstrap seed": (lambda w: set_config(w, "bootstrap.seed", 1), EVERY_STUDY_REPORT_BUT_COST),
}


@pytest.mark.parametrize("edit", sorted(EDITS))
def test_an_edit_replans_exactly_its_dependents(edited, edit):
    apply, expected = EDITS[edit]
    apply(edited)
    assert planned_jobs(edited) == expected


def test_a_rebuild_after_an_edit_is_complete_and_then_idle(edited):
    """Editing the table code reruns what the plan said (the tables, the paper), and afterwards
    nothing is left to do. (An edit that reruns generation and training: the byte-identical rebuild.)"""
    append(edited / "pidistill/report/tables.py")
    before = planned_jobs(edited)
    assert before and not {"train_adapter", "sample_evaluation", "verify_samples"} & set(before)
    snakemake(edited, *TARGETS)
    assert planned_jobs(edited) == {}


def test_runs_from_another_working_directory(built, tmp_path):
    """`snakemake -s <checkout>/Snakefile --directory <elsewhere>`: code and paper inputs resolve."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    cmd = [str(SNAKEMAKE), "-s", str(built / "Snakefile"), "--directory", str(elsewhere), "--cores", "1"]
    # a raw data file is named relative to the working directory: elsewhere, give it absolutely
    raw = tmp_path / "raw.yaml"
    raw.write_text(f"datasets:\n  mini_math500:\n    source: {built / 'tests/data/math500_format.jsonl'}\n")
    config = ["--configfile", str(built / "tests/configs/e2e.yaml"), str(raw)]
    dry = subprocess.run([*cmd, GOAL, "-n", *config], capture_output=True, text=True, env=offline_env())
    assert dry.returncode == 0, dry.stderr[-3000:]
    # toy_math, toy_code, toy_formal, mini_math500
    assert job_counts(dry.stdout + dry.stderr)["prepare_dataset"] == 4
    run = subprocess.run([*cmd, "results/data/toy_code/train.jsonl", *config], capture_output=True, text=True,
                         env=offline_env())
    assert run.returncode == 0, run.stderr[-3000:]
    assert (elsewhere / "results/data/toy_code/train.jsonl").read_bytes() == \
        (built / "results/data/toy_code/train.jsonl").read_bytes()


def test_report_lists_every_figure_and_table_with_its_provenance(edited):
    """`snakemake --report report.zip`: a browsable report of the registered outputs."""
    import zipfile

    snakemake(edited, *TARGETS, "--report", "report.zip")
    with zipfile.ZipFile(edited / "report.zip") as zf:
        names = zf.namelist()
        html = next(zf.read(n).decode() for n in names if n.endswith("report.html"))
    files = [n.rsplit("/", 1)[-1] for n in names]  # the report stores each file by its name
    for expected in ("pi_content_gains.png", "pi_content_training.png", "code_retry_gains.png", "code_retry_training.png",
                     "iterative_rounds.png", "pi_content.tex", "code_retry.tex", "iterative.tex", "scale_scale.png",
                     "amortized.tex", "levels.tex", "scale.tex", "domains.tex", "table.tex", "cost.csv", "points.csv",
                     "learning_rates.csv", "controls.tex", "methods.csv", "k_retries_curve.png", "mucode.tex",
                     "mucode_turns.png",
                     *(["pidistill.pdf"] if HAVE_LATEX else [])):
        assert expected in files, expected
    # one runs.csv per run study (10); a summary.csv per run study and per derived amortized, levels, domains,
    # opsd, lean_hierarchy
    assert files.count("runs.csv") == 10 and files.count("summary.csv") == 10 + 5
    for rule in ("plot_condition_study", "aggregate_study", "tabulate_study", "tabulate_amortized", "plot_scale",
                 "tabulate_cost", "tabulate_methods", "plot_gain_curve", "tabulate_hierarchy", "sample_diagnoses", "tabulate_mucode", "sample_rollouts"):
        assert rule in html


def trace(workdir: Path, key: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "pidistill.cli", "trace", key, "--configfile", "tests/configs/e2e.yaml"]
    return subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, env=offline_env())


def test_trace_follows_a_quoted_number_to_the_raw_file_and_the_model(built):
    key = "file_math/tryagain/gain"
    proc = trace(built, key)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    value = json.loads((built / "results/studies/file_math/numbers.json").read_text())[key]
    assert out.startswith(f"{key} = {value}\n  read from results/studies/file_math/numbers.json")
    raw = hashlib.sha256((built / "tests/data/math500_format.jsonl").read_bytes()).hexdigest()
    assert f"file tests/data/math500_format.jsonl sha256 {raw}" in out  # a root of the chain
    assert f"raw file tests/data/math500_format.jsonl sha256 {raw}" in out  # and what the dataset record says
    model = json.loads((built / "results/models/tiny.provenance.json").read_text())
    assert f"model record results/models/tiny.provenance.json: pretrain model results/models/tiny, files sha256 " \
           f"{model['sha256']} (matches the files)" in out
    for rule in ("tabulate_study", "aggregate_study", "evaluate_policy", "verify_samples", "sample_evaluation",
                 "train_adapter", "build_sft_pairs", "sample_retries", "sample_first_attempts", "prepare_dataset",
                 "resolve_model", "pretrain_demo_model"):
        assert f"] rule {rule}: up to date" in out, rule
    assert "code scripts/prepare_dataset.py sha256 " in out and "Every link is up to date" in out
    # a CSV cell, and only the runs of its method are followed
    proc = trace(built, "studies/pi_content/summary.csv:gold:gain_pp_mean")
    assert proc.returncode == 0, proc.stderr[-3000:]
    cell = pd.read_csv(built / "results/studies/pi_content/summary.csv").set_index("method").loc["gold", "gain_pp_mean"]
    assert float(proc.stdout.split(" = ", 1)[1].split("\n", 1)[0]) == pytest.approx(cell)
    assert "output results/runs/toy_math/tiny/seed2/base/r1-gold/adapter" in proc.stdout
    assert "output results/runs/toy_math/tiny/seed2/base/r1-tryagain/adapter" not in proc.stdout
    bad = trace(built, "pi_content/gold/gian")
    assert bad.returncode == 2 and "did you mean pi_content/gold/gain" in bad.stderr


def test_trace_reports_a_stale_link_after_an_input_changes(edited):
    append(edited / "tests/data/math500_format.jsonl", "\n")
    proc = trace(edited, "file_math/tryagain/gain")
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert "] rule prepare_dataset: STALE (snakemake status 'updated input files', plan 'update pending'; " \
           "input changed since the job ran: tests/data/math500_format.jsonl)" in proc.stdout
    assert "input tests/data/math500_format.jsonl sha256 " in proc.stdout and ", CHANGED)" in proc.stdout
    assert "NOT up to date" in proc.stdout
    # downstream: Snakemake plans to rerun it after its stale ancestor
    assert "] rule tabulate_study: STALE (snakemake status 'ok', plan 'update pending')" in proc.stdout


# What the rebuild remakes from scratch: the studies whose runs use every kind of job (every source
# kind, hints and another model's retries, every trainer, the donors' assignment, the three domains:
# the formal one's verdicts come from Coq, diagnoses and skeletons included) and a table. Rebuilding
# the whole e2e DAG a second time would take most of the test suite's time budget.
REBUILD = ("results/studies/controls/summary.csv", "results/studies/code_retry/summary.csv",
           "results/studies/lean/summary.csv", "results/tables/code_retry.tex")


def ran_in_the_warm_worker(workdir: Path) -> list[Path]:
    """The job logs that say the job ran in the warm worker (pidistill/worker.py)."""
    return [log for log in (workdir / "results").rglob("*.log") if "ran in the warm worker" in log.read_text()]


def test_local_jobs_ran_in_the_warm_worker(built):
    """The first build is a local run: every kind of job after the first ones (which start while the
    server imports) ran in a fork of the warm worker, and the server is gone after the run."""
    logs = ran_in_the_warm_worker(built)
    assert len(logs) >= 100
    kinds = {log.stem for log in logs}
    assert {"sample_evaluation", "train_adapter", "verify_eval_samples", "evaluate_policy"} <= kinds
    server_log = (built / ".snakemake" / "pidistill-warm-worker.log").read_text()
    socket_path = Path(server_log.split("listening on ")[1].split()[0])
    assert not socket_path.parent.exists()  # onsuccess stopped the server and removed its directory


def test_rebuild_is_byte_identical(built, tmp_path):
    """Every data file (samples, verdicts, pairs, adapters, CSVs, tables; not logs or benchmarks) a
    fresh build of those studies makes is byte-identical to the first build's. The demo models come
    from the first build (newer than the code, so nothing reruns them): that their pretraining gives
    the same bytes twice is the Slurm test's comparison of a cluster and a local run; every job after
    them runs again here. The first build ran its jobs in the warm worker, this one (warm_worker:
    false) each in a process of its own: the bytes are the same."""
    fresh = make_workdir(tmp_path / "again")
    shutil.copytree(built / "results" / "models", fresh / "results" / "models")
    for path in (fresh / "results" / "models").rglob("*"):
        os.utime(path)
    plan = planned_jobs(fresh, *REBUILD)
    assert "pretrain_demo_model" not in plan and plan["train_adapter"] >= 10
    snakemake(fresh, *REBUILD, "--config", "warm_worker=False")  # every job in a process of its own
    assert not ran_in_the_warm_worker(fresh)
    assert assert_same_data(fresh, built) >= 100
