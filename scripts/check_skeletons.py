"""check_skeletons: the skeleton model's outlines judged as outlines by the formal verifier's checker
(pidistill.verifiers.formal.check_outlines); the valid ones are the dataset's skeleton PI."""

import os
from collections import Counter
from pathlib import Path

import _repo  # noqa: F401  (this checkout's pidistill on sys.path)

from pidistill.io import write_jsonl
from pidistill.problems import index_problems, read_problems
from pidistill.records import SAMPLE, read_rows
from pidistill.smk import rule_log
from pidistill.verifiers import VerifierSettings
from pidistill.verifiers.formal import check_outlines

# a Lean server this job starts (verifier.lean_server) writes its output beside the job's log
os.environ["PIDISTILL_LEAN_SERVER_LOG"] = str(Path(snakemake.log[0]).with_suffix(".server.log"))
with rule_log(snakemake) as log:
    problems = read_problems(snakemake.input.problems)
    outlines = read_rows(snakemake.input.outlines, SAMPLE, "samples", problems=index_problems(problems),
                         problems_path=snakemake.input.problems)
    checked = check_outlines(problems, outlines, VerifierSettings.from_config(snakemake.params.verifier))
    write_jsonl(snakemake.output[0], checked)
    log.info("%d of %d outlines are skeletons; the others: %s", sum(r["skeleton"] is not None for r in checked),
             len(checked), dict(sorted(Counter(r["reason"] for r in checked if r["skeleton"] is None).items())))
