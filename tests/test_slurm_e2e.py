"""The slurm profile end to end on a real one-node Slurm (tests/localslurm.py).

slurmctld, slurmd and slurmdbd (with MariaDB) run on loopback with one fake GPU. The workflow runs
`snakemake --profile slurm` with a small config (tests/configs/slurm.yaml) through the profile as
shipped: only site values are changed, through the PIDISTILL_* variables the profile reads, to fit
this machine. Slurm's accounting is the witness: every submitted rule must appear in `sacct` in the
right partition, GPU rules with a GPU allocated, and the rules that must stay on the submit host
must not appear at all. Skipped where Slurm is not installed (`make slurm` installs it; CI does).
"""

from __future__ import annotations

import re
import subprocess
import tempfile
from pathlib import Path

import pytest
from localslurm import LocalSlurm, unavailable_reason
from workdir import (HAVE_LATEX, OFFLINE_ENV, SNAKEMAKE, assert_same_data, job_counts, make_workdir, offline_env,
                     standin_environment)

pytestmark = pytest.mark.e2e

REASON = unavailable_reason()
if REASON:
    pytest.skip(REASON, allow_module_level=True)

GOAL = "all" if HAVE_LATEX else "paper_inputs"
CONFIG = ["--configfile", "config/config.yaml", "tests/configs/slurm.yaml"]
# Written by the cluster_run fixture: environments.main is a stand-in venv, so the jobs go through
# scripts/_repo.py's switch to a configured environment as the paper's generation jobs do.
ENVIRONMENTS = "tests/configs/environments.yaml"
GPU_RULES = {"sample_first_attempts", "sample_retries", "sample_extra_attempts", "sample_hints", "sample_diagnoses",
             "sample_skeletons", "sample_evaluation",
             "train_adapter"}
LOCAL_RULES = {"plot_condition_study", "plot_round_study", "tabulate_study", "write_paper_sections", "build_paper",
               "resolve_model", "evaluate_policy", "build_sft_pairs", "build_opsd_prompts", "aggregate_study"}
# site values for a 2-core CI machine; partitions and GPU model keep the profile's defaults
SITE = {"PIDISTILL_CPU_CPUS": "1", "PIDISTILL_GPU_CPUS": "1",
        "PIDISTILL_CPU_MEM_MB": "2000", "PIDISTILL_VERIFY_MEM_MB": "2000", "PIDISTILL_SAMPLE_MEM_MB": "3000",
        "PIDISTILL_TRAIN_MEM_MB": "3000", "PIDISTILL_CPU_RUNTIME": "20", "PIDISTILL_VERIFY_RUNTIME": "20",
        "PIDISTILL_SAMPLE_RUNTIME": "20", "PIDISTILL_EVAL_RUNTIME": "20", "PIDISTILL_TRAIN_RUNTIME": "20"}


@pytest.fixture(scope="module")
def cluster():
    state = Path(tempfile.mkdtemp(prefix="pidistill-slurm-"))
    slurm = LocalSlurm(state)
    try:
        slurm.up()
    except Exception:
        slurm.down(purge=True)
        raise
    yield slurm
    slurm.down(purge=True)


def profile_env(cluster: LocalSlurm) -> dict[str, str]:
    return {**cluster.env(), **SITE, "PIDISTILL_SLURM_ACCOUNT": cluster.account, **OFFLINE_ENV}


def snakemake_slurm(workdir: Path, cluster: LocalSlurm, *args: str) -> subprocess.CompletedProcess:
    cmd = [str(SNAKEMAKE), "--profile", "slurm", *args, *CONFIG, ENVIRONMENTS, "--slurm-init-seconds-before-status-checks",
           "2"]
    return subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, env=profile_env(cluster), timeout=1500)


@pytest.fixture(scope="module")
def standin(tmp_path_factory):
    """The venv that plays the environment every job runs in (a venv reaching the driver's packages)."""
    return standin_environment(tmp_path_factory.mktemp("envs") / "main")


@pytest.fixture(scope="module")
def cluster_run(cluster, standin, tmp_path_factory):
    workdir = make_workdir(tmp_path_factory.mktemp("slurm"))
    (workdir / ENVIRONMENTS).write_text(f"environments:\n  main: {standin}\n")
    planned = snakemake_slurm(workdir, cluster, GOAL, "-n")
    assert planned.returncode == 0, planned.stderr[-4000:]
    proc = snakemake_slurm(workdir, cluster, GOAL)
    assert proc.returncode == 0, f"{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}\n{cluster.log_tail()}"
    jobs = sacct_jobs(cluster)
    return workdir, job_counts(planned.stdout + planned.stderr), jobs


