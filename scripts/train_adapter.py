"""train_adapter: LoRA SFT (TRL SFTTrainer + PEFT) of one round on the parent policy."""

import _repo  # noqa: F401  (this checkout's pidistill on sys.path)

from pidistill.records import read_pairs
from pidistill.sft import TrainSettings, train_adapter
from pidistill.provenance import pinned_revision
from pidistill.smk import rule_log

with rule_log(snakemake) as log:
    pairs = read_pairs(snakemake.input.pairs)
    summary = train_adapter(
        pairs,
        model=snakemake.params.model,
        parent_adapters=snakemake.input.parent_adapters,
        settings=TrainSettings.from_config(snakemake.params.train),
        seed=int(snakemake.wildcards.seed),
        out_dir=snakemake.output[0],
        threads=snakemake.threads,
        revision=pinned_revision(snakemake.input.model_provenance),
    )
    log.info("trained=%s on %d pairs (%s)", summary["trained"], summary["n_pairs"], summary["reason"])
