"""tabulate_study: the study's LaTeX table and the numbers its prose quotes."""

import _repo  # noqa: F401  (this checkout's pidistill on sys.path)

import pandas as pd

from pidistill.io import write_json, write_text
from pidistill.report.numbers import conditions_numbers, rounds_numbers
from pidistill.report.tables import conditions_table, rounds_table
from pidistill.smk import rule_log

with rule_log(snakemake) as log:
    study = snakemake.params.study
    name, title = study["name"], study.get("title", study["name"])
    summary = pd.read_csv(snakemake.input.summary)
    runs = pd.read_csv(snakemake.input.runs)
    if study["kind"] == "conditions":
        table = conditions_table(name, title, summary, runs[runs["policy"] != "base"])
        numbers = conditions_numbers(name, summary)
    else:
        table = rounds_table(name, title, summary, study.get("stop_below"))
        numbers = rounds_numbers(name, summary, study.get("stop_below"))
    write_text(snakemake.output.table, table)
    write_json(snakemake.output.numbers, numbers)
    log.info("table and %d quoted numbers written", len(numbers))