def sacct_jobs(cluster: LocalSlurm) -> list[dict[str, str]]:
    """Every job the cluster ran, from slurmdbd: rule (from the plugin's --comment), partition, TRES."""
    out = cluster.run("sacct", "-a", "-X", "-n", "-P", "--starttime", "now-1days",
                      "--format=JobID,Comment%200,Partition,State,AllocTRES,Account")
    jobs = []
    for line in out.splitlines():
        job_id, comment, partition, state, tres, account = line.split("|")
        m = re.match(r"rule_(\w+?)(?:_wildcards_.*)?$", comment)
        jobs.append({"id": job_id, "rule": m.group(1) if m else comment, "partition": partition, "state": state,
                     "tres": tres, "account": account})
    return jobs


def test_every_submitted_rule_ran_once_on_the_cluster(cluster_run):
    _, planned, jobs = cluster_run
    ran: dict[str, int] = {}
    for job in jobs:
        assert job["state"] == "COMPLETED", job
        ran[job["rule"]] = ran.get(job["rule"], 0) + 1
    expected = {rule: n for rule, n in planned.items() if rule not in LOCAL_RULES | {"all", "paper_inputs"}}
    assert ran == expected
    # the Slurm config's one retry condition runs every GPU rule but the other sources' (samples, hints)
    assert GPU_RULES - {"sample_extra_attempts", "sample_hints", "sample_diagnoses", "sample_skeletons"} <= set(ran)
    assert {"verify_samples", "prepare_dataset"} <= set(ran)


def test_gpu_rules_ran_in_the_gpu_partition_with_a_gpu(cluster_run, cluster):
    _, _, jobs = cluster_run
    for job in jobs:
        assert job["account"] == cluster.account, job
        if job["rule"] in GPU_RULES:
            assert job["partition"] == "gpu", job
            assert "gres/gpu=1" in job["tres"] and f"gres/gpu:{cluster.gpu_type}=1" in job["tres"], job
        else:
            assert job["partition"] == "cpu", job
            assert "gres/gpu" not in job["tres"], job


def test_rule_logs_show_where_each_job_ran(cluster_run):
    workdir, _, jobs = cluster_run
    runs = workdir / "results" / "runs" / "toy_code" / "tiny" / "seed1" / "base"
    gpu_log = (runs / "r1-tests" / "logs" / "train_adapter.log").read_text()
    cpu_log = (runs / "logs" / "verify_sources" / "retry-tests-k1" / "samples.log").read_text()
    ids = {job["id"] for job in jobs}
    m = re.search(r"slurm job (\d+) in partition gpu, CUDA_VISIBLE_DEVICES=(\S+)", gpu_log)
    assert m and m.group(1) in ids and m.group(2) == "0", gpu_log[:2000]
    m = re.search(r"slurm job (\d+) in partition cpu, CUDA_VISIBLE_DEVICES=<unset>", cpu_log)
    assert m and m.group(1) in ids, cpu_log[:2000]


def test_jobs_ran_in_the_configured_environment(cluster_run, standin):
    """Generation, training and CPU jobs on the nodes ran under the environment's python, not the driver's."""
    workdir, _, _ = cluster_run
    runs = workdir / "results" / "runs" / "toy_code" / "tiny" / "seed1" / "base"
    logs = [runs / "logs" / "sample_first_attempts.log", runs / "logs" / "sample_evaluation.log",
            runs / "sources" / "retry-tests-k1" / "logs" / "sample_retries.log",
            runs / "r1-tests" / "logs" / "train_adapter.log",
            runs / "logs" / "verify_sources" / "retry-tests-k1" / "samples.log"]
    for log in logs:
        text = log.read_text()
        m = re.search(r"^\S+ \S+ pidistill INFO python (\S+)$", text, re.M)
        assert m, f"{log}: no 'python <interpreter>' line\n{text[:2000]}"
        assert m.group(1) == str(standin / "bin" / "python"), (log, m.group(1))


def test_report_rules_stayed_on_the_submit_host(cluster_run):
    workdir, _, jobs = cluster_run
    assert not {job["rule"] for job in jobs} & LOCAL_RULES
    if HAVE_LATEX:
        assert (workdir / "results" / "paper" / "pidistill.pdf").stat().st_size > 10_000
    assert (workdir / "results" / "studies" / "code_retry" / "summary.csv").exists()


def test_the_cluster_computes_what_a_local_run_computes(cluster_run, tmp_path):
    """Same DAG, same numbers: every data file of the cluster run is byte-identical to a local run's."""
    workdir, _, _ = cluster_run
    local = make_workdir(tmp_path / "local")
    proc = subprocess.run([str(SNAKEMAKE), "paper_inputs", "--cores", "2", *CONFIG], cwd=local, capture_output=True,
                          text=True, env=offline_env())
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert assert_same_data(local, workdir) > 20


def test_a_second_run_plans_nothing(cluster_run, cluster):
    workdir, _, _ = cluster_run
    proc = snakemake_slurm(workdir, cluster, GOAL, "-n")
    assert proc.returncode == 0 and "Nothing to be done" in proc.stdout + proc.stderr, proc.stdout[-2000:]
