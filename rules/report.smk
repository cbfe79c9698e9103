# Aggregation, figures, tables, quoted numbers and the paper PDF.


rule aggregate_study:
    input:
        evaluations=lambda wildcards: study_evaluations(wildcards.study),
        round_stats=lambda wildcards: study_round_stats(wildcards.study),
        adapters=lambda wildcards: study_adapters(wildcards.study),
        code=code("scripts/aggregate_study.py"),
    output:
        runs=report(
            f"{R}/studies/{{study}}/runs.csv",
            caption="../report/study_runs.rst",
            category="Tables",
            subcategory="{study}",
            labels={"study": "{study}", "file": "runs"},
        ),
        summary=report(
            f"{R}/studies/{{study}}/summary.csv",
            caption="../report/study_summary.rst",
            category="Tables",
            subcategory="{study}",
            labels={"study": "{study}", "file": "summary"},
        ),
        curves=f"{R}/studies/{{study}}/training_curves.csv",
    log:
        f"{R}/logs/aggregate_study/{{study}}.log",
    wildcard_constraints:
        study="|".join(RUN_STUDIES) or "__none__",
    conda:
        "../envs/cpu.yaml"
    params:
        environment="main",
        study=study_params,
        bootstrap=BOOTSTRAP,
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
        gains_png=report(
            f"{R}/figures/{{study}}_gains.png",
            caption="../report/figure_gains.rst",
            category="Figures",
            subcategory="{study}",
            labels={"study": "{study}", "figure": "gains"},
        ),
        training_pdf=f"{R}/figures/{{study}}_training.pdf",
        training_png=report(
            f"{R}/figures/{{study}}_training.png",
            caption="../report/figure_training.rst",
            category="Figures",
            subcategory="{study}",
            labels={"study": "{study}", "figure": "training"},
        ),
    log:
        f"{R}/logs/plot_study/{{study}}.log",
    wildcard_constraints:
        study="|".join(studies_of_kind("conditions")),
    conda:
        "../envs/cpu.yaml"
    params:
        environment="main",
        study=study_params,
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
        rounds_png=report(
            f"{R}/figures/{{study}}_rounds.png",
            caption="../report/figure_rounds.rst",
            category="Figures",
            subcategory="{study}",
            labels={"study": "{study}", "figure": "rounds"},
        ),
    log:
        f"{R}/logs/plot_study/{{study}}.log",
    wildcard_constraints:
        study="|".join(studies_of_kind("rounds")),
    conda:
        "../envs/cpu.yaml"
    params:
        environment="main",
        study=study_params,
    script:
        "../scripts/plot_study.py"


rule plot_gain_curve:
    input:
        runs=f"{R}/studies/{{study}}/runs.csv",
        summary=f"{R}/studies/{{study}}/summary.csv",
        code=code("scripts/plot_gain_curve.py"),
    output:
        pdf=f"{R}/figures/{{study}}_curve.pdf",
        png=report(
            f"{R}/figures/{{study}}_curve.png",
            caption="../report/figure_curve.rst",
            category="Figures",
            subcategory="{study}",
            labels={"study": "{study}", "figure": "curve"},
        ),
    log:
        f"{R}/logs/plot_gain_curve/{{study}}.log",
    wildcard_constraints:
        study="|".join(curve_studies()),
    conda:
        "../envs/cpu.yaml"
    params:
        environment="main",
        study=study_params,
        values=lambda wildcards: curve_values(wildcards.study),
    script:
        "../scripts/plot_gain_curve.py"


rule tabulate_study:
    input:
        runs=f"{R}/studies/{{study}}/runs.csv",
        summary=f"{R}/studies/{{study}}/summary.csv",
        overlap=lambda wildcards: f"{R}/data/{config['studies'][wildcards.study]['dataset']}/overlap.json",
        code=code("scripts/tabulate_study.py"),
    output:
        table=report(
            f"{R}/tables/{{study}}.tex",
            caption="../report/table.rst",
            category="LaTeX tables",
            labels={"study": "{study}"},
        ),
        numbers=f"{R}/studies/{{study}}/numbers.json",
    log:
        f"{R}/logs/tabulate_study/{{study}}.log",
    wildcard_constraints:
        study="|".join(s for s in RUN_STUDIES if s not in method_table_studies()) or "__none__",
    conda:
        "../envs/cpu.yaml"
    params:
        environment="main",
        study=study_params,
        bootstrap=BOOTSTRAP,
    script:
        "../scripts/tabulate_study.py"


rule write_paper_sections:
    input:
        numbers=[f for s in STUDIES for f in study_numbers(s)],
        models=expand(MODEL_PROVENANCE, model=USED_MODELS),
        datasets=expand(f"{R}/data/{{dataset}}/provenance.json", dataset=USED_DATASETS),
        code=code("scripts/write_paper_sections.py"),
    output:
        numbers=f"{R}/paper/numbers.tex",
        sections=f"{R}/paper/studies.tex",
    log:
        f"{R}/logs/write_paper_sections.log",
    conda:
        "../envs/cpu.yaml"
    params:
        environment="main",
        studies={s: config["studies"][s] for s in config["studies"]},
        enabled=PAPER_STUDIES,
        figures={s: [Path(f).name for f in study_figures(s)] for s in STUDIES},
        methods=method_descriptions(
            method_table_studies()
            + [s for h in studies_of_kind("hierarchy") if h in STUDIES for s in derived_sources(config, h)]
        ),
    script:
        "../scripts/write_paper_sections.py"


rule build_paper:
    input:
        main=checkout_path("paper/main.tex"),
        numbers=f"{R}/paper/numbers.tex",
        sections=f"{R}/paper/studies.tex",
        tables=[study_table(s) for s in STUDIES],
        figures=[f for s in STUDIES for f in study_figures(s)],
    output:
        report(PAPER_PDF, caption="../report/paper.rst", category="Paper"),
    log:
        f"{R}/logs/build_paper.log",
    conda:
        "../envs/latex.yaml"
    params:
        build_dir=lambda wildcards, output: os.path.dirname(output[0]),
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
