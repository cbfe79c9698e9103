# The demo's tiny model: tokenizer + Qwen3-architecture network pretrained on the toy authors' corpus,
# saved with save_pretrained so every later rule loads it with from_pretrained like a hub model.


rule pretrain_demo_model:
    input:
        init=lambda wildcards: (model_files(init_from(wildcards.model)) if init_from(wildcards.model) else []),
        code=lambda wildcards: code("scripts/pretrain_demo_model.py", *pretrain_author_modules(wildcards.model)),
    output:
        model=directory(f"{R}/models/{{model}}"),
        summary=f"{R}/models/{{model}}.pretraining.json",
    log:
        f"{R}/logs/pretrain_demo_model/{{model}}.log",
    benchmark:
        f"{R}/benchmarks/pretrain_demo_model/{{model}}.tsv"
    priority: pretrain_priority
    conda:
        "../envs/torch.yaml"
    threads: lambda wildcards: config["models"][wildcards.model]["pretrain"].get("threads", 2)
    params:
        environment="main",
        pretrain=lambda wildcards: {
            k: v for k, v in config["models"][wildcards.model]["pretrain"].items() if k != "threads"
        },
        retry_texts=lambda wildcards: {
            config["datasets"][d]["domain"]: config["datasets"][d].get("retry_text")
            for d in pretrain_datasets(wildcards.model, "datasets", "tokenizer_datasets")
        },
        loaders=lambda wildcards: pretrain_loaders(wildcards.model, "datasets"),
        tokenizer_loaders=lambda wildcards: pretrain_loaders(wildcards.model, "tokenizer_datasets"),
    script:
        "../scripts/pretrain_demo_model.py"


# Every model is resolved once to what its jobs load: a hub model to the commit its configured
# revision names (loaded at that commit by every generation and training job, so a run never mixes
# weights when the hub repository moves), a local or pretrained model to the sha256 of its files.
# A localrule: the submit host reaches the hub. To follow a moved revision, rerun it with
# `--forcerun resolve_model`.
rule resolve_model:
    input:
        model=model_inputs,
        code=code("scripts/resolve_model.py"),
    output:
        MODEL_PROVENANCE,
    log:
        f"{R}/logs/resolve_model/{{model}}.log",
    priority: model_priority
    conda:
        "../envs/cpu.yaml"
    params:
        environment="main",
        spec=lambda wildcards: {
            k: v for k, v in config["models"][wildcards.model].items() if k in ("source", "id", "revision")
        },
        path=lambda wildcards: model_path(wildcards.model),
    script:
        "../scripts/resolve_model.py"
