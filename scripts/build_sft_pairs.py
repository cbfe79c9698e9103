"""build_sft_pairs: the method's filter over its source's candidates; each kept candidate is paired
with its problem, without PI or failed attempt (pidistill/methods.py, pidistill/sft.py)."""

import _repo  # noqa: F401  (this checkout's pidistill on sys.path)

from pidistill.io import write_json, write_jsonl
from pidistill.methods import candidate_statistics, filter_candidates
from pidistill.problems import index_problems, read_problems
from pidistill.records import RETRY_SOURCE, SAMPLE, read_rows, read_verdicts
from pidistill.sft import build_pairs
from pidistill.smk import rule_log

with rule_log(snakemake) as log:
    problems = read_problems(snakemake.input.problems)
    index = index_problems(problems)
    source, method_filter = snakemake.params.source, snakemake.params.filter
    first = read_verdicts(snakemake.input.first_verdicts, index, snakemake.input.problems, fields=RETRY_SOURCE)
    if "candidates" in snakemake.input.keys():
        candidates = read_verdicts(snakemake.input.candidates, index, snakemake.input.problems, fields=RETRY_SOURCE)
    else:  # rejection-sampling SFT: the first attempts are the candidates
        candidates = first
    if snakemake.params.trainer in ("grpo", "opsd"):  # they sample their own completions: prompts, not pairs
        kept = []
    else:
        kept = filter_candidates(candidates, first, threshold=method_filter["threshold"],
                                 frontier=method_filter["frontier"])
    pairs = build_pairs(problems, kept)
    write_jsonl(snakemake.output.pairs, pairs)
    stats = candidate_statistics(first, candidates, kept, pairs, source)
    for key in ("hints", "diagnoses"):  # PI another model wrote: its tokens count as the method's
        if key in snakemake.input.keys():
            rows = read_rows(snakemake.input[key], SAMPLE, "samples", problems=index, problems_path=snakemake.input.problems)
            stats["tokens_hints"] = sum(int(h.get("tokens") or 0) for h in rows)
    stats["filter"] = method_filter
    stats["trainer"] = snakemake.params.trainer
    write_json(snakemake.output.stats, stats)
    log.info("%d of %d candidates kept, %d pairs; round stats: %s", len(kept), len(candidates), len(pairs), stats)
