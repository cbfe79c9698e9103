"""train_generator: one µCode method's generator for the next iteration, fine-tuned from the base model
(every iteration starts again from it, as the authors do) on that method's relabeled pairs."""

import _repo  # noqa: F401  (this checkout's pidistill on sys.path)

from pidistill.io import read_jsonl
from pidistill.provenance import pinned_revision
from pidistill.sft import TrainSettings, train_adapter
from pidistill.smk import rule_log

with rule_log(snakemake) as log:
    pairs = read_jsonl(snakemake.input.pairs)
    settings = TrainSettings.from_config({"trainer": "full", **snakemake.params.study.get("generator", {})})
    summary = train_adapter(pairs, snakemake.params.model, [], settings, int(snakemake.wildcards.seed),
                            snakemake.output[0], threads=snakemake.threads,
                            revision=pinned_revision(snakemake.input.model_provenance))
    log.info("generator %s: trained=%s on %d pairs (%s)", snakemake.wildcards.method, summary["trained"],
             len(pairs), summary["reason"])
