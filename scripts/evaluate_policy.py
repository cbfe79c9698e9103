"""evaluate_policy: pass@1 and unbiased pass@k on the test split, per-problem results kept."""

import _repo  # noqa: F401  (this checkout's pidistill on sys.path)

from pidistill.evaluate import summarize
from pidistill.io import write_json
from pidistill.problems import index_problems, read_problems
from pidistill.records import read_verdicts
from pidistill.smk import rule_log

with rule_log(snakemake) as log:
    problems = read_problems(snakemake.input.problems)
    verdicts = read_verdicts(snakemake.input.verdicts, index_problems(problems), snakemake.input.problems)
    summary = summarize(problems, verdicts, snakemake.params.ks)
    write_json(snakemake.output[0], summary)
    log.info("metrics: %s", summary["metrics"])
