"""sample_skeletons: one proof outline per training problem from the dataset's skeleton model
(datasets.<name>.skeletons; pidistill/skeletons.py). check_skeletons judges them."""

import _repo  # noqa: F401  (this checkout's pidistill on sys.path)

from pidistill.generation import SamplingSettings, rule_backend
from pidistill.io import write_jsonl
from pidistill.problems import read_problems
from pidistill.provenance import pinned_revision
from pidistill.sampling import sample_outlines, with_token_counts
from pidistill.smk import rule_log

with rule_log(snakemake) as log:
    problems = read_problems(snakemake.input.problems)
    backend = rule_backend(snakemake.params, [], pinned_revision(snakemake.input.model_provenance), snakemake.threads)
    rows = sample_outlines(backend, problems, snakemake.params.skeleton_prompt, int(snakemake.wildcards.seed),
                           SamplingSettings.from_config(snakemake.params.sampling))
    write_jsonl(snakemake.output[0], with_token_counts(rows, backend))
    log.info("%d outlines written by %s", len(rows), snakemake.params.model)
