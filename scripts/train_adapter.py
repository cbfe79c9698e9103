"""train_adapter: one round of training on the parent policy, by the method's ``train.trainer``:
``lora`` (LoRA SFT on the pairs, the default), ``full`` (full fine-tune on the pairs), ``grpo``
(GRPO with the failure-shaped reward on the problems whose first attempts failed) or ``opsd``
(on-policy self-distillation from the PI teacher, on the prompts of build_opsd_prompts).

pidistill.grpo and pidistill.opsd are imported by name, so the code walk (pidistill/codedeps.py)
does not make them code inputs of the SFT jobs: a GRPO job's rule lists pidistill.grpo and the
domain's verifier module itself (``code("scripts/train_adapter.py", "pidistill.grpo",
verifier_module(domain))``), an OPSD job's pidistill.opsd, and rule_log checks that it did.
pidistill.sft (which both build on) is a code input of every training job.
"""

import importlib

import _repo  # noqa: F401  (this checkout's pidistill on sys.path)

from pidistill.provenance import pinned_revision
from pidistill.records import OPSD_PROMPT, RETRY_SOURCE, read_pairs, read_rows, read_verdicts
from pidistill.sft import TRAINERS, TrainSettings, train_adapter
from pidistill.smk import rule_log

with rule_log(snakemake) as log:
    trainer = snakemake.params.train.get("trainer", "lora")
    if trainer not in (*TRAINERS, "grpo", "opsd"):
        raise ValueError(f"train.trainer {trainer!r}: known trainers are "
                         f"{', '.join(sorted((*TRAINERS, 'grpo', 'opsd')))}")
    common = dict(
        model=snakemake.params.model,
        parent_adapters=snakemake.input.parent_adapters,
        seed=int(snakemake.wildcards.seed),
        out_dir=snakemake.output[0],
        threads=snakemake.threads,
        revision=pinned_revision(snakemake.input.model_provenance),
    )
    if trainer == "grpo":
        from pidistill.problems import index_problems, read_problems

        grpo = importlib.import_module("pidistill.grpo")
        problems = read_problems(snakemake.input.problems)
        first = read_verdicts(snakemake.input.first_verdicts, index_problems(problems), snakemake.input.problems,
                              fields=RETRY_SOURCE)
        summary = grpo.train_grpo(
            problems, first, settings=grpo.GRPOSettings.from_config(snakemake.params.train),
            verifier=dict(snakemake.params.verifier),
            chat_template_kwargs=dict(getattr(snakemake.params, "chat_template_kwargs", None) or {}),
            **common,
        )
        log.info("grpo: trained=%s on %d prompts (%s)", summary["trained"], summary["n_prompts"], summary["reason"])
    elif trainer == "opsd":
        opsd = importlib.import_module("pidistill.opsd")
        rows = read_rows(snakemake.input.prompts, OPSD_PROMPT, "OPSD prompts")
        summary = opsd.train_opsd(
            rows, settings=opsd.OPSDSettings.from_config(snakemake.params.train),
            chat_template_kwargs=dict(getattr(snakemake.params, "chat_template_kwargs", None) or {}),
            **common,
        )
        log.info("opsd: trained=%s on %d prompts (%s)", summary["trained"], summary["n_prompts"], summary["reason"])
    else:
        pairs = read_pairs(snakemake.input.pairs)
        summary = train_adapter(pairs, settings=TrainSettings.from_config(snakemake.params.train), **common)
        log.info("%s: trained=%s on %d pairs (%s)", trainer, summary["trained"], summary["n_pairs"], summary["reason"])
