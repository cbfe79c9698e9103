"""evaluate_policy: pass@1 and unbiased pass@k on the test split, per-problem results kept."""

import _repo  # noqa: F401  (this checkout's pidistill on sys.path)

from pidistill.evaluate import summarize
from pidistill.io import read_jsonl, write_json
from pidistill.problems import read_problems
from pidistill.smk import rule_log

with rule_log(snakemake) as log:
    summary = summarize(read_problems(snakemake.input.problems), read_jsonl(snakemake.input.verdicts), snakemake.params.ks)
    write_json(snakemake.output[0], summary)
    log.info("metrics: %s", summary["metrics"])
