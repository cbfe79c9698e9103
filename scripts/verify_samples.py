"""verify_samples: one verdict per sample, in input order."""

import os
from pathlib import Path

import _repo  # noqa: F401  (this checkout's pidistill on sys.path)

from pidistill.io import write_jsonl
from pidistill.problems import index_problems, read_problems
from pidistill.records import read_samples
from pidistill.smk import rule_log
from pidistill.verifiers import VerifierSettings, verify_samples

# a Lean server this job starts (verifier.lean_server) writes its output beside the job's log
os.environ["PIDISTILL_LEAN_SERVER_LOG"] = str(Path(snakemake.log[0]).with_suffix(".server.log"))
with rule_log(snakemake) as log:
    problems = index_problems(read_problems(snakemake.input.problems))
    samples = read_samples(snakemake.input.samples, problems, snakemake.input.problems)
    verdicts = verify_samples(problems, samples, VerifierSettings.from_config(snakemake.params.verifier))
    write_jsonl(snakemake.output[0], verdicts)
    log.info("%d of %d samples passed", sum(v["passed"] for v in verdicts), len(verdicts))
