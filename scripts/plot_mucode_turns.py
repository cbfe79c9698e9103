"""plot_mucode_turns: a µCode study's BoN@t by turn limit (trained with `turns`, evaluated up to
eval.turns): the base and every method's last generator, one panel per evaluation dataset."""

import _repo  # noqa: F401  (this checkout's pidistill on sys.path)

import pandas as pd

from pidistill.report.figures import plot_mucode_turns
from pidistill.report.mucode import LABELS, turn_curves
from pidistill.smk import rule_log

with rule_log(snakemake) as log:
    study = snakemake.params.study
    curves = turn_curves(study, pd.read_csv(snakemake.input.csv))
    plot_mucode_turns(curves, study, LABELS, snakemake.output.pdf, snakemake.output.png)
    log.info("%s: %d points", study["name"], len(curves))
