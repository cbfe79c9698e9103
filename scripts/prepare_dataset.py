"""prepare_dataset: write the train and test splits of one dataset as problem records."""

import _repo  # noqa: F401  (this checkout's pidistill on sys.path)

from pidistill.domains.registry import load
from pidistill.problems import write_problems
from pidistill.smk import rule_log

with rule_log(snakemake) as log:
    spec = snakemake.params.spec
    for split in ("train", "test"):
        options = dict(spec.get(f"{split}_options", {}))
        loader = spec.get("test_loader", spec["loader"]) if split == "test" else spec["loader"]
        source = spec.get("test_source", spec.get("source")) if split == "test" else spec.get("source")
        problems = load(loader, source, **options)
        bad = [p.id for p in problems if p.domain != spec["domain"]]
        if bad:
            raise ValueError(f"datasets.{snakemake.wildcards.dataset}.domain is {spec['domain']!r} but {bad[0]} is not")
        n = write_problems(snakemake.output[split], problems)
        log.info("%s: %d problems", split, n)
