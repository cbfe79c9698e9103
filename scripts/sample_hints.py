"""sample_hints: one hint per training problem from the hint model, which never sees the gold
(the cross-model hint PI, pidistill/retry.py)."""

import _repo  # noqa: F401  (this checkout's pidistill on sys.path)

from pidistill.generation import SamplingSettings, rule_backend
from pidistill.io import write_jsonl
from pidistill.problems import read_problems
from pidistill.provenance import pinned_revision
from pidistill.sampling import sample_hints, with_token_counts
from pidistill.smk import rule_log

with rule_log(snakemake) as log:
    problems = read_problems(snakemake.input.problems)
    backend = rule_backend(snakemake.params, [], pinned_revision(snakemake.input.model_provenance), snakemake.threads)
    rows = sample_hints(backend, problems, snakemake.params.hint_prompt, int(snakemake.wildcards.seed),
                        SamplingSettings.from_config(snakemake.params.sampling))
    write_jsonl(snakemake.output[0], with_token_counts(rows, backend))
    log.info("%d hints written by %s", len(rows), snakemake.params.model)
