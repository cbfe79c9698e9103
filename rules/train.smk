# Filter correct retries into SFT pairs, then train one LoRA adapter per round on the parent policy.


rule build_sft_pairs:
    input:
        check_round,
        problems=lambda wildcards: split_file(wildcards, "train"),
        first_verdicts=f"{RUNS}/{{parent}}/first_attempts.verdicts.jsonl",
        retry_verdicts=f"{RUNS}/{{parent}}/r{{round}}-{{method}}/retries.verdicts.jsonl",
        code=code("scripts/build_sft_pairs.py"),
    output:
        pairs=f"{RUNS}/{{parent}}/r{{round}}-{{method}}/sft_pairs.jsonl",
        stats=f"{RUNS}/{{parent}}/r{{round}}-{{method}}/round_stats.json",
    log:
        f"{RUNS}/{{parent}}/r{{round}}-{{method}}/logs/build_sft_pairs.log",
    conda:
        "../envs/cpu.yaml"
    params:
        environment="main",
    script:
        "../scripts/build_sft_pairs.py"


rule train_adapter:
    input:
        check_round,
        model=model_inputs,
        model_provenance=model_provenance,
        parent_adapters=lambda wildcards: adapters_of(wildcards, wildcards.parent),
        pairs=f"{RUNS}/{{parent}}/r{{round}}-{{method}}/sft_pairs.jsonl",
        code=code("scripts/train_adapter.py"),
    output:
        directory(f"{RUNS}/{{parent}}/r{{round}}-{{method}}/adapter"),
    log:
        f"{RUNS}/{{parent}}/r{{round}}-{{method}}/logs/train_adapter.log",
    benchmark:
        f"{RUNS}/{{parent}}/r{{round}}-{{method}}/benchmarks/train_adapter.tsv"
    conda:
        "../envs/torch.yaml"
    threads: threads_heavy()
    resources:
        gpu=1,
    params:
        environment="main",
        model=lambda wildcards: model_path(wildcards.model),
        train=lambda wildcards: method_settings(config, wildcards.method)["train"],
    script:
        "../scripts/train_adapter.py"
