"""sample_first_attempts / sample_evaluation: n single-turn samples per problem from the policy
(first attempts on the train split, evaluation samples on the test split)."""

import _repo  # noqa: F401  (this checkout's pidistill on sys.path)

from pidistill.generation import SamplingSettings, rule_backend
from pidistill.io import write_jsonl
from pidistill.problems import read_problems
from pidistill.sampling import sample_attempts, with_token_counts
from pidistill.provenance import pinned_revision
from pidistill.smk import rule_log

with rule_log(snakemake) as log:
    problems = read_problems(snakemake.input.problems)
    sampling = snakemake.params.sampling
    backend = rule_backend(snakemake.params, snakemake.input.adapters, pinned_revision(snakemake.input.model_provenance),
                           snakemake.threads)
    rows = sample_attempts(backend, problems, sampling["n"], int(snakemake.wildcards.seed), snakemake.params.stage,
                           SamplingSettings.from_config(sampling))
    rows = with_token_counts(rows, backend)
    write_jsonl(snakemake.output[0], rows)
    log.info("%d %s samples for %d problems", len(rows), snakemake.params.stage, len(problems))
