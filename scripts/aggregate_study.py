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
    root = f"{snakemake.params.results}/runs"
    evaluations = {(r.run_dir, r.policy): read_json(f"{root}/{r.run_dir}/{r.policy}/evaluation.json") for r in runs}
    stats = {(r.run_dir, r.policy): read_json(f"{root}/{r.run_dir}/{r.policy}/round_stats.json")
             for r in runs if r.policy != "base"}
    trainings = {(r.run_dir, r.policy): read_json(f"{root}/{r.run_dir}/{r.policy}/adapter/training.json")
                 for r in runs if r.policy != "base"}
    df = run_rows(runs, evaluations, stats, trainings, study["labels"])
    write_csv(df, snakemake.output.runs)
    if study["kind"] == "conditions":
        summary = condition_summary(df[df["policy"] != "base"], study["methods"])
    else:
        summary = round_summary(df, study.get("stop_below"))
    write_csv(summary, snakemake.output.summary)
    write_csv(training_curves(runs, trainings), snakemake.output.curves)
    log.info("%d runs aggregated", len(df))
