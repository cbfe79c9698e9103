"""The real Snakemake DAG on a small config: outputs' contents, rerun scope, byte-identical rebuild.

These tests run the workflow in a copy of the repository (so editing code there does not touch
the checkout) with tests/configs/e2e.yaml merged over the demo config.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pandas as pd
import pytest
from workdir import HAVE_LATEX, SNAKEMAKE, assert_same_data, job_counts, make_workdir, offline_env

pytestmark = pytest.mark.e2e


def snakemake(workdir: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    cmd = [str(SNAKEMAKE), *args, "--cores", "2", "--configfile", "tests/configs/e2e.yaml"]
    proc = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, env=offline_env())
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-8000:]}")
    return proc


def target(workdir: Path) -> str:
    return "all" if HAVE_LATEX else "paper_inputs"


def planned_jobs(workdir: Path, goal: str, *extra: str) -> dict[str, int]:
    """Rule -> job count that a dry run for ``goal`` would execute."""
    proc = snakemake(workdir, goal, "-n", *extra)
    return job_counts(proc.stdout + proc.stderr)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    workdir = make_workdir(tmp_path_factory.mktemp("e2e"))
    snakemake(workdir, target(workdir))
    return workdir


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


def test_lineage_paths_and_sharing(built):
    runs = built / "results" / "runs" / "toy_math" / "tiny" / "seed1"
    # one base evaluation and one set of base first attempts, shared by pi_content and iterative
    assert (runs / "base" / "first_attempts.jsonl").exists()
    assert (runs / "base" / "r1-tryagain" / "r2-tryagain" / "evaluation.json").exists()
    assert (runs / "base" / "r1-tryagain" / "first_attempts.jsonl").exists()  # round 2 samples from round 1's policy
    for child in ("r1-gold", "r1-tryagain"):
        assert (runs / "base" / child / "adapter" / "training.json").exists()


def test_second_run_has_nothing_to_do(built):
    assert planned_jobs(built, target(built)) == {}


def test_code_change_reruns_only_dependents(built):
    module = built / "pidistill" / "report" / "tables.py"
    module.write_text(module.read_text() + "\n# edited\n")
    jobs = planned_jobs(built, target(built))
    assert jobs.get("tabulate_study") == 3
    assert not set(jobs) & {"pretrain_demo_model", "sample_first_attempts", "sample_retries", "train_adapter",
                           "sample_evaluation", "verify_samples", "evaluate_policy", "aggregate_study",
                           "plot_condition_study", "plot_round_study"}


def test_params_change_reruns_only_that_study(built):
    import yaml

    cfg_path = built / "tests" / "configs" / "e2e.yaml"
    cfg = yaml.safe_load(cfg_path.read_text())
    cfg["studies"]["iterative"]["stop_below"] = 0.5
    cfg_path.write_text(yaml.safe_dump(cfg))
    jobs = planned_jobs(built, target(built))
    assert jobs.get("aggregate_study") == 1  # iterative only
    assert not set(jobs) & {"pretrain_demo_model", "sample_first_attempts", "sample_retries", "train_adapter",
                           "sample_evaluation", "verify_samples", "evaluate_policy", "plot_condition_study"}


def test_rebuild_is_byte_identical(built, tmp_path):
    """Every data file (samples, verdicts, pairs, adapters, CSVs, tables; not logs or benchmarks)."""
    fresh = make_workdir(tmp_path / "again")
    snakemake(fresh, target(fresh))
    assert assert_same_data(built, fresh) >= 100
