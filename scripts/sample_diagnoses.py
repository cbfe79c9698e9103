"""sample_diagnoses: one diagnosis per failed first attempt of the policy, written by the diagnosis
model from the problem, the attempt and the verifier's feedback (the failure-diagnosis PI,
pidistill/retry.py); it never sees the reference solution."""

import _repo  # noqa: F401  (this checkout's pidistill on sys.path)

from pidistill.generation import SamplingSettings, rule_backend
from pidistill.io import write_jsonl
from pidistill.problems import index_problems, read_problems
from pidistill.provenance import pinned_revision
from pidistill.records import RETRY_SOURCE, read_verdicts
from pidistill.sampling import sample_diagnoses, with_token_counts
from pidistill.smk import rule_log

with rule_log(snakemake) as log:
    problems = read_problems(snakemake.input.problems)
    first = read_verdicts(snakemake.input.first_verdicts, index_problems(problems), snakemake.input.problems,
                          fields=RETRY_SOURCE)
    n_failed = sum(not v["passed"] for v in first)
    backend = (rule_backend(snakemake.params, [], pinned_revision(snakemake.input.model_provenance), snakemake.threads)
               if n_failed else None)
    rows = sample_diagnoses(backend, problems, first, snakemake.params.diagnosis_prompt, int(snakemake.wildcards.seed),
                            SamplingSettings.from_config(snakemake.params.sampling))
    write_jsonl(snakemake.output[0], with_token_counts(rows, backend))
    log.info("%d diagnoses of %d failed first attempts written by %s", len(rows), n_failed, snakemake.params.model)
