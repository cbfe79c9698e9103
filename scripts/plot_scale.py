"""plot_scale: the inverted-U figure, baseline pass@1 against gain over every conditions study it draws from."""

import _repo  # noqa: F401  (this checkout's pidistill on sys.path)

import pandas as pd

from pidistill.aggregate import write_csv
from pidistill.derived import DEFAULT_BAND, scale_points
from pidistill.report.figures import plot_scale
from pidistill.smk import rule_log

with rule_log(snakemake) as log:
    study = snakemake.params.study
    band = tuple(study.get("band", DEFAULT_BAND))
    points = scale_points([pd.read_csv(p) for p in snakemake.input.runs], band)
    write_csv(points, snakemake.output.points)
    plot_scale(points, band, study.get("title", study["name"]), snakemake.output.pdf, snakemake.output.png)
    log.info("%d points, %d in the band", len(points), int(points["in_band"].sum()))
