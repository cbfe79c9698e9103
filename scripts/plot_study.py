"""plot_condition_study / plot_round_study: the study's figures from its aggregate CSVs."""

import _repo  # noqa: F401  (this checkout's pidistill on sys.path)

import pandas as pd

from pidistill.report.figures import plot_condition_gains, plot_rounds, plot_training_curves
from pidistill.smk import rule_log

with rule_log(snakemake) as log:
    study = snakemake.params.study
    title = study.get("title", study["name"])
    summary = pd.read_csv(snakemake.input.summary)
    runs = pd.read_csv(snakemake.input.runs)
    if study["kind"] == "conditions":
        plot_condition_gains(summary, runs, title, snakemake.output.gains_pdf, snakemake.output.gains_png)
        plot_training_curves(pd.read_csv(snakemake.input.curves), study["labels"], title,
                             snakemake.output.training_pdf, snakemake.output.training_png)
    else:
        plot_rounds(summary, study.get("stop_below"), title, snakemake.output.rounds_pdf, snakemake.output.rounds_png)
    log.info("figures written: %s", list(snakemake.output))
