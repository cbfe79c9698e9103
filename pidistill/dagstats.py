"""How much work the DAG shares: its jobs against the jobs if every run computed its own upstream.

A run (a study's policy at one seed) needs: the base policy's evaluation; for each of its rounds the
parent's first attempts, the retries, the SFT pairs and the adapter; and its own evaluation. The
DAG computes each of those once per (dataset, model, seed, policy); without sharing every run would
compute its own copy. ``job_keys`` names the jobs of one run the way the DAG identifies them (rule,
output directory), so the union over runs is the DAG's job set (checked against a dry run in tests).
"""

from __future__ import annotations

from collections import Counter

from pidistill.config import Run, policy_lineage, policy_parent, run_studies, study_runs

GENERATION_RULES = ("sample_first_attempts", "sample_retries", "sample_evaluation", "verify_samples",
                    "build_sft_pairs", "train_adapter", "evaluate_policy")


def _evaluation(prefix: str, policy: str) -> set[tuple[str, str]]:
    d = f"{prefix}/{policy}"
    return {("sample_evaluation", d), ("verify_samples", d + ":eval_samples"), ("evaluate_policy", d)}


def job_keys(run: Run) -> set[tuple[str, str]]:
    prefix = run.run_dir
    jobs = _evaluation(prefix, "base") | _evaluation(prefix, run.policy)
    for child in policy_lineage(run.policy):
        parent = policy_parent(child)
        jobs |= {("sample_first_attempts", f"{prefix}/{parent}"), ("verify_samples", f"{prefix}/{parent}:first_attempts")}
        d = f"{prefix}/{child}"
        jobs |= {("sample_retries", d), ("verify_samples", d + ":retries"), ("build_sft_pairs", d), ("train_adapter", d)}
    return jobs


def sharing_report(config: dict) -> dict:
    """Per-rule job counts with sharing (the DAG) and without (every run on its own)."""
    union: set[tuple[str, str]] = set()
    unshared: Counter = Counter()
    n_runs = 0
    for study in run_studies(config):
        for run in study_runs(config, study):
            keys = job_keys(run)
            union |= keys
            if run.policy != "base":  # a trained run's keys include its baseline: counted there
                unshared.update(rule for rule, _ in keys)
                n_runs += 1
    shared = Counter(rule for rule, _ in union)
    return {"trained_runs": n_runs, "shared": dict(shared), "unshared": dict(unshared),
            "shared_total": sum(shared.values()), "unshared_total": sum(unshared.values())}


# Rules with a benchmark file per job (rules/*.smk ``benchmark:``), where the job keys above name it.
BENCHMARKED_RULES = ("sample_first_attempts", "sample_retries", "sample_evaluation", "train_adapter")


def benchmark_files(config: dict, study: str, results: str) -> list[str]:
    """The benchmark files of every heavy job ``study`` needs (shared ones included): the job keys of
    its runs, and the pretraining of a demo model it uses."""
    files = {f"{results}/runs/{key}/benchmarks/{rule}.tsv"
             for run in study_runs(config, study) for rule, key in job_keys(run) if rule in BENCHMARKED_RULES}
    model = config["studies"][study]["model"]
    if config["models"][model]["source"] == "pretrain":
        files.add(f"{results}/benchmarks/pretrain_demo_model/{model}.tsv")
    return sorted(files)
