"""How much work the DAG shares: its jobs against the jobs if every run computed its own upstream.

A run (a study's policy at one seed) needs: the base policy's evaluation; for each of its rounds the
parent's first attempts, the retries, the SFT pairs and the adapter; and its own evaluation. The
DAG computes each of those once per (dataset, model, seed, policy); without sharing every run would
compute its own copy. ``job_keys`` names the jobs of one run the way the DAG identifies them (rule,
output directory), so the union over runs is the DAG's job set (checked against a dry run in tests).
"""

from __future__ import annotations

from collections import Counter

from pidistill.config import Run, method_settings, policy_lineage, policy_method, policy_parent, run_studies, study_runs
from pidistill.methods import diagnosis_key, hint_key, method_source, method_trainer, skeleton_key, source_id

GENERATION_RULES = ("sample_first_attempts", "sample_retries", "sample_extra_attempts", "sample_hints", "sample_diagnoses",
                    "sample_skeletons", "check_skeletons", "assign_pi_donors", "sample_evaluation", "verify_samples",
                    "build_sft_pairs", "build_opsd_prompts", "train_adapter", "evaluate_policy")


def _evaluation(prefix: str, policy: str) -> set[tuple[str, str]]:
    d = f"{prefix}/{policy}"
    return {("sample_evaluation", d), ("verify_samples", d + ":eval_samples"), ("evaluate_policy", d)}


def _source_jobs(config: dict, run: Run, parent: str, method: str) -> set[tuple[str, str]]:
    """The jobs that make a method's candidates: its source's generation and verification (shared by
    every method with the same source), the PI assignment or the hints it reads."""
    src = method_source(method_settings(config, method))
    sid = source_id(src)
    if sid is None:  # rejection-sampling SFT: the first attempts are the candidates
        return set()
    d = f"{run.run_dir}/{parent}/sources/{sid}"
    rule = "sample_retries" if src["kind"] == "retry" else "sample_extra_attempts"
    jobs = {(rule, d), ("verify_samples", f"{run.run_dir}/{parent}:sources/{sid}/samples")}
    if src.get("pi") in ("wrong", "other_tests"):
        jobs.add(("assign_pi_donors", f"{run.dataset}/{src['pi']}-seed{run.seed}"))
    if src.get("pi") == "hint":
        jobs.add(("sample_hints", f"{run.dataset}/seed{run.seed}/{hint_key(src)}"))
    if src.get("pi") == "diagnosis":
        jobs.add(("sample_diagnoses", f"{run.run_dir}/{parent}/diagnoses/{diagnosis_key(src)}"))
    if src.get("pi") == "skeleton":
        jobs |= _skeleton_jobs(config, run)
    return jobs


def _skeleton_jobs(config: dict, run: Run) -> set[tuple[str, str]]:
    """The outlines of the dataset's skeleton source and their check (none: its problems carry theirs)."""
    spec = config["datasets"][run.dataset].get("skeletons")
    if spec is None:
        return set()
    d = f"{run.dataset}/seed{run.seed}/{skeleton_key(spec)}"
    return {("sample_skeletons", d), ("check_skeletons", d)}


def job_keys(run: Run, config: dict) -> set[tuple[str, str]]:
    prefix = run.run_dir
    jobs = _evaluation(prefix, "base") | _evaluation(prefix, run.policy)
    for child in policy_lineage(run.policy):
        parent = policy_parent(child)
        jobs |= {("sample_first_attempts", f"{prefix}/{parent}"), ("verify_samples", f"{prefix}/{parent}:first_attempts")}
        jobs |= _source_jobs(config, run, parent, policy_method(child))
        d = f"{prefix}/{child}"
        jobs |= {("build_sft_pairs", d), ("train_adapter", d)}
        settings = method_settings(config, policy_method(child))
        if method_trainer(settings) == "opsd":
            jobs.add(("build_opsd_prompts", d))
            if settings["train"].get("privileged") == "skeleton":
                jobs |= _skeleton_jobs(config, run)
    return jobs


