"""download_raw_dataset: a dataset's raw file from its pinned URL, checked against its sha256."""

import _repo  # noqa: F401  (this checkout's pidistill on sys.path)

from pidistill.download import download
from pidistill.smk import rule_log

with rule_log(snakemake) as log:
    got = download(snakemake.params.url, snakemake.output[0], snakemake.params.sha256)
    log.info("%s: %d bytes, sha256 %s", got["url"], got["bytes"], got["sha256"])
