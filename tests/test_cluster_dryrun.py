"""The paper DAG through the slurm profile, dry run (offline): job counts and cluster resources."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from pidistill.config import derived_studies, load_config, mucode_studies, run_studies
from pidistill.dagstats import GENERATION_RULES, sharing_report

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = Path(sys.executable).with_name("snakemake")
GPU_RULES = {"sample_first_attempts", "sample_retries", "sample_extra_attempts", "sample_hints", "sample_diagnoses",
             "sample_skeletons", "sample_evaluation",
             "train_adapter", "sample_rollouts", "train_verifier", "train_generator", "evaluate_mucode"}
DERIVED_RULES = {"amortized": ["tabulate_amortized"], "levels": ["tabulate_levels"],
                 "scale": ["plot_scale", "tabulate_scale"], "domains": ["tabulate_domains"], "cost": ["tabulate_cost"],
                 "hierarchy": ["tabulate_hierarchy"]}
LOCAL_RULES = {"plot_condition_study", "plot_round_study", "plot_gain_curve", "tabulate_study", "tabulate_methods",
               "write_paper_sections", "build_paper",
               "resolve_model", "download_raw_dataset", "install_lean_server", "evaluate_policy", "build_sft_pairs", "build_opsd_prompts", "aggregate_study", "all",
               "relabel_trajectories", "tabulate_mucode", "plot_mucode_turns",
               *(r for rules in DERIVED_RULES.values() for r in rules)}


@pytest.fixture(scope="module")
def dryrun(tmp_path_factory) -> str:
    proc = subprocess.run([str(SNAKEMAKE), "--profile", "slurm", "all", "-n"], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return proc.stdout + proc.stderr


def jobs(text: str) -> list[tuple[str, bool, str]]:
    """(rule, is_local, resources line) for each job of the dry run."""
    out = []
    for block in re.split(r"\n(?=\[.*\d{4}\]\n)", text):
        m = re.search(r"^(local)?rule (\w+):", block, re.M)
        if m:
            res = re.search(r"^\s+resources: (.*)$", block, re.M)
            out.append((m.group(2), bool(m.group(1)), res.group(1) if res else ""))
    return out


def test_job_counts_match_the_studies(dryrun):
    counts: dict[str, int] = {}
    for rule, _, _ in jobs(dryrun):
        counts[rule] = counts.get(rule, 0) + 1
    expected = sharing_report(load_config(REPO / "config" / "paper.yaml"))["shared"]
    assert {r: counts.get(r, 0) for r in GENERATION_RULES} == {r: expected.get(r, 0) for r in GENERATION_RULES}
    cfg = load_config(REPO / "config" / "paper.yaml")
    runs = run_studies(cfg)  # the studies that train and evaluate; the derived ones have a rule each
    method_tables = sum(bool(v.get("method_table")) for v in runs.values())
    assert counts["aggregate_study"] == counts["tabulate_study"] + method_tables == len(runs)
    assert counts["tabulate_methods"] == method_tables == 1  # the controls study's method table
    assert counts["detect_overlap"] == len({runs[s]["dataset"] for s in runs})
    mu = mucode_studies(cfg)  # µCode: its own rollouts, verifiers, generators and evaluations
    assert counts["prepare_dataset"] == len({runs[s]["dataset"] for s in runs}
                                            | {d for v in mu.values() for d in [v["dataset"], *v["eval_datasets"]]})
    assert len(mu) == 3 and counts["tabulate_mucode"] == counts["plot_mucode_turns"] == 3
    per = lambda f: sum(f(v) * len(v["seeds"]) for v in mu.values())  # noqa: E731
    assert counts["sample_rollouts"] == counts["train_verifier"] == per(lambda v: v["iterations"])
    assert counts["train_generator"] == counts["relabel_trajectories"] == per(lambda v: v["iterations"] * len(v["methods"]))
    assert counts["evaluate_mucode"] == per(lambda v: (1 + v["iterations"] * len(v["methods"])) * len(v["eval_datasets"]))
    derived = Counter(v["kind"] for v in derived_studies(cfg).values())
    # domains and opsd; the Lean hierarchy
    assert derived == {"amortized": 1, "levels": 1, "scale": 1, "domains": 2, "cost": 1, "hierarchy": 1}
    for kind, rules in DERIVED_RULES.items():
        assert all(counts[r] == derived[kind] for r in rules), kind
    assert "pretrain_demo_model" not in counts  # hub models only
    # one Lean checker installation (verifier.lean_server), which every formal verification job starts
    assert counts["install_lean_server"] == 1 and cfg["verifier"]["lean_server"]["variant"] == "minif2f-deepseek"
    # miniF2F's skeletons: one outline job and one check per seed of the lean study, whose skeleton
    # rows (skeleton + retry, skeleton OPSD) both read them
    assert counts["sample_skeletons"] == counts["check_skeletons"] == len(runs["lean"]["seeds"])


def test_skeleton_rows_read_the_checked_skeletons(dryrun):
    blocks = re.split(r"\n(?=\[.*\d{4}\]\n)", dryrun)
    readers = [b for b in blocks if re.search(r"^(local)?rule (sample_retries|build_opsd_prompts):", b, re.M)
               and "skeletons.jsonl" in b]
    rules = sorted(re.search(r"rule (\w+):", b).group(1) for b in readers)
    assert rules == ["build_opsd_prompts", "sample_retries"]  # skeleton OPSD's prompts, skeleton + retry's retries
    assert all("/minif2f/" in b for b in readers)


def test_gpu_rules_get_a_gpu_in_the_gpu_partition(dryrun):
    seen = set()
    for rule, local, res in jobs(dryrun):
        if rule in GPU_RULES:
            seen.add(rule)
            assert not local
            assert "slurm_partition=gpu" in res and "gpu=1" in res and "gpu_model=h200" in res, (rule, res)
        elif rule in LOCAL_RULES:
            pass  # a dry run prints every job as "rule"; the localrules directive is checked below
        else:  # CPU rules: submitted, CPU partition, no GPU
            assert not local and "slurm_partition=cpu" in res and "gpu=" not in res, (rule, res)
    assert seen == GPU_RULES


def test_site_values_are_overridden_by_environment_variables():
    """PIDISTILL_* variables change the site block; everything else in the profile stays."""
    env = dict(os.environ, PIDISTILL_SLURM_ACCOUNT="lab42", PIDISTILL_GPU_PARTITION="h200q",
               PIDISTILL_GPU_MODEL="nvidia_h200", PIDISTILL_TRAIN_RUNTIME="99")
    proc = subprocess.run([str(SNAKEMAKE), "--profile", "slurm", "all", "-n"], cwd=REPO, capture_output=True,
                          text=True, env=env)
    assert proc.returncode == 0, proc.stderr[-4000:]
    for rule, _, res in jobs(proc.stdout + proc.stderr):
        if rule in LOCAL_RULES:
            continue
        assert "slurm_account=lab42" in res, (rule, res)
        if rule in GPU_RULES:
            assert "slurm_partition=h200q" in res and "gpu=1" in res and "gpu_model=nvidia_h200" in res, (rule, res)
        else:
            assert "slurm_partition=cpu" in res and "gpu=" not in res, (rule, res)
        if rule == "train_adapter":
            assert "runtime=99" in res and "mem_mb=192000" in res, res


def test_a_bad_site_value_names_its_variable():
    env = dict(os.environ, PIDISTILL_TRAIN_MEM_MB="lots")
    proc = subprocess.run([str(SNAKEMAKE), "--profile", "slurm", "all", "-n"], cwd=REPO, capture_output=True,
                          text=True, env=env)
    assert proc.returncode != 0
    assert "PIDISTILL_TRAIN_MEM_MB='lots' is not a int" in proc.stderr


def test_report_rules_run_on_the_submit_host():
    from snakemake.api import SnakemakeApi
    from snakemake.settings.types import OutputSettings, ResourceSettings

    with SnakemakeApi(OutputSettings()) as api:
        workflow = api.workflow(resource_settings=ResourceSettings(), snakefile=REPO / "Snakefile", workdir=REPO)
        local = set(workflow._workflow._localrules)
    assert LOCAL_RULES <= local
    assert not local & (GPU_RULES | {"verify_samples", "prepare_dataset"})


def test_disabled_studies_are_declared_with_a_note():
    cfg = load_config(REPO / "config" / "paper.yaml")
    off = {s: v for s, v in cfg["studies"].items() if not v.get("enabled", True)}
    assert not {"levels", "amortized", "scale", "domains", "cost", "opsd", "lean", "lean_iterative",
                "lean_hierarchy", "mucode", "mucode_8b", "mucode_qwen"} & set(off)
    assert all(v["note"] for v in off.values())


def test_sharing_saves_jobs():
    report = sharing_report(load_config(REPO / "config" / "paper.yaml"))
    assert report["shared_total"] < report["unshared_total"]
    # the base evaluation is computed once per (dataset, model, seed), not once per run
    assert report["shared"]["evaluate_policy"] < report["unshared"]["evaluate_policy"]


def test_demo_job_set_matches_dry_run():
    """The sharing model names exactly the jobs the demo DAG has."""
    proc = subprocess.run([str(SNAKEMAKE), "all", "-n", "--forceall"], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    counts: dict[str, int] = {}
    for rule, _, _ in jobs(proc.stdout + proc.stderr):
        counts[rule] = counts.get(rule, 0) + 1
    expected = sharing_report(load_config(REPO / "config" / "config.yaml"))["shared"]
    # (the formal study's diagnoses included)
    assert {r: counts.get(r, 0) for r in GENERATION_RULES} == {r: expected.get(r, 0) for r in GENERATION_RULES}
