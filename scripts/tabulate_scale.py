"""tabulate_scale: the learning-rate table of the scale study's sweep, and the band statement of its points."""

import _repo  # noqa: F401  (this checkout's pidistill on sys.path)

import pandas as pd

from pidistill.aggregate import write_csv
from pidistill.derived import DEFAULT_BAND, band_statement, lr_rows
from pidistill.io import write_json, write_text
from pidistill.report.numbers import scale_numbers
from pidistill.report.tables import lr_table
from pidistill.smk import rule_log

with rule_log(snakemake) as log:
    study = snakemake.params.study
    band = tuple(study.get("band", DEFAULT_BAND))
    points = pd.read_csv(snakemake.input.points)
    lr = lr_rows(pd.read_csv(snakemake.input.lr_summary), snakemake.params.lr_settings)
    write_csv(lr, snakemake.output.lr)
    write_text(snakemake.output.table, lr_table(study["name"], study.get("title", study["name"]), lr, study["lr_study"],
                                                snakemake.params.bootstrap))
    write_json(snakemake.output.numbers, scale_numbers(study["name"], points, band_statement(points, band), lr))
    log.info("learning rates %s", list(lr["learning_rate"]))
