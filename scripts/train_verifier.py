"""train_verifier: the learned verifier of one µCode iteration, initialised from the base generator and
trained (Bradley-Terry or BCE) on the rollouts of every iteration so far (pidistill.reward); then
every distinct code of those rollouts is scored, for relabeling."""

import _repo  # noqa: F401  (this checkout's pidistill on sys.path)

from pidistill.io import read_jsonl, write_jsonl
from pidistill.problems import index_problems, read_problems
from pidistill.provenance import pinned_revision
from pidistill.reward import VerifierScorer, VerifierSettings, train_verifier
from pidistill.sft import setup_torch
from pidistill.smk import rule_log

with rule_log(snakemake) as log:
    study = snakemake.params.study
    problems = read_problems(snakemake.input.problems)
    rows = [r for path in snakemake.input.rollouts for r in read_jsonl(path)]
    summary = train_verifier(snakemake.params.model, problems, rows,
                             VerifierSettings.from_config(study.get("verifier", {})), int(snakemake.wildcards.seed),
                             snakemake.output.model, threads=snakemake.threads,
                             revision=pinned_revision(snakemake.input.model_provenance))
    setup_torch(snakemake.threads)
    by_id = index_problems(problems)
    keys = sorted({(r["id"], r["code"]) for r in rows if r["code"].strip()})
    scores = VerifierScorer(snakemake.output.model)([(by_id[pid], code) for pid, code in keys])
    write_jsonl(snakemake.output.scores, [{"id": pid, "code": code, "score": s} for (pid, code), s in zip(keys, scores)])
    log.info("verifier (%s): trained=%s, %s; %d codes scored", summary["settings"]["loss"], summary["trained"],
             summary.get("n_pairs", summary.get("n_examples")), len(keys))
