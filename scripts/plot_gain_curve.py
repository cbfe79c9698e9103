"""plot_gain_curve: a conditions study's gain against a setting of its methods (K retries per failure)."""

import _repo  # noqa: F401  (this checkout's pidistill on sys.path)

import pandas as pd

from pidistill.report.figures import plot_gain_curve
from pidistill.smk import rule_log

XLABELS = {"k": "retries per failed first attempt (K)"}

with rule_log(snakemake) as log:
    study = snakemake.params.study
    runs = pd.read_csv(snakemake.input.runs)
    plot_gain_curve(pd.read_csv(snakemake.input.summary), runs[runs["policy"] != "base"], snakemake.params.values,
                    XLABELS[study["curve"]], study.get("title", study["name"]), snakemake.output.pdf,
                    snakemake.output.png)
    log.info("gain curve over %s: %s", study["curve"], snakemake.params.values)
