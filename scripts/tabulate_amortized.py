"""tabulate_amortized: base vs a later round of a rounds study: pass@1, pass@N, gap, headroom internalised."""

import _repo  # noqa: F401  (this checkout's pidistill on sys.path)

from pidistill.aggregate import write_csv
from pidistill.derived import amortized_rows
from pidistill.io import read_json, write_json, write_text
from pidistill.report.numbers import amortized_numbers
from pidistill.report.tables import amortized_table
from pidistill.smk import rule_log

with rule_log(snakemake) as log:
    study = snakemake.params.study
    (source, spec), = study["sources"].items()
    round_ = snakemake.params.round
    # the rule lists, per seed in study_runs order, the base evaluation and the one after round_
    evaluations = [read_json(p) for p in snakemake.input.evaluations]
    if len(evaluations) != 2 * len(spec["seeds"]):
        raise ValueError(f"expected a base and a round-{round_} evaluation per seed, got {len(evaluations)} files")
    pairs = [(seed, evaluations[2 * i], evaluations[2 * i + 1]) for i, seed in enumerate(spec["seeds"])]
    rows = amortized_rows(pairs, round_, snakemake.params.bootstrap)
    write_csv(rows, snakemake.output.summary)
    write_text(snakemake.output.table, amortized_table(study["name"], study.get("title", study["name"]), rows,
                                                       source, snakemake.params.bootstrap))
    write_json(snakemake.output.numbers, amortized_numbers(study["name"], rows))
    log.info("amortized: %d seed(s) of %s, round %d", len(pairs), source, round_)
