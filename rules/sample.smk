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
    priority: model_priority
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


rule assign_pi_donors:
    input:
        problems=lambda wildcards: split_file(wildcards, "train"),
        code=lambda wildcards: code("scripts/assign_pi_donors.py", verifier_module(domain_of(wildcards))),
    output:
        f"{R}/data/{{dataset}}/pi_donors/{{pi}}-seed{{seed}}.json",
    log:
        f"{R}/logs/assign_pi_donors/{{dataset}}/{{pi}}-seed{{seed}}.log",
    wildcard_constraints:
        pi="wrong|other_tests",
    priority: model_priority
    conda:
        "../envs/cpu.yaml"
    threads: config.get("verifier", {}).get("workers", 1)
    params:
        environment="main",
        pi=lambda wildcards: wildcards.pi,
        verifier=lambda wildcards: domain_settings(config.get("verifier"), domain_of(wildcards)),
    script:
        "../scripts/assign_pi_donors.py"


rule sample_hints:
    input:
        model=lambda wildcards: model_files(hint_spec(wildcards)["model"]),
        model_provenance=lambda wildcards: MODEL_PROVENANCE.format(model=hint_spec(wildcards)["model"]),
        problems=lambda wildcards: split_file(wildcards, "train"),
        code=code("scripts/sample_hints.py", backend_module(BACKEND)),
    output:
        f"{R}/hints/{{dataset}}/seed{{seed}}/{{hint}}/hints.jsonl",
    log:
        f"{R}/hints/{{dataset}}/seed{{seed}}/{{hint}}/logs/sample_hints.log",
    benchmark:
        f"{R}/hints/{{dataset}}/seed{{seed}}/{{hint}}/benchmarks/sample_hints.tsv"
    priority: model_priority
    conda:
        GENERATION_ENV
    threads: threads_heavy()
    resources:
        gpu=1,
    params:
        environment=GENERATION_VENV,
        model=lambda wildcards: model_path(hint_spec(wildcards)["model"]),
        chat_template_kwargs=lambda wildcards: config["models"][hint_spec(wildcards)["model"]].get(
            "chat_template_kwargs", {}
        ),
        hint_prompt=lambda wildcards: hint_spec(wildcards)["prompt"],
        sampling=lambda wildcards: retry_sampling(config, wildcards.dataset),
        generation=GENERATION,
    script:
        "../scripts/sample_hints.py"


# The failure-diagnosis PI: the diagnosis model reads each failed first attempt of the policy with
# the verifier's feedback on it and writes a diagnosis, which the policy's retry then carries.
rule sample_skeletons:
    input:
        model=lambda wildcards: model_files(skeleton_spec(wildcards)["model"]),
        model_provenance=lambda wildcards: MODEL_PROVENANCE.format(model=skeleton_spec(wildcards)["model"]),
        problems=lambda wildcards: split_file(wildcards, "train"),
        code=code("scripts/sample_skeletons.py", backend_module(BACKEND)),
    output:
        f"{R}/skeletons/{{dataset}}/seed{{seed}}/{{skeleton}}/outlines.jsonl",
    log:
        f"{R}/skeletons/{{dataset}}/seed{{seed}}/{{skeleton}}/logs/sample_skeletons.log",
    benchmark:
        f"{R}/skeletons/{{dataset}}/seed{{seed}}/{{skeleton}}/benchmarks/sample_skeletons.tsv"
    priority: model_priority
    conda:
        GENERATION_ENV
    threads: threads_heavy()
    resources:
        gpu=1,
    params:
        environment=GENERATION_VENV,
        model=lambda wildcards: model_path(skeleton_spec(wildcards)["model"]),
        chat_template_kwargs=lambda wildcards: config["models"][skeleton_spec(wildcards)["model"]].get(
            "chat_template_kwargs", {}
        ),
        skeleton_prompt=lambda wildcards: skeleton_spec(wildcards)["prompt"],
        sampling=lambda wildcards: retry_sampling(config, wildcards.dataset),
        generation=GENERATION,
    script:
        "../scripts/sample_skeletons.py"


