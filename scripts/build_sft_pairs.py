"""build_sft_pairs: keep correct retries; pair each with its problem, without PI or failed attempt."""

import _repo  # noqa: F401  (this checkout's pidistill on sys.path)

from pidistill.io import read_jsonl, write_json, write_jsonl
from pidistill.problems import read_problems
from pidistill.sft import build_pairs, filter_correct, retry_statistics
from pidistill.smk import rule_log

with rule_log(snakemake) as log:
    problems = read_problems(snakemake.input.problems)
    first = read_jsonl(snakemake.input.first_verdicts)
    retries = read_jsonl(snakemake.input.retry_verdicts)
    pairs = build_pairs(problems, filter_correct(retries))
    write_jsonl(snakemake.output.pairs, pairs)
    stats = retry_statistics(first, retries, pairs)
    write_json(snakemake.output.stats, stats)
    log.info("round stats: %s", stats)
