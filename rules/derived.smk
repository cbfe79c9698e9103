# The derived studies: tables and figures computed from results the run studies already have
# (evaluations, study CSVs, overlap records, benchmark files), with no generation of their own. Each
# kind has its rule; a study's config says what it draws from (`from`), and its params carry only
# what the job reads of those studies (their runs, not their labels or stopping rules).


rule tabulate_amortized:
    input:
        evaluations=lambda wildcards: [evaluation_file(r) for r in amortized_runs(wildcards.study)],
        code=code("scripts/tabulate_amortized.py"),
    output:
        table=report(
            f"{R}/tables/{{study}}.tex",
            caption="../report/table_amortized.rst",
            category="LaTeX tables",
            labels={"study": "{study}"},
        ),
        summary=report(
            f"{R}/studies/{{study}}/summary.csv",
            caption="../report/study_amortized.rst",
            category="Tables",
            subcategory="{study}",
            labels={"study": "{study}", "file": "summary"},
        ),
        numbers=f"{R}/studies/{{study}}/numbers.json",
    log:
        f"{R}/logs/tabulate_amortized/{{study}}.log",
    wildcard_constraints:
        study="|".join(studies_of_kind("amortized")),
    conda:
        "../envs/cpu.yaml"
    params:
        environment="main",
        study=derived_params,
        round=lambda wildcards: amortized_round(wildcards.study),
        bootstrap=BOOTSTRAP,
    script:
        "../scripts/tabulate_amortized.py"


rule tabulate_levels:
    input:
        evaluations=lambda wildcards: [
            evaluation_file(r) for r in study_runs(config, derived_sources(config, wildcards.study)[0])
        ],
        code=code("scripts/tabulate_levels.py"),
    output:
        table=report(
            f"{R}/tables/{{study}}.tex",
            caption="../report/table_levels.rst",
            category="LaTeX tables",
            labels={"study": "{study}"},
        ),
        summary=report(
            f"{R}/studies/{{study}}/summary.csv",
            caption="../report/study_levels.rst",
            category="Tables",
            subcategory="{study}",
            labels={"study": "{study}", "file": "summary"},
        ),
        numbers=f"{R}/studies/{{study}}/numbers.json",
    log:
        f"{R}/logs/tabulate_levels/{{study}}.log",
    wildcard_constraints:
        study="|".join(studies_of_kind("levels")),
    conda:
        "../envs/cpu.yaml"
    params:
        environment="main",
        study=derived_params,
        labels=lambda wildcards: derived_labels(wildcards.study),
        bootstrap=BOOTSTRAP,
    script:
        "../scripts/tabulate_levels.py"


rule plot_scale:
    input:
        runs=lambda wildcards: [f"{R}/studies/{s}/runs.csv" for s in derived_sources(config, wildcards.study)],
        code=code("scripts/plot_scale.py"),
    output:
        pdf=f"{R}/figures/{{study}}_scale.pdf",
        png=report(
            f"{R}/figures/{{study}}_scale.png",
            caption="../report/figure_scale.rst",
            category="Figures",
            subcategory="{study}",
            labels={"study": "{study}", "figure": "scale"},
        ),
        points=report(
            f"{R}/studies/{{study}}/points.csv",
            caption="../report/study_scale.rst",
            category="Tables",
            subcategory="{study}",
            labels={"study": "{study}", "file": "points"},
        ),
    log:
        f"{R}/logs/plot_scale/{{study}}.log",
    wildcard_constraints:
        study="|".join(studies_of_kind("scale")),
    conda:
        "../envs/cpu.yaml"
    params:
        environment="main",
        study=lambda wildcards: {k: v for k, v in derived_params(wildcards).items() if k in ("name", "title", "band")},
    script:
        "../scripts/plot_scale.py"


rule tabulate_scale:
    input:
        points=f"{R}/studies/{{study}}/points.csv",
        lr_summary=lambda wildcards: f"{R}/studies/{config['studies'][wildcards.study]['lr_study']}/summary.csv",
        code=code("scripts/tabulate_scale.py"),
    output:
        table=report(
            f"{R}/tables/{{study}}.tex",
            caption="../report/table_scale.rst",
            category="LaTeX tables",
            labels={"study": "{study}"},
        ),
        lr=report(
            f"{R}/studies/{{study}}/learning_rates.csv",
            caption="../report/study_lr.rst",
            category="Tables",
            subcategory="{study}",
            labels={"study": "{study}", "file": "learning_rates"},
        ),
        numbers=f"{R}/studies/{{study}}/numbers.json",
    log:
        f"{R}/logs/tabulate_scale/{{study}}.log",
    wildcard_constraints:
        study="|".join(studies_of_kind("scale")),
    conda:
        "../envs/cpu.yaml"
    params:
        environment="main",
        study=lambda wildcards: {
            k: v for k, v in derived_params(wildcards).items() if k in ("name", "title", "band", "lr_study")
        },
        lr_settings=lambda wildcards: lr_settings(wildcards.study),
        bootstrap=BOOTSTRAP,
    script:
        "../scripts/tabulate_scale.py"


