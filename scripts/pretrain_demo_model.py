"""pretrain_demo_model: build and pretrain the demo's tiny chat model, save it like a hub model."""

import _repo  # noqa: F401  (this checkout's pidistill on sys.path)

from pidistill.io import write_json
from pidistill.retry import DEFAULT_RETRY_TEXT
from pidistill.smk import rule_log
from pidistill.tinymodel import TinyModelConfig, corpus_dialogues, pretrain, tokenizer_corpus

with rule_log(snakemake) as log:
    spec = dict(snakemake.params.pretrain)
    datasets = spec.pop("datasets")
    tokenizer_datasets = spec.pop("tokenizer_datasets", [])
    cfg = TinyModelConfig(**spec)
    retry_texts = {d: t or DEFAULT_RETRY_TEXT[d] for d, t in snakemake.params.retry_texts.items()}
    dialogues = corpus_dialogues(snakemake.params.loaders, retry_texts, cfg)
    log.info("corpus: %d dialogues", len(dialogues))
    tokenizer_dialogues = []
    if tokenizer_datasets:
        tokenizer_dialogues = tokenizer_corpus(snakemake.params.tokenizer_loaders, retry_texts, cfg, len(datasets))
        log.info("tokenizer corpus: %d more dialogues (%s)", len(tokenizer_dialogues), ", ".join(tokenizer_datasets))
    init_dir = snakemake.input.init[0] if cfg.init_from else None
    if init_dir:
        log.info("continuing the pretraining of %s (%s)", cfg.init_from, init_dir)
    info = pretrain(snakemake.output.model, cfg, dialogues, threads=snakemake.threads, init_dir=init_dir,
                    tokenizer_dialogues=tokenizer_dialogues)
    write_json(snakemake.output.summary, {"config": cfg.__dict__, "n_dialogues": len(dialogues), **info})
