# Generation: first attempts on the train split, retries of the failures, samples on the test split.
# Every GPU-capable rule loads its policy once and generates a whole split in one job.


rule sample_first_attempts:
    input:
        unpack(policy_inputs),
        problems=lambda wildcards: split_file(wildcards, "train"),
        code=code("scripts/sample_attempts.py", backend_module(BACKEND)),
    output:
        f"{RUNS}/{{policy}}/first_attempts.jsonl",
    log:
        f"{RUNS}/{{policy}}/logs/sample_first_attempts.log",
    benchmark:
        f"{RUNS}/{{policy}}/benchmarks/sample_first_attempts.tsv"
    conda:
        GENERATION_ENV
    threads: threads_heavy()
    resources:
        gpu=1,
    params:
        environment=GENERATION_VENV,
        model=lambda wildcards: model_path(wildcards.model),
        chat_template_kwargs=lambda wildcards: config["models"][wildcards.model].get("chat_template_kwargs", {}),
        sampling=lambda wildcards: config["datasets"][wildcards.dataset]["first_attempts"],
        stage="first_attempt",
        generation=GENERATION,
    script:
        "../scripts/sample_attempts.py"


rule sample_retries:
    input:
        check_round,
        model=model_inputs,
        model_provenance=model_provenance,
        adapters=lambda wildcards: adapters_of(wildcards, wildcards.parent),
        problems=lambda wildcards: split_file(wildcards, "train"),
        first_verdicts=f"{RUNS}/{{parent}}/first_attempts.verdicts.jsonl",
        code=code("scripts/sample_retries.py", backend_module(BACKEND)),
    output:
        f"{RUNS}/{{parent}}/r{{round}}-{{method}}/retries.jsonl",
    log:
        f"{RUNS}/{{parent}}/r{{round}}-{{method}}/logs/sample_retries.log",
    benchmark:
        f"{RUNS}/{{parent}}/r{{round}}-{{method}}/benchmarks/sample_retries.tsv"
    conda:
        GENERATION_ENV
    threads: threads_heavy()
    resources:
        gpu=1,
    params:
        environment=GENERATION_VENV,
        model=lambda wildcards: model_path(wildcards.model),
        chat_template_kwargs=lambda wildcards: config["models"][wildcards.model].get("chat_template_kwargs", {}),
        method=lambda wildcards: retry_settings(config, wildcards.method, wildcards.dataset),
        domain=domain_of,
        sampling=lambda wildcards: retry_sampling(config, wildcards.dataset),
        generation=GENERATION,
    script:
        "../scripts/sample_retries.py"


rule sample_evaluation:
    input:
        unpack(policy_inputs),
        problems=lambda wildcards: split_file(wildcards, "test"),
        code=code("scripts/sample_attempts.py", backend_module(BACKEND)),
    output:
        f"{RUNS}/{{policy}}/eval_samples.jsonl",
    log:
        f"{RUNS}/{{policy}}/logs/sample_evaluation.log",
    benchmark:
        f"{RUNS}/{{policy}}/benchmarks/sample_evaluation.tsv"
    conda:
        GENERATION_ENV
    threads: threads_heavy()
    resources:
        gpu=1,
    params:
        environment=GENERATION_VENV,
        model=lambda wildcards: model_path(wildcards.model),
        chat_template_kwargs=lambda wildcards: config["models"][wildcards.model].get("chat_template_kwargs", {}),
        sampling=lambda wildcards: config["datasets"][wildcards.dataset]["evaluation"],
        stage="evaluation",
        generation=GENERATION,
    script:
        "../scripts/sample_attempts.py"
