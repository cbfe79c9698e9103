"""tabulate_study: the study's LaTeX table and the numbers its prose quotes."""

import _repo  # noqa: F401  (this checkout's pidistill on sys.path)

import pandas as pd

from pidistill.io import read_json, write_json, write_text
from pidistill.report.numbers import conditions_numbers, rounds_numbers
from pidistill.report.tables import conditions_table, rounds_table
from pidistill.smk import rule_log

with rule_log(snakemake) as log:
    study = snakemake.params.study
    name, title = study["name"], study.get("title", study["name"])
    summary = pd.read_csv(snakemake.input.summary)
    runs = pd.read_csv(snakemake.input.runs)
    overlap = read_json(snakemake.input.overlap)
    bootstrap = snakemake.params.bootstrap
    if study["kind"] == "conditions":
        table = conditions_table(name, title, summary, runs[runs["policy"] != "base"], overlap, bootstrap)
        numbers = conditions_numbers(name, summary)
    else:
        table = rounds_table(name, title, summary, study.get("stop_below"), overlap, bootstrap)
        numbers = rounds_numbers(name, summary, study.get("stop_below"))
    write_text(snakemake.output.table, table)
    numbers[f"{name}/overlap"] = f"{100 * overlap['fraction']:.0f}"
    write_json(snakemake.output.numbers, numbers)
    log.info("table and %d quoted numbers written", len(numbers))
