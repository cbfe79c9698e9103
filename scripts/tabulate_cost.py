"""tabulate_cost: compute and job time per study from the heavy jobs' benchmark files, shared jobs split equally."""

import _repo  # noqa: F401  (this checkout's pidistill on sys.path)

from pidistill.aggregate import write_csv
from pidistill.derived import cost_rows, read_benchmark
from pidistill.io import write_text
from pidistill.report.tables import cost_table
from pidistill.smk import rule_log

with rule_log(snakemake) as log:
    study = snakemake.params.study
    timings = {p: read_benchmark(p) for p in snakemake.input.benchmarks}
    rows = cost_rows(snakemake.params.jobs, timings, study["device"])
    write_csv(rows, snakemake.output.summary)
    write_text(snakemake.output.table, cost_table(study["name"], study.get("title", study["name"]), rows, study["device"]))
    log.info("%d benchmark files over %d studies", len(timings), len(snakemake.params.jobs))
