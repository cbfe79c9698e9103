"""build_sft_pairs: keep correct retries; pair each with its problem, without PI or failed attempt."""

import _repo  # noqa: F401  (this checkout's pidistill on sys.path)

from pidistill.io import write_json, write_jsonl
from pidistill.problems import index_problems, read_problems
from pidistill.records import RETRY_SOURCE, read_verdicts
from pidistill.sft import build_pairs, filter_correct, retry_statistics
from pidistill.smk import rule_log

with rule_log(snakemake) as log:
    problems = read_problems(snakemake.input.problems)
    index = index_problems(problems)
    first = read_verdicts(snakemake.input.first_verdicts, index, snakemake.input.problems)
    retries = read_verdicts(snakemake.input.retry_verdicts, index, snakemake.input.problems, fields=RETRY_SOURCE)
    pairs = build_pairs(problems, filter_correct(retries))
    write_jsonl(snakemake.output.pairs, pairs)
    stats = retry_statistics(first, retries, pairs)
    write_json(snakemake.output.stats, stats)
    log.info("round stats: %s", stats)
