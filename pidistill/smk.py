"""Glue for the thin scripts that Snakemake rules run: the rule's log, and a check of its code inputs.

Every script does ``with rule_log(snakemake) as log: ...``. Every rule runs this file, so it imports
no stage's code (only pidistill.io, which every rule uses): a stage's module here would become a
code input of every rule.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import sys
from pathlib import Path

from pidistill.io import InputError  # every rule reads and writes through pidistill.io anyway


@contextlib.contextmanager
def rule_log(snakemake):
    """Send everything the job prints to the rule's ``log:`` file, and check its code inputs.

    The redirection is at the file-descriptor level, so the output of subprocesses (verifier
    workers, latexmk) and of C extensions lands in the log too, not only Python's ``sys.stdout``.
    On success, every pidistill module the job imported must be one of the rule's ``code`` inputs
    (see :mod:`pidistill.codedeps`); a module that is not would go untracked, so the job fails.
    """
    log_path = Path(snakemake.log[0])
    log_path.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with open(log_path, "w", buffering=1) as fh:
        os.dup2(fh.fileno(), 1)
        os.dup2(fh.fileno(), 2)
        log = logging.getLogger("pidistill")
        try:
            with contextlib.redirect_stdout(fh), contextlib.redirect_stderr(fh):
                logging.basicConfig(stream=fh, level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s",
                                    force=True)
                log.info("rule %s, wildcards %s", snakemake.rule, dict(snakemake.wildcards))
                log.info("running on %s", execution_context())
                log.info("python %s", sys.executable)
                try:
                    yield log
                    check_code_inputs(snakemake)
                except InputError as exc:
                    # bad input: the message names the file, line and field; no traceback of ours
                    log.error("error: %s", exc)
                    raise SystemExit(f"{snakemake.rule}: error: {exc}") from None
                except BaseException:
                    log.exception("job failed")
                    raise
        finally:
            fh.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])
            logging.basicConfig(stream=sys.stderr, level=logging.INFO, force=True)


def loaded_modules() -> set[str]:
    """Real paths of the pidistill modules this process has imported."""
    files = set()
    for name, module in list(sys.modules.items()):
        if (name == "pidistill" or name.startswith("pidistill.")) and getattr(module, "__file__", None):
            files.add(os.path.realpath(module.__file__))
    return files


def check_code_inputs(snakemake) -> None:
    declared = snakemake.input.get("code") if hasattr(snakemake.input, "get") else None
    if declared is None:
        return
    declared = {os.path.realpath(p) for p in ([declared] if isinstance(declared, str) else declared)}
    untracked = sorted(loaded_modules() - declared)
    if untracked:
        raise RuntimeError(
            f"rule {snakemake.rule} ran pidistill modules that are not among its code inputs: {', '.join(untracked)}. "
            "Editing them would not rerun it. Add them to the rule's code(...) (modules=...) or to the "
            "__code_deps__ of the module that runs them (see pidistill/codedeps.py)."
        )


def execution_context(env=None) -> str:
    """Where this job runs: host, Slurm job and partition if any, and the GPUs it was given."""
    env = os.environ if env is None else env
    parts = [f"host {socket.gethostname()}"]
    if "SLURM_JOB_ID" in env:
        parts.append(f"slurm job {env['SLURM_JOB_ID']} in partition {env.get('SLURM_JOB_PARTITION', '?')}")
    parts.append(f"CUDA_VISIBLE_DEVICES={env.get('CUDA_VISIBLE_DEVICES', '<unset>')}")
    return ", ".join(parts)
