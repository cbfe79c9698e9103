"""relabel_trajectories: one method's generator training pairs from the rollouts of every iteration so
far and the verifier's scores of their codes (pidistill.mucode.relabel)."""

import _repo  # noqa: F401  (this checkout's pidistill on sys.path)

from pidistill.io import read_jsonl, write_jsonl
from pidistill.mucode import FEEDBACK_TEMPLATE, relabel
from pidistill.problems import read_problems
from pidistill.smk import rule_log

with rule_log(snakemake) as log:
    study = snakemake.params.study
    problems = read_problems(snakemake.input.problems)
    rows = [r for path in snakemake.input.rollouts for r in read_jsonl(path)]
    scores = {(r["id"], r["code"]): r["score"] for r in read_jsonl(snakemake.input.scores)}
    pairs = relabel(snakemake.wildcards.method, rows, problems, scores, top_k=study.get("rft_top_k", 6),
                    template=study.get("feedback_template", FEEDBACK_TEMPLATE))
    write_jsonl(snakemake.output[0], pairs)
    log.info("%s: %d pairs over %d problems from %d turns", snakemake.wildcards.method, len(pairs),
             len({p["id"] for p in pairs}), len(rows))
