# pidistill: raw datasets -> first attempts -> retries -> filtered SFT data -> LoRA adapters ->
# evaluations -> aggregate CSVs -> figures and LaTeX tables -> the paper PDF.
#
# `snakemake --cores 2 all` runs the embedded demo (config/config.yaml) on a CPU.
# Each stage has its own rule file; rules/common.smk holds config helpers and target lists.

from snakemake.utils import min_version

min_version("9.0")


configfile: "config/config.yaml"


include: "rules/common.smk"
include: "rules/data.smk"
include: "rules/model.smk"
include: "rules/sample.smk"
include: "rules/verify.smk"
include: "rules/train.smk"
include: "rules/evaluate.smk"
include: "rules/report.smk"


rule all:
    input:
        PAPER_PDF,
    default_target: True
