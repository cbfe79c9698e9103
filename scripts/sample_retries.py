"""sample_retries: K retries, under the method's PI condition, for every failed first attempt.

The retrying model is the policy itself, or another model (cross-model retry); the PI may be a
donor's answer or tests (from assign_pi_donors), a hint another model wrote (from sample_hints),
or a diagnosis of each failed attempt another model wrote (from sample_diagnoses)."""

import _repo  # noqa: F401  (this checkout's pidistill on sys.path)

from pidistill.generation import SamplingSettings, rule_backend
from pidistill.io import read_json, write_jsonl
from pidistill.problems import index_problems, read_problems
from pidistill.provenance import pinned_revision
from pidistill.records import RETRY_SOURCE, SAMPLE, read_rows, read_verdicts
from pidistill.retry import RetrySpec
from pidistill.sampling import sample_retries, with_token_counts
from pidistill.skeletons import SKELETON, with_skeletons
from pidistill.smk import rule_log

with rule_log(snakemake) as log:
    source = snakemake.params.source
    spec = RetrySpec.build(source["pi"], source["k"], retry_texts={snakemake.params.domain: source.get("retry_text")},
                           pi_template=source.get("pi_template"), gibberish=source.get("gibberish", "XYZZY"),
                           max_chars=source.get("pi_max_chars"))
    problems = read_problems(snakemake.input.problems)
    if "skeletons" in snakemake.input.keys():  # the dataset's skeleton source (rule check_skeletons)
        problems = with_skeletons(problems, read_rows(snakemake.input.skeletons, SKELETON, "skeletons",
                                                      problems=index_problems(problems),
                                                      problems_path=snakemake.input.problems))
    index = index_problems(problems)
    first = read_verdicts(snakemake.input.first_verdicts, index, snakemake.input.problems, fields=RETRY_SOURCE)
    donors = read_json(snakemake.input.donors)["donors"] if "donors" in snakemake.input.keys() else None
    hints = None
    if "hints" in snakemake.input.keys():
        hints = {r["id"]: r["completion"] for r in read_rows(snakemake.input.hints, SAMPLE, "samples", problems=index,
                                                             problems_path=snakemake.input.problems)}
    diagnoses = None
    if "diagnoses" in snakemake.input.keys():
        diagnoses = {(r["id"], r["attempt"]): r["completion"]
                     for r in read_rows(snakemake.input.diagnoses, {**SAMPLE, "attempt": (int,)}, "samples",
                                        problems=index, problems_path=snakemake.input.problems)}
    sampling = snakemake.params.sampling
    n_failed = sum(not v["passed"] for v in first)
    log.info("%d of %d first attempts failed; %d retries each (PI: %s) by %s", n_failed, len(first), spec.k, spec.pi,
             snakemake.params.model)
    backend = rule_backend(snakemake.params, snakemake.input.adapters, pinned_revision(snakemake.input.model_provenance),
                           snakemake.threads) if n_failed else None
    rows = sample_retries(backend, problems, first, spec, int(snakemake.wildcards.seed),
                          SamplingSettings.from_config(sampling), donors=donors, hints=hints, diagnoses=diagnoses)
    write_jsonl(snakemake.output[0], with_token_counts(rows, backend))
    log.info("%d retries written", len(rows))
