"""aggregate_study: one CSV row per run, the study's summary (per condition or per round), curves."""

import _repo  # noqa: F401  (this checkout's pidistill on sys.path)

from pidistill.aggregate import condition_summary, round_summary, run_rows, training_curves, write_csv
from pidistill.config import study_runs
from pidistill.io import read_json
from pidistill.smk import rule_log

with rule_log(snakemake) as log:
    study = snakemake.params.study
    config_like = {"studies": {study["name"]: study}}
    runs = study_runs(config_like, study["name"])
    trained = [r for r in runs if r.policy != "base"]
    # the rule lists inputs in study_runs order: evaluations for every run, the rest for trained runs
    evaluations = {(r.run_dir, r.policy): read_json(p) for r, p in zip(runs, snakemake.input.evaluations, strict=True)}
    stats = {(r.run_dir, r.policy): read_json(p) for r, p in zip(trained, snakemake.input.round_stats, strict=True)}
    trainings = {(r.run_dir, r.policy): read_json(f"{p}/training.json")
                 for r, p in zip(trained, snakemake.input.adapters, strict=True)}
    df = run_rows(runs, evaluations, stats, trainings, study["labels"], snakemake.params.bootstrap)
    write_csv(df, snakemake.output.runs)
    if study["kind"] == "conditions":
        summary = condition_summary(df[df["policy"] != "base"], study["methods"])
    else:
        summary = round_summary(df, study.get("stop_below"))
    write_csv(summary, snakemake.output.summary)
    write_csv(training_curves(runs, trainings), snakemake.output.curves)
    log.info("%d runs aggregated", len(df))
