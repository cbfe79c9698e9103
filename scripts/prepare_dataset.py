"""prepare_dataset: write the train and test splits of one dataset as problem records, with provenance."""

import _repo  # noqa: F401  (this checkout's pidistill on sys.path)

from pidistill.domains.registry import load
from pidistill.io import write_json
from pidistill.problems import write_problems
from pidistill.provenance import collect_hub_loads, sha256_path
from pidistill.smk import rule_log

with rule_log(snakemake) as log:
    spec = snakemake.params.spec  # domain, and per split: loader, options, local source file
    domain = spec["domain"]
    record = {"dataset": snakemake.wildcards.dataset, "domain": domain, "splits": {}}
    for split in ("train", "test"):
        loader, options, source = (spec[split][k] for k in ("loader", "options", "source"))
        options = dict(options)
        with collect_hub_loads() as hub_loads:
            problems = load(loader, source, **options)
        bad = [p.id for p in problems if p.domain != domain]
        if bad:
            raise ValueError(f"datasets.{snakemake.wildcards.dataset}.domain is {domain!r} but {bad[0]} is not")
        n = write_problems(snakemake.output[split], problems)
        entry = {"loader": loader, "options": options, "problems": n, "sha256": sha256_path(snakemake.output[split])}
        if source:
            entry.update(origin="file", source=source, source_sha256=sha256_path(source))
        elif hub_loads:
            entry.update(origin="hub", hub=hub_loads)
        else:
            entry.update(origin="generated")  # a seeded generator (the toy domains): loader + options say it all
        record["splits"][split] = entry
        log.info("%s: %d problems (%s)", split, n, entry["origin"])
    write_json(snakemake.output.provenance, record)