rule sample_diagnoses:
    input:
        model=lambda wildcards: model_files(diagnosis_spec(wildcards)["model"]),
        model_provenance=lambda wildcards: MODEL_PROVENANCE.format(model=diagnosis_spec(wildcards)["model"]),
        problems=lambda wildcards: split_file(wildcards, "train"),
        first_verdicts=f"{RUNS}/{{policy}}/first_attempts.verdicts.jsonl",
        code=code("scripts/sample_diagnoses.py", backend_module(BACKEND)),
    output:
        f"{RUNS}/{{policy}}/diagnoses/{{diagnosis}}/diagnoses.jsonl",
    log:
        f"{RUNS}/{{policy}}/diagnoses/{{diagnosis}}/logs/sample_diagnoses.log",
    benchmark:
        f"{RUNS}/{{policy}}/diagnoses/{{diagnosis}}/benchmarks/sample_diagnoses.tsv"
    priority: model_priority
    conda:
        GENERATION_ENV
    threads: threads_heavy()
    resources:
        gpu=1,
    params:
        environment=GENERATION_VENV,
        model=lambda wildcards: model_path(diagnosis_spec(wildcards)["model"]),
        chat_template_kwargs=lambda wildcards: config["models"][diagnosis_spec(wildcards)["model"]].get(
            "chat_template_kwargs", {}
        ),
        diagnosis_prompt=lambda wildcards: diagnosis_spec(wildcards)["prompt"],
        sampling=lambda wildcards: retry_sampling(config, wildcards.dataset),
        generation=GENERATION,
    script:
        "../scripts/sample_diagnoses.py"


rule sample_retries:
    input:
        unpack(retry_extra_inputs),
        model=lambda wildcards: model_files(retry_model(wildcards)),
        model_provenance=lambda wildcards: MODEL_PROVENANCE.format(model=retry_model(wildcards)),
        adapters=retry_adapters,
        problems=lambda wildcards: split_file(wildcards, "train"),
        first_verdicts=f"{RUNS}/{{parent}}/first_attempts.verdicts.jsonl",
        code=code("scripts/sample_retries.py", backend_module(BACKEND)),
    output:
        f"{RUNS}/{{parent}}/sources/{{source}}/samples.jsonl",
    log:
        f"{RUNS}/{{parent}}/sources/{{source}}/logs/sample_retries.log",
    benchmark:
        f"{RUNS}/{{parent}}/sources/{{source}}/benchmarks/sample_retries.tsv"
    wildcard_constraints:
        source="retry-[a-z0-9_.-]+",
    priority: model_priority
    conda:
        GENERATION_ENV
    threads: threads_heavy()
    resources:
        gpu=1,
    params:
        environment=GENERATION_VENV,
        model=lambda wildcards: model_path(retry_model(wildcards)),
        chat_template_kwargs=lambda wildcards: config["models"][retry_model(wildcards)].get("chat_template_kwargs", {}),
        source=source_of,
        domain=domain_of,
        sampling=lambda wildcards: retry_sampling(config, wildcards.dataset),
        generation=GENERATION,
    script:
        "../scripts/sample_retries.py"


# Candidates with no failure signal: n more samples of every problem, or fresh samples of the failed ones.
rule sample_extra_attempts:
    input:
        unpack(policy_inputs),
        unpack(extra_attempt_inputs),
        problems=lambda wildcards: split_file(wildcards, "train"),
        code=code("scripts/sample_extra_attempts.py", backend_module(BACKEND)),
    output:
        f"{RUNS}/{{policy}}/sources/{{source}}/samples.jsonl",
    log:
        f"{RUNS}/{{policy}}/sources/{{source}}/logs/sample_extra_attempts.log",
    benchmark:
        f"{RUNS}/{{policy}}/sources/{{source}}/benchmarks/sample_extra_attempts.tsv"
    wildcard_constraints:
        source="(samples|resample)-[a-z0-9_.-]+",
    priority: model_priority
    conda:
        GENERATION_ENV
    threads: threads_heavy()
    resources:
        gpu=1,
    params:
        environment=GENERATION_VENV,
        model=lambda wildcards: model_path(wildcards.model),
        chat_template_kwargs=lambda wildcards: config["models"][wildcards.model].get("chat_template_kwargs", {}),
        source=source_of,
        sampling=lambda wildcards: attempt_sampling(config, wildcards.dataset),
        generation=GENERATION,
    script:
        "../scripts/sample_extra_attempts.py"


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
    priority: model_priority
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
