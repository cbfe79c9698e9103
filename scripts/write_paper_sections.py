"""write_paper_sections: numbers.tex (every quoted number) and studies.tex (one section per study)."""

import _repo  # noqa: F401  (this checkout's pidistill on sys.path)

from pidistill.io import read_json, write_text
from pidistill.report.numbers import numbers_tex
from pidistill.report.sections import studies_tex
from pidistill.smk import rule_log

with rule_log(snakemake) as log:
    values = {}
    for path in snakemake.input.numbers:
        values.update(read_json(path))
    write_text(snakemake.output.numbers, numbers_tex(values))
    write_text(snakemake.output.sections, studies_tex(snakemake.params.studies, snakemake.params.enabled,
                                                      snakemake.params.figures))
    log.info("%d numbers, %d studies", len(values), len(snakemake.params.enabled))
