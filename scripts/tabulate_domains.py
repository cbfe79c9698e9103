"""tabulate_domains: model, method, gain and a computed note per domain."""

import _repo  # noqa: F401  (this checkout's pidistill on sys.path)

import pandas as pd

from pidistill.aggregate import write_csv
from pidistill.derived import domain_rows
from pidistill.io import read_json, write_json, write_text
from pidistill.report.numbers import domains_numbers
from pidistill.report.tables import domains_table
from pidistill.smk import rule_log

with rule_log(snakemake) as log:
    study = snakemake.params.study
    sources = list(study["sources"])  # the rule lists summaries and overlaps in this order
    summaries = {s: pd.read_csv(p) for s, p in zip(sources, snakemake.input.summaries, strict=True)}
    overlaps = {study["sources"][s]["dataset"]: read_json(p) for s, p in zip(sources, snakemake.input.overlaps, strict=True)}
    specs = {s: {"dataset": study["sources"][s]["dataset"], "model": study["sources"][s]["model"],
                 "domain": snakemake.params.domains[s]} for s in sources}
    rows = domain_rows(summaries, specs, overlaps, study.get("methods"))
    write_csv(rows, snakemake.output.summary)
    write_text(snakemake.output.table, domains_table(study["name"], study.get("title", study["name"]), rows,
                                                     snakemake.params.bootstrap))
    write_json(snakemake.output.numbers, domains_numbers(study["name"], rows))
    log.info("%d domain rows", len(rows))
