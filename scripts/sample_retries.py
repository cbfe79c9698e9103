"""sample_retries: K retries, under the method's PI condition, for every failed first attempt."""

import _repo  # noqa: F401  (this checkout's pidistill on sys.path)

from pidistill.generation import SamplingSettings
from pidistill.io import read_jsonl, write_jsonl
from pidistill.problems import read_problems
from pidistill.retry import DEFAULT_RETRY_TEXT, DEFAULT_TEMPLATES, RetrySpec
from pidistill.sampling import sample_retries
from pidistill.smk import backend_for, rule_log

with rule_log(snakemake) as log:
    method = snakemake.params.method
    dataset = snakemake.params.dataset
    domain = dataset["domain"]
    retry_text = dict(DEFAULT_RETRY_TEXT)
    retry_text[domain] = method.get("retry_text") or dataset.get("retry_text") or retry_text[domain]
    templates = dict(DEFAULT_TEMPLATES)
    if "pi_template" in method:
        templates[method["pi"]] = method["pi_template"]
    spec = RetrySpec(pi=method["pi"], k=method["k"], retry_text=retry_text, templates=templates,
                     gibberish=method.get("gibberish", "XYZZY"))
    problems = read_problems(snakemake.input.problems)
    first = read_jsonl(snakemake.input.first_verdicts)
    sampling = {**dataset["first_attempts"], **dataset.get("retries", {})}
    n_failed = sum(not v["passed"] for v in first)
    log.info("%d of %d first attempts failed; %d retries each (PI: %s)", n_failed, len(first), spec.k, spec.pi)
    backend = backend_for(snakemake, snakemake.input.adapters) if n_failed else None
    rows = sample_retries(backend, problems, first, spec, int(snakemake.wildcards.seed), SamplingSettings.from_config(sampling))
    write_jsonl(snakemake.output[0], rows)
    log.info("%d retries written", len(rows))