def sharing_report(config: dict) -> dict:
    """Per-rule job counts with sharing (the DAG) and without (every run on its own)."""
    union: set[tuple[str, str]] = set()
    unshared: Counter = Counter()
    n_runs = 0
    for study in run_studies(config):
        for run in study_runs(config, study):
            keys = job_keys(run, config)
            union |= keys
            if run.policy != "base":  # a trained run's keys include its baseline: counted there
                unshared.update(rule for rule, _ in keys)
                n_runs += 1
    shared = Counter(rule for rule, _ in union)
    return {"trained_runs": n_runs, "shared": dict(shared), "unshared": dict(unshared),
            "shared_total": sum(shared.values()), "unshared_total": sum(unshared.values())}


# Rules with a benchmark file per job (rules/*.smk ``benchmark:``), where the job keys above name it.
BENCHMARKED_RULES = ("sample_first_attempts", "sample_retries", "sample_extra_attempts", "sample_evaluation",
                     "train_adapter")


def _benchmark_file(results: str, rule: str, key: str) -> str:
    if rule == "sample_hints":
        return f"{results}/hints/{key}/benchmarks/sample_hints.tsv"
    if rule == "sample_diagnoses":
        return f"{results}/runs/{key}/benchmarks/sample_diagnoses.tsv"
    if rule == "sample_skeletons":
        return f"{results}/skeletons/{key}/benchmarks/sample_skeletons.tsv"
    return f"{results}/runs/{key}/benchmarks/{rule}.tsv"


def _pretrained_chain(config: dict, model: str) -> list[str]:
    """A demo model and the models it continues from (their pretraining jobs)."""
    out = []
    while model is not None and config["models"][model]["source"] == "pretrain":
        out.append(model)
        model = config["models"][model]["pretrain"].get("init_from")
    return out


def benchmark_files(config: dict, study: str, results: str) -> list[str]:
    """The benchmark files of every heavy job ``study`` needs (shared ones included): the job keys of
    its runs, and the pretraining of a demo model it uses."""
    files = set()
    models = {config["studies"][study]["model"]}
    if config["studies"][study]["kind"] == "mucode":
        files |= set(mucode_benchmark_files(config, study, results))
    for run in study_runs(config, study) if config["studies"][study]["kind"] != "mucode" else []:
        for rule, key in job_keys(run, config):
            if rule in BENCHMARKED_RULES or rule in ("sample_hints", "sample_diagnoses", "sample_skeletons"):
                files.add(_benchmark_file(results, rule, key))
            if rule == "sample_skeletons":
                models.add(config["datasets"][run.dataset]["skeletons"]["model"])
        for child in policy_lineage(run.policy):
            src = method_source(method_settings(config, policy_method(child)))
            models |= {src[k] for k in ("model", "hint_model", "diagnosis_model") if src.get(k)}
    for model in sorted(models):
        for m in _pretrained_chain(config, model):
            files.add(f"{results}/benchmarks/pretrain_demo_model/{m}.tsv")
    return sorted(files)


def mucode_benchmark_files(config: dict, study: str, results: str) -> list[str]:
    """A µCode study's heavy jobs (rules/mucode.smk): per seed and iteration its rollouts and
    verifier, each method's generator, and every evaluation."""
    spec = config["studies"][study]
    out = []
    for seed in spec["seeds"]:
        run = f"{results}/mucode/{study}/{spec['dataset']}/{spec['model']}/seed{seed}"
        policies = [("base", 0)] + [(m, i) for i in range(1, spec["iterations"] + 1) for m in spec["methods"]]
        for i in range(spec["iterations"]):
            out += [f"{run}/iter{i}/benchmarks/sample_rollouts.tsv", f"{run}/iter{i}/benchmarks/train_verifier.tsv"]
            out += [f"{run}/iter{i + 1}/benchmarks/train_generator/{m}.tsv" for m in spec["methods"]]
        out += [f"{run}/iter{i}/benchmarks/evaluate_mucode/{m}.{ds}.tsv" for m, i in policies
                for ds in spec["eval_datasets"]]
    return sorted(out)
