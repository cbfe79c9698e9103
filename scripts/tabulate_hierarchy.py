"""tabulate_hierarchy: the methods of the studies a hierarchy study lists (a rounds study: one row per
round), largest gain first, with computed notes (the documents' Lean hierarchy table)."""

import _repo  # noqa: F401  (this checkout's pidistill on sys.path)

import pandas as pd

from pidistill.aggregate import write_csv
from pidistill.derived import method_rows
from pidistill.io import read_json, write_json, write_text
from pidistill.report.numbers import hierarchy_numbers
from pidistill.report.tables import hierarchy_table
from pidistill.smk import rule_log

with rule_log(snakemake) as log:
    study = snakemake.params.study
    sources = list(study["sources"])  # the rule lists summaries and overlaps in this order
    summaries = {s: pd.read_csv(p) for s, p in zip(sources, snakemake.input.summaries, strict=True)}
    specs = snakemake.params.specs
    overlaps = {specs[s]["dataset"]: read_json(p) for s, p in zip(sources, snakemake.input.overlaps, strict=True)}
    rows = method_rows(summaries, specs, overlaps, snakemake.params.band, snakemake.params.notes)
    write_csv(rows, snakemake.output.summary)
    write_text(snakemake.output.table, hierarchy_table(study["name"], study.get("title", study["name"]), rows,
                                                       snakemake.params.bootstrap))
    write_json(snakemake.output.numbers, hierarchy_numbers(study["name"], rows))
    log.info("hierarchy: %d rows from %d studies", len(rows), len(sources))
