"""resolve_model: record the commit (hub) or content hash (local) of one configured model."""

import _repo  # noqa: F401  (this checkout's pidistill on sys.path)

from pidistill.io import write_json
from pidistill.provenance import model_provenance
from pidistill.smk import rule_log

with rule_log(snakemake) as log:
    record = model_provenance(snakemake.params.spec, snakemake.params.path)
    write_json(snakemake.output[0], record)
    log.info("%s: %s", snakemake.wildcards.model, record)
