# pidistill: raw datasets -> first attempts -> retries -> filtered SFT data -> LoRA adapters ->
# evaluations -> aggregate CSVs -> figures and LaTeX tables -> the paper PDF.
#
# `snakemake --cores 2 all` runs the embedded demo (config/config.yaml) on a CPU.
# Each stage has its own rule file; rules/common.smk holds config helpers and target lists.

from snakemake.utils import min_version

min_version("9.0")


report: "report/workflow.rst"


configfile: f"{workflow.basedir}/config/config.yaml"  # the demo; --configfile adds to it


include: "rules/common.smk"


wildcard_constraints:
    dataset="[A-Za-z0-9_.-]+",
    model="[A-Za-z0-9_-]+",
    seed="[0-9]+",
    policy="base(/r[0-9]+-[a-z0-9_]+)*",
    parent="base(/r[0-9]+-[a-z0-9_]+)*",
    round="[0-9]+",
    method="[a-z0-9_]+",
    split="train|test",
    kind="first_attempts|eval_samples|sources/[a-z0-9_.-]+/samples",
    source="[a-z0-9_.-]+",
    hint="[a-z0-9_-]+",
    study="[a-z0-9_]+",
    iteration="[0-9]+",


include: "rules/data.smk"
include: "rules/model.smk"
include: "rules/sample.smk"
include: "rules/verify.smk"
include: "rules/train.smk"
include: "rules/evaluate.smk"
include: "rules/report.smk"
include: "rules/derived.smk"
include: "rules/mucode.smk"


# Figures, tables and LaTeX are quick and need the whole results tree, and evaluation, pair (and
# OPSD prompt) building and aggregation read a few small JSON files in about a second: on a cluster they all run on the
# submit host, not as jobs that would each wait in the queue for a node. Downloads too: the submit
# host reaches the network.
localrules:
    all,
    paper_inputs,
    build_sft_pairs,
    build_opsd_prompts,
    evaluate_policy,
    aggregate_study,
    plot_condition_study,
    plot_round_study,
    tabulate_study,
    tabulate_amortized,
    tabulate_levels,
    plot_scale,
    tabulate_scale,
    tabulate_domains,
    tabulate_cost,
    tabulate_methods,
    tabulate_hierarchy,
    plot_gain_curve,
    write_paper_sections,
    build_paper,
    resolve_model,
    download_raw_dataset,
    install_lean_server,
    relabel_trajectories,
    tabulate_mucode,
    plot_mucode_turns,


# Local runs: one server that has imported torch & co. runs each job's script in a fork of itself
# (pidistill/worker.py; config key warm_worker).
onstart:
    start_warm_worker()


onsuccess:
    stop_warm_worker()


onerror:
    stop_warm_worker()


rule all:
    default_target: True
    input:
        PAPER_PDF,
