"""build_opsd_prompts: the problems an OPSD method trains on (its source and filter), each with the
student's prompt and the teacher's PI (pidistill/opsd.py)."""

import _repo  # noqa: F401  (this checkout's pidistill on sys.path)

from pidistill.io import write_jsonl
from pidistill.opsd import OPSDSettings, training_rows
from pidistill.problems import index_problems, read_problems
from pidistill.records import RETRY_SOURCE, read_rows, read_verdicts
from pidistill.skeletons import SKELETON, with_skeletons
from pidistill.smk import rule_log

with rule_log(snakemake) as log:
    problems = read_problems(snakemake.input.problems)
    if "skeletons" in snakemake.input.keys():  # the dataset's skeleton source (rule check_skeletons)
        problems = with_skeletons(problems, read_rows(snakemake.input.skeletons, SKELETON, "skeletons",
                                                      problems=index_problems(problems),
                                                      problems_path=snakemake.input.problems))
    index = index_problems(problems)
    first = read_verdicts(snakemake.input.first_verdicts, index, snakemake.input.problems, fields=RETRY_SOURCE)
    candidates = None
    if "candidates" in snakemake.input.keys():
        candidates = read_verdicts(snakemake.input.candidates, index, snakemake.input.problems, fields=RETRY_SOURCE)
    settings = OPSDSettings.from_config(snakemake.params.pi)  # the PI settings only: the rest is the trainer's
    rows, stats = training_rows(problems, first, candidates, snakemake.params.filter, settings)
    write_jsonl(snakemake.output[0], rows)
    log.info("OPSD prompts (%s, filter %s): %s", "from the source's candidates" if candidates is not None
             else "every training problem", snakemake.params.filter, stats)
