"""tabulate_methods: the method table (every run study's methods) and the numbers its prose quotes."""

import _repo  # noqa: F401  (this checkout's pidistill on sys.path)

import pandas as pd

from pidistill.aggregate import write_csv
from pidistill.derived import method_rows
from pidistill.io import read_json, write_json, write_text
from pidistill.report.numbers import conditions_numbers, methods_numbers
from pidistill.report.tables import methods_table
from pidistill.smk import rule_log

with rule_log(snakemake) as log:
    study = snakemake.params.study
    studies = snakemake.params.studies  # the rule lists summaries and overlaps in this order
    summaries = {s: pd.read_csv(p) for s, p in zip(studies, snakemake.input.summaries, strict=True)}
    specs = snakemake.params.specs
    overlaps = {specs[s]["dataset"]: read_json(p) for s, p in zip(studies, snakemake.input.overlaps, strict=True)}
    rows = method_rows(summaries, specs, overlaps, snakemake.params.band, snakemake.params.notes)
    write_csv(rows, snakemake.output.methods)
    write_text(snakemake.output.table, methods_table(study["name"], study.get("title", study["name"]), rows,
                                                     snakemake.params.bootstrap))
    numbers = {**conditions_numbers(study["name"], summaries[study["name"]]), **methods_numbers(study["name"], rows)}
    write_json(snakemake.output.numbers, numbers)
    log.info("method table: %d rows from %d studies", len(rows), len(studies))
