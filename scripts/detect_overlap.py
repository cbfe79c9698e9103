"""detect_overlap: how many test problems also appear, by content, in the training split."""

import _repo  # noqa: F401  (this checkout's pidistill on sys.path)

from pidistill.io import write_json
from pidistill.overlap import split_overlap
from pidistill.problems import read_problems
from pidistill.smk import rule_log

with rule_log(snakemake) as log:
    overlap = split_overlap(read_problems(snakemake.input.train), read_problems(snakemake.input.test))
    write_json(snakemake.output[0], overlap)
    log.info("%d of %d test problems are in the training split", overlap["n_test_in_train"], overlap["n_test"])
