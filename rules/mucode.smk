# µCode (seed 001, studies of kind mucode): rollouts -> learned verifier -> relabeled data -> generator,
# `iterations` times, and every policy evaluated with multi-turn best-of-N. Paths carry the lineage:
# iter{i}/generator/{method} was trained on iter{i-1}/data/{method}.jsonl, made from the rollouts of
# iterations 0..i-1 and the verifier of iteration i-1. The code is pidistill/mucode.py and
# pidistill/reward.py.


rule sample_rollouts:
    input:
        model=lambda wildcards: model_files(mu_model(wildcards)),
        model_provenance=lambda wildcards: MODEL_PROVENANCE.format(model=mu_model(wildcards)),
        generator=lambda wildcards: mu_generator(wildcards, "mucode", wildcards.iteration),
        problems=lambda wildcards: split_file(wildcards, "train"),
        code=code("scripts/sample_rollouts.py", backend_module(BACKEND), "pidistill.verifiers.code"),
    output:
        f"{MU}/iter{{iteration}}/rollouts.jsonl",
    log:
        f"{MU}/iter{{iteration}}/logs/sample_rollouts.log",
    benchmark:
        f"{MU}/iter{{iteration}}/benchmarks/sample_rollouts.tsv"
    conda:
        GENERATION_ENV
    threads: threads_heavy()
    resources:
        gpu=1,
    params:
        environment=GENERATION_VENV,
        model=lambda wildcards: model_path(mu_model(wildcards)),
        chat_template_kwargs=lambda wildcards: config["models"][mu_model(wildcards)].get("chat_template_kwargs", {}),
        study=mu_params,
        verifier=domain_settings(config.get("verifier"), "code"),
        generation=GENERATION,
    script:
        "../scripts/sample_rollouts.py"


rule train_verifier:
    input:
        model=lambda wildcards: model_files(mu_model(wildcards)),
        model_provenance=lambda wildcards: MODEL_PROVENANCE.format(model=mu_model(wildcards)),
        rollouts=lambda wildcards: mu_rollouts_upto(wildcards, wildcards.iteration),
        problems=lambda wildcards: split_file(wildcards, "train"),
        code=code("scripts/train_verifier.py"),
    output:
        model=directory(f"{MU}/iter{{iteration}}/verifier"),
        scores=f"{MU}/iter{{iteration}}/verifier_scores.jsonl",
    log:
        f"{MU}/iter{{iteration}}/logs/train_verifier.log",
    benchmark:
        f"{MU}/iter{{iteration}}/benchmarks/train_verifier.tsv"
    conda:
        "../envs/torch.yaml"
    threads: threads_heavy()
    resources:
        gpu=1,
    params:
        environment="main",
        model=lambda wildcards: model_path(mu_model(wildcards)),
        study=mu_params,
    script:
        "../scripts/train_verifier.py"


rule relabel_trajectories:
    input:
        rollouts=lambda wildcards: mu_rollouts_upto(wildcards, wildcards.iteration),
        scores=f"{MU}/iter{{iteration}}/verifier_scores.jsonl",
        problems=lambda wildcards: split_file(wildcards, "train"),
        code=code("scripts/relabel_trajectories.py"),
    output:
        f"{MU}/iter{{iteration}}/data/{{method}}.jsonl",
    log:
        f"{MU}/iter{{iteration}}/logs/relabel_trajectories/{{method}}.log",
    conda:
        "../envs/cpu.yaml"
    params:
        environment="main",
        study=mu_params,
    script:
        "../scripts/relabel_trajectories.py"


rule train_generator:
    input:
        model=lambda wildcards: model_files(mu_model(wildcards)),
        model_provenance=lambda wildcards: MODEL_PROVENANCE.format(model=mu_model(wildcards)),
        pairs=lambda wildcards: f"{MU}/iter{int(wildcards.iteration) - 1}/data/{wildcards.method}.jsonl".format(
            **wildcards
        ),
        code=code("scripts/train_generator.py"),
    output:
        directory(f"{MU}/iter{{iteration}}/generator/{{method}}"),
    log:
        f"{MU}/iter{{iteration}}/logs/train_generator/{{method}}.log",
    benchmark:
        f"{MU}/iter{{iteration}}/benchmarks/train_generator/{{method}}.tsv"
    wildcard_constraints:
        iteration="[1-9][0-9]*",
    conda:
        "../envs/torch.yaml"
    threads: threads_heavy()
    resources:
        gpu=1,
    params:
        environment="main",
        model=lambda wildcards: model_path(mu_model(wildcards)),
        study=mu_params,
    script:
        "../scripts/train_generator.py"


