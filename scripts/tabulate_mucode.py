"""tabulate_mucode: a µCode study's evaluations as one long CSV, its LaTeX tables (per policy,
selectors, verifier iteration, tests hidden) and the numbers its section quotes
(pidistill.report.mucode)."""

import _repo  # noqa: F401  (this checkout's pidistill on sys.path)

import re

from pidistill.aggregate import write_csv
from pidistill.io import read_json, write_json, write_text
from pidistill.report.mucode import long_rows, numbers, tables
from pidistill.smk import rule_log

with rule_log(snakemake) as log:
    study = snakemake.params.study
    evaluations = [(int(re.search(r"/seed(\d+)/", p).group(1)), read_json(p)) for p in snakemake.input.evaluations]
    df = long_rows(study["name"], evaluations)
    write_csv(df, snakemake.output.csv)
    write_text(snakemake.output.table, tables(study, df))
    write_json(snakemake.output.numbers, numbers(study, df))
    log.info("%s: %d evaluations, %d rows", study["name"], len(evaluations), len(df))
