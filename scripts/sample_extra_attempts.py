"""sample_extra_attempts: more single-turn samples with no failure signal (pidistill/methods.py):
n per training problem (source kind samples: double-sample, temperature-uniform), or per_failure
per failed first attempt (source kind resample: the compute-matched control)."""

import _repo  # noqa: F401  (this checkout's pidistill on sys.path)

from pidistill.generation import SamplingSettings, rule_backend
from pidistill.io import write_jsonl
from pidistill.methods import sample_temperatures
from pidistill.problems import index_problems, read_problems
from pidistill.provenance import pinned_revision
from pidistill.records import RETRY_SOURCE, read_verdicts
from pidistill.sampling import sample_extra_attempts, sample_resamples, with_token_counts
from pidistill.smk import rule_log

with rule_log(snakemake) as log:
    source = snakemake.params.source
    stage = snakemake.wildcards.source  # the source id: its own request seeds
    problems = read_problems(snakemake.input.problems)
    sampling = SamplingSettings.from_config(snakemake.params.sampling)
    seed = int(snakemake.wildcards.seed)
    backend = rule_backend(snakemake.params, snakemake.input.adapters, pinned_revision(snakemake.input.model_provenance),
                           snakemake.threads)
    if source["kind"] == "samples":
        temperatures = sample_temperatures(source["n"], source.get("temperature", sampling.temperature))
        log.info("%d samples per problem at temperatures %s", source["n"], temperatures)
        rows = sample_extra_attempts(backend, problems, temperatures, seed, stage, sampling)
    else:
        first = read_verdicts(snakemake.input.first_verdicts, index_problems(problems), snakemake.input.problems,
                              fields=RETRY_SOURCE)
        log.info("%d fresh samples for each of %d failed first attempts", source["per_failure"],
                 sum(not v["passed"] for v in first))
        rows = sample_resamples(backend, problems, first, source["per_failure"], seed, stage, sampling)
    write_jsonl(snakemake.output[0], with_token_counts(rows, backend))
    log.info("%d samples written", len(rows))