rule tabulate_domains:
    input:
        summaries=lambda wildcards: [f"{R}/studies/{s}/summary.csv" for s in derived_sources(config, wildcards.study)],
        overlaps=lambda wildcards: [
            f"{R}/data/{config['studies'][s]['dataset']}/overlap.json"
            for s in derived_sources(config, wildcards.study)
        ],
        code=code("scripts/tabulate_domains.py"),
    output:
        table=report(
            f"{R}/tables/{{study}}.tex",
            caption="../report/table_domains.rst",
            category="LaTeX tables",
            labels={"study": "{study}"},
        ),
        summary=report(
            f"{R}/studies/{{study}}/summary.csv",
            caption="../report/study_domains.rst",
            category="Tables",
            subcategory="{study}",
            labels={"study": "{study}", "file": "summary"},
        ),
        numbers=f"{R}/studies/{{study}}/numbers.json",
    log:
        f"{R}/logs/tabulate_domains/{{study}}.log",
    wildcard_constraints:
        study="|".join(studies_of_kind("domains")),
    conda:
        "../envs/cpu.yaml"
    params:
        environment="main",
        study=derived_params,
        domains=lambda wildcards: {
            s: config["datasets"][config["studies"][s]["dataset"]]["domain"]
            for s in derived_sources(config, wildcards.study)
        },
        bootstrap=BOOTSTRAP,
    script:
        "../scripts/tabulate_domains.py"


# The hierarchy of one domain's methods (the documents' Lean hierarchy table): every method of the
# studies it lists, each round of a rounds study a row, largest gain first, with computed notes.
rule tabulate_hierarchy:
    input:
        summaries=lambda wildcards: [f"{R}/studies/{s}/summary.csv" for s in derived_sources(config, wildcards.study)],
        overlaps=lambda wildcards: [
            f"{R}/data/{config['studies'][s]['dataset']}/overlap.json"
            for s in derived_sources(config, wildcards.study)
        ],
        code=code("scripts/tabulate_hierarchy.py"),
    output:
        table=report(
            f"{R}/tables/{{study}}.tex",
            caption="../report/table_hierarchy.rst",
            category="LaTeX tables",
            labels={"study": "{study}"},
        ),
        summary=report(
            f"{R}/studies/{{study}}/summary.csv",
            caption="../report/study_hierarchy.rst",
            category="Tables",
            subcategory="{study}",
            labels={"study": "{study}", "file": "summary"},
        ),
        numbers=f"{R}/studies/{{study}}/numbers.json",
    log:
        f"{R}/logs/tabulate_hierarchy/{{study}}.log",
    wildcard_constraints:
        study="|".join(studies_of_kind("hierarchy")),
    conda:
        "../envs/cpu.yaml"
    params:
        environment="main",
        study=derived_params,
        specs=lambda wildcards: {
            s: spec for s, spec in method_table_specs().items() if s in derived_sources(config, wildcards.study)
        },
        notes=lambda wildcards: {
            m: d["note"] for m, d in method_descriptions(derived_sources(config, wildcards.study)).items() if d["note"]
        },
        band=lambda wildcards: config["studies"].get("scale", {}).get("band", [0.3, 0.6]),
        bootstrap=BOOTSTRAP,
    script:
        "../scripts/tabulate_hierarchy.py"


# Inputs are the benchmark files Snakemake writes for the heavy jobs: the table reruns when one does.
rule tabulate_cost:
    input:
        benchmarks=lambda wildcards: sorted({f for fs in cost_jobs(wildcards.study).values() for f in fs}),
        code=code("scripts/tabulate_cost.py"),
    output:
        table=report(
            f"{R}/benchmarks/{{study}}/table.tex",
            caption="../report/table_cost.rst",
            category="LaTeX tables",
            labels={"study": "{study}"},
        ),
        summary=report(
            f"{R}/benchmarks/{{study}}/cost.csv",
            caption="../report/study_cost.rst",
            category="Tables",
            subcategory="{study}",
            labels={"study": "{study}", "file": "cost"},
        ),
    log:
        f"{R}/logs/tabulate_cost/{{study}}.log",
    wildcard_constraints:
        study="|".join(studies_of_kind("cost")),
    conda:
        "../envs/cpu.yaml"
    params:
        environment="main",
        study=lambda wildcards: {k: v for k, v in derived_params(wildcards).items() if k in ("name", "title", "device")},
        jobs=lambda wildcards: cost_jobs(wildcards.study),
    script:
        "../scripts/tabulate_cost.py"


# The method table (a conditions study with method_table: true, the paper's controls): every run
# study's methods, with gains, seeds, tokens generated and notes computed from the runs.
rule tabulate_methods:
    input:
        runs=f"{R}/studies/{{study}}/runs.csv",
        summaries=[f"{R}/studies/{s}/summary.csv" for s in RUN_STUDIES],
        overlaps=[f"{R}/data/{config['studies'][s]['dataset']}/overlap.json" for s in RUN_STUDIES],
        code=code("scripts/tabulate_methods.py"),
    output:
        table=report(
            f"{R}/tables/{{study}}.tex",
            caption="../report/table_methods.rst",
            category="LaTeX tables",
            labels={"study": "{study}"},
        ),
        methods=report(
            f"{R}/studies/{{study}}/methods.csv",
            caption="../report/study_methods.rst",
            category="Tables",
            subcategory="{study}",
            labels={"study": "{study}", "file": "methods"},
        ),
        numbers=f"{R}/studies/{{study}}/numbers.json",
    log:
        f"{R}/logs/tabulate_methods/{{study}}.log",
    wildcard_constraints:
        study="|".join(method_table_studies()),
    conda:
        "../envs/cpu.yaml"
    params:
        environment="main",
        study=study_params,
        studies=RUN_STUDIES,
        specs=method_table_specs(),
        notes={m: d["note"] for m, d in method_descriptions(RUN_STUDIES).items() if d["note"]},
        band=lambda wildcards: config["studies"].get("scale", {}).get("band", [0.3, 0.6]),
        bootstrap=BOOTSTRAP,
    script:
        "../scripts/tabulate_methods.py"
