"""sample_retries: K retries, under the method's PI condition, for every failed first attempt."""

import _repo  # noqa: F401  (this checkout's pidistill on sys.path)

from pidistill.generation import SamplingSettings, rule_backend
from pidistill.io import write_jsonl
from pidistill.problems import index_problems, read_problems
from pidistill.records import RETRY_SOURCE, read_verdicts
from pidistill.retry import RetrySpec
from pidistill.sampling import sample_retries
from pidistill.provenance import pinned_revision
from pidistill.smk import rule_log

with rule_log(snakemake) as log:
    method = snakemake.params.method
    spec = RetrySpec.build(method["pi"], method["k"], retry_texts={snakemake.params.domain: method.get("retry_text")},
                           pi_template=method.get("pi_template"), gibberish=method.get("gibberish", "XYZZY"))
    problems = read_problems(snakemake.input.problems)
    first = read_verdicts(snakemake.input.first_verdicts, index_problems(problems), snakemake.input.problems,
                          fields=RETRY_SOURCE)
    sampling = snakemake.params.sampling
    n_failed = sum(not v["passed"] for v in first)
    log.info("%d of %d first attempts failed; %d retries each (PI: %s)", n_failed, len(first), spec.k, spec.pi)
    backend = rule_backend(snakemake.params, snakemake.input.adapters, pinned_revision(snakemake.input.model_provenance),
                           snakemake.threads) if n_failed else None
    rows = sample_retries(backend, problems, first, spec, int(snakemake.wildcards.seed), SamplingSettings.from_config(sampling))
    write_jsonl(snakemake.output[0], rows)
    log.info("%d retries written", len(rows))
