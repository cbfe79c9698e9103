"""pretrain_demo_model: build and pretrain the demo's tiny chat model, save it like a hub model."""

import _repo  # noqa: F401  (this checkout's pidistill on sys.path)

from pidistill.io import write_json
from pidistill.retry import DEFAULT_RETRY_TEXT
from pidistill.smk import rule_log
from pidistill.tinymodel import TinyModelConfig, corpus_dialogues, pretrain

with rule_log(snakemake) as log:
    spec = dict(snakemake.params.pretrain)
    spec.pop("datasets")
    cfg = TinyModelConfig(**spec)
    retry_texts = {d: t or DEFAULT_RETRY_TEXT[d] for d, t in snakemake.params.retry_texts.items()}
    dialogues = corpus_dialogues(snakemake.params.loaders, retry_texts, cfg)
    log.info("corpus: %d dialogues", len(dialogues))
    init_dir = snakemake.input.init[0] if cfg.init_from else None
    if init_dir:
        log.info("continuing the pretraining of %s (%s)", cfg.init_from, init_dir)
    info = pretrain(snakemake.output.model, cfg, dialogues, threads=snakemake.threads, init_dir=init_dir)
    write_json(snakemake.output.summary, {"config": cfg.__dict__, "n_dialogues": len(dialogues), **info})
