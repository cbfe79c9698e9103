"""sample_evaluation: n samples per test problem from the policy, for pass@k."""

import _repo  # noqa: F401  (this checkout's pidistill on sys.path)

from pidistill.generation import SamplingSettings
from pidistill.io import write_jsonl
from pidistill.problems import read_problems
from pidistill.sampling import sample_attempts
from pidistill.smk import backend_for, rule_log

with rule_log(snakemake) as log:
    problems = read_problems(snakemake.input.problems)
    sampling = snakemake.params.sampling
    backend = backend_for(snakemake, snakemake.input.adapters)
    rows = sample_attempts(backend, problems, sampling["n"], int(snakemake.wildcards.seed), "evaluation",
                           SamplingSettings.from_config(sampling))
    write_jsonl(snakemake.output[0], rows)
    log.info("%d samples for %d test problems", len(rows), len(problems))
