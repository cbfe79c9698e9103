"""Glue for the thin scripts that Snakemake rules run: logging into the rule's log file."""

from __future__ import annotations

import contextlib
import logging
import os
import socket
from pathlib import Path


@contextlib.contextmanager
def rule_log(snakemake):
    """Send stdout, stderr (tqdm progress included) and logging to the rule's ``log:`` file."""
    log_path = Path(snakemake.log[0])
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "w", buffering=1) as fh, contextlib.redirect_stdout(fh), contextlib.redirect_stderr(fh):
        logging.basicConfig(stream=fh, level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s", force=True)
        logging.getLogger("pidistill").info("rule %s, wildcards %s", snakemake.rule, dict(snakemake.wildcards))
        logging.getLogger("pidistill").info("running on %s", execution_context())
        yield logging.getLogger("pidistill")


def execution_context(env=None) -> str:
    """Where this job runs: host, Slurm job and partition if any, and the GPUs it was given."""
    env = os.environ if env is None else env
    parts = [f"host {socket.gethostname()}"]
    if "SLURM_JOB_ID" in env:
        parts.append(f"slurm job {env['SLURM_JOB_ID']} in partition {env.get('SLURM_JOB_PARTITION', '?')}")
    parts.append(f"CUDA_VISIBLE_DEVICES={env.get('CUDA_VISIBLE_DEVICES', '<unset>')}")
    return ", ".join(parts)


def model_revision(snakemake) -> str | None:
    """The revision a job loads its base model at: the commit resolve_model recorded (hub models)."""
    from pidistill.provenance import pinned_revision

    return pinned_revision(snakemake.input.model_provenance)


def backend_for(snakemake, adapters):
    """The configured generation backend for the rule's policy (base model + adapters)."""
    from pidistill.generation import PolicySpec, load_backend

    spec = snakemake.params.model_spec
    generation = snakemake.params.generation
    policy = PolicySpec(
        model=snakemake.params.model,
        adapters=list(adapters),
        revision=model_revision(snakemake),
        chat_template_kwargs=spec.get("chat_template_kwargs", {}),
    )
    options = {"batch_size": generation.get("batch_size", 64)}
    if generation.get("backend", "transformers") == "transformers":
        import torch

        torch.set_num_threads(snakemake.threads)
        torch.set_flush_denormal(True)
    return load_backend(generation.get("backend", "transformers"), policy, **options)
