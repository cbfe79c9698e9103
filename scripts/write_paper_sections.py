"""write_paper_sections: numbers.tex (every quoted number) and studies.tex (one section per study)."""

import _repo  # noqa: F401  (this checkout's pidistill on sys.path)

from pathlib import Path

from pidistill.io import read_json, write_text
from pidistill.report.numbers import numbers_tex
from pidistill.report.sections import provenance_tex, studies_tex
from pidistill.smk import rule_log

with rule_log(snakemake) as log:
    values = {}
    for path in snakemake.input.numbers:
        values.update(read_json(path))
    write_text(snakemake.output.numbers, numbers_tex(values))
    provenance = provenance_tex(
        {Path(p).name.removesuffix(".provenance.json"): read_json(p) for p in snakemake.input.models},
        {Path(p).parent.name: read_json(p) for p in snakemake.input.datasets},
    )
    write_text(snakemake.output.sections, studies_tex(snakemake.params.studies, snakemake.params.enabled,
                                                      snakemake.params.figures, provenance, values,
                                                      snakemake.params.methods))
    log.info("%d numbers, %d studies", len(values), len(snakemake.params.enabled))
