# Aggregation, figures, tables, quoted numbers and the paper PDF.


rule aggregate_study:
    input:
        evaluations=lambda wildcards: study_evaluations(wildcards.study),
        round_stats=lambda wildcards: study_round_stats(wildcards.study),
        adapters=lambda wildcards: study_adapters(wildcards.study),
        code=code("scripts/aggregate_study.py"),
    output:
        runs=f"{R}/studies/{{study}}/runs.csv",
        summary=f"{R}/studies/{{study}}/summary.csv",
        curves=f"{R}/studies/{{study}}/training_curves.csv",
    params:
        study=study_params,
    log:
        f"{R}/logs/aggregate_study/{{study}}.log",
    conda:
        "../envs/cpu.yaml"
    script:
        "../scripts/aggregate_study.py"


rule plot_condition_study:
    input:
        runs=f"{R}/studies/{{study}}/runs.csv",
        summary=f"{R}/studies/{{study}}/summary.csv",
        curves=f"{R}/studies/{{study}}/training_curves.csv",
        code=code("scripts/plot_study.py"),
    output:
        gains_pdf=f"{R}/figures/{{study}}_gains.pdf",
        gains_png=f"{R}/figures/{{study}}_gains.png",
        training_pdf=f"{R}/figures/{{study}}_training.pdf",
        training_png=f"{R}/figures/{{study}}_training.png",
    wildcard_constraints:
        study="|".join(studies_of_kind("conditions")),
    params:
        study=study_params,
    log:
        f"{R}/logs/plot_study/{{study}}.log",
    conda:
        "../envs/cpu.yaml"
    script:
        "../scripts/plot_study.py"


rule plot_round_study:
    input:
        runs=f"{R}/studies/{{study}}/runs.csv",
        summary=f"{R}/studies/{{study}}/summary.csv",
        curves=f"{R}/studies/{{study}}/training_curves.csv",
        code=code("scripts/plot_study.py"),
    output:
        rounds_pdf=f"{R}/figures/{{study}}_rounds.pdf",
        rounds_png=f"{R}/figures/{{study}}_rounds.png",
    wildcard_constraints:
        study="|".join(studies_of_kind("rounds")),
    params:
        study=study_params,
    log:
        f"{R}/logs/plot_study/{{study}}.log",
    conda:
        "../envs/cpu.yaml"
    script:
        "../scripts/plot_study.py"


rule tabulate_study:
    input:
        runs=f"{R}/studies/{{study}}/runs.csv",
        summary=f"{R}/studies/{{study}}/summary.csv",
        code=code("scripts/tabulate_study.py"),
    output:
        table=f"{R}/tables/{{study}}.tex",
        numbers=f"{R}/studies/{{study}}/numbers.json",
    params:
        study=study_params,
    log:
        f"{R}/logs/tabulate_study/{{study}}.log",
    conda:
        "../envs/cpu.yaml"
    script:
        "../scripts/tabulate_study.py"


rule write_paper_sections:
    input:
        numbers=expand(f"{R}/studies/{{study}}/numbers.json", study=STUDIES),
        models=expand(MODEL_PROVENANCE, model=USED_MODELS),
        datasets=expand(f"{R}/data/{{dataset}}/provenance.json", dataset=USED_DATASETS),
        code=code("scripts/write_paper_sections.py"),
    output:
        numbers=f"{R}/paper/numbers.tex",
        sections=f"{R}/paper/studies.tex",
    params:
        studies={s: config["studies"][s] for s in config["studies"]},
        enabled=STUDIES,
        figures={s: [Path(f).name for f in study_figures(s)] for s in STUDIES},
    log:
        f"{R}/logs/write_paper_sections.log",
    conda:
        "../envs/cpu.yaml"
    script:
        "../scripts/write_paper_sections.py"


rule build_paper:
    input:
        main="paper/main.tex",
        numbers=f"{R}/paper/numbers.tex",
        sections=f"{R}/paper/studies.tex",
        tables=expand(f"{R}/tables/{{study}}.tex", study=STUDIES),
        figures=[f for s in STUDIES for f in study_figures(s)],
    output:
        PAPER_PDF,
    params:
        build_dir=lambda wildcards, output: os.path.dirname(output[0]),
    log:
        f"{R}/logs/build_paper.log",
    conda:
        "../envs/latex.yaml"
    shell:
        "cp {input.main} {params.build_dir}/main.tex && log=$(realpath -m {log}) && cd {params.build_dir} && "
        "SOURCE_DATE_EPOCH=0 FORCE_SOURCE_DATE=1 latexmk -pdf -interaction=nonstopmode -halt-on-error "
        "-jobname=pidistill main.tex > $log 2>&1"


rule paper_inputs:
    """Everything the paper is built from (tables, figures, numbers), without running LaTeX."""
    input:
        rules.build_paper.input.numbers,
        rules.build_paper.input.sections,
        rules.build_paper.input.tables,
        rules.build_paper.input.figures,