rule evaluate_mucode:
    input:
        model=lambda wildcards: model_files(mu_model(wildcards)),
        model_provenance=lambda wildcards: MODEL_PROVENANCE.format(model=mu_model(wildcards)),
        generator=lambda wildcards: mu_generator(wildcards, wildcards.method, wildcards.iteration),
        verifiers=lambda wildcards: [f"{MU}/{name}/verifier".format(**wildcards) for name in mu_verifiers(wildcards)],
        problems=lambda wildcards: f"{R}/data/{wildcards.eval_dataset}/test.jsonl",
        code=code("scripts/evaluate_mucode.py", backend_module(BACKEND), "pidistill.verifiers.code"),
    output:
        f"{MU}/iter{{iteration}}/eval/{{method}}/{{eval_dataset}}.json",
    log:
        f"{MU}/iter{{iteration}}/logs/evaluate_mucode/{{method}}/{{eval_dataset}}.log",
    benchmark:
        f"{MU}/iter{{iteration}}/benchmarks/evaluate_mucode/{{method}}.{{eval_dataset}}.tsv"
    wildcard_constraints:
        eval_dataset="[A-Za-z0-9_.-]+",
    conda:
        GENERATION_ENV
    threads: threads_heavy()
    resources:
        gpu=1,
    params:
        environment=GENERATION_VENV,
        model=lambda wildcards: model_path(mu_model(wildcards)),
        chat_template_kwargs=lambda wildcards: config["models"][mu_model(wildcards)].get("chat_template_kwargs", {}),
        study=mu_params,
        verifier_names=mu_verifiers,
        hidden=mu_hidden,
        selectors=mu_selectors,
        verifier=domain_settings(config.get("verifier"), "code"),
        generation=GENERATION,
    script:
        "../scripts/evaluate_mucode.py"


rule tabulate_mucode:
    input:
        evaluations=lambda wildcards: mu_evaluations(wildcards.study),
        code=code("scripts/tabulate_mucode.py"),
    output:
        csv=f"{R}/studies/{{study}}/mucode.csv",
        table=report(
            f"{R}/tables/{{study}}.tex",
            caption="../report/table_mucode.rst",
            category="LaTeX tables",
            labels={"study": "{study}"},
        ),
        numbers=f"{R}/studies/{{study}}/numbers.json",
    log:
        f"{R}/logs/tabulate_mucode/{{study}}.log",
    wildcard_constraints:
        study="|".join(studies_of_kind("mucode")),
    conda:
        "../envs/cpu.yaml"
    params:
        environment="main",
        study=lambda wildcards: {"name": wildcards.study, **config["studies"][wildcards.study]},
    script:
        "../scripts/tabulate_mucode.py"


rule plot_mucode_turns:
    input:
        csv=f"{R}/studies/{{study}}/mucode.csv",
        code=code("scripts/plot_mucode_turns.py"),
    output:
        pdf=f"{R}/figures/{{study}}_turns.pdf",
        png=report(
            f"{R}/figures/{{study}}_turns.png",
            caption="../report/figure_mucode_turns.rst",
            category="Figures",
            subcategory="{study}",
            labels={"study": "{study}", "figure": "turns"},
        ),
    log:
        f"{R}/logs/plot_mucode_turns/{{study}}.log",
    wildcard_constraints:
        study="|".join(studies_of_kind("mucode")),
    conda:
        "../envs/cpu.yaml"
    params:
        environment="main",
        study=lambda wildcards: {"name": wildcards.study, **config["studies"][wildcards.study]},
    script:
        "../scripts/plot_mucode_turns.py"
