"""tabulate_levels: base / method / delta per difficulty level, from the per-problem evaluations."""

import _repo  # noqa: F401  (this checkout's pidistill on sys.path)

from pidistill.aggregate import write_csv
from pidistill.config import method_seeds, study_runs
from pidistill.derived import level_rows
from pidistill.io import read_json, write_json, write_text
from pidistill.report.numbers import levels_numbers
from pidistill.report.tables import levels_table
from pidistill.smk import rule_log

with rule_log(snakemake) as log:
    study = snakemake.params.study
    (source, spec), = study["sources"].items()
    runs = study_runs({"studies": {source: spec}}, source)
    evaluations = {(r.seed, r.policy): read_json(p) for r, p in zip(runs, snakemake.input.evaluations, strict=True)}
    rows = level_rows(evaluations, {m: method_seeds(spec, m) for m in spec["methods"]}, spec["methods"], snakemake.params.labels, snakemake.params.bootstrap)
    write_csv(rows, snakemake.output.summary)
    write_text(snakemake.output.table, levels_table(study["name"], study.get("title", study["name"]), rows, source,
                                                    snakemake.params.bootstrap))
    write_json(snakemake.output.numbers, levels_numbers(study["name"], rows))
    log.info("levels: %d rows from %s", len(rows), source)
