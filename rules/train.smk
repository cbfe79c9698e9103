# A method's filter over its source's candidates gives the SFT pairs; its trainer (LoRA SFT, full
# fine-tune, GRPO or OPSD) trains one round on the parent policy (pidistill/methods.py). OPSD trains
# on prompts with their PI (pidistill/opsd.py), which build_opsd_prompts writes.


rule build_sft_pairs:
    input:
        check_round,
        unpack(candidate_inputs),
        problems=lambda wildcards: split_file(wildcards, "train"),
        first_verdicts=f"{RUNS}/{{parent}}/first_attempts.verdicts.jsonl",
        code=code("scripts/build_sft_pairs.py"),
    output:
        pairs=f"{RUNS}/{{parent}}/r{{round}}-{{method}}/sft_pairs.jsonl",
        stats=f"{RUNS}/{{parent}}/r{{round}}-{{method}}/round_stats.json",
    log:
        f"{RUNS}/{{parent}}/r{{round}}-{{method}}/logs/build_sft_pairs.log",
    priority: model_priority
    conda:
        "../envs/cpu.yaml"
    params:
        environment="main",
        source=lambda wildcards: source_settings(config, wildcards.method, wildcards.dataset),
        filter=lambda wildcards: method_filter(method_settings(config, wildcards.method)),
        trainer=trainer_of,
    script:
        "../scripts/build_sft_pairs.py"


rule build_opsd_prompts:
    input:
        check_round,
        unpack(candidate_inputs),
        unpack(opsd_skeleton_inputs),
        problems=lambda wildcards: split_file(wildcards, "train"),
        first_verdicts=f"{RUNS}/{{parent}}/first_attempts.verdicts.jsonl",
        code=code("scripts/build_opsd_prompts.py"),
    output:
        f"{RUNS}/{{parent}}/r{{round}}-{{method}}/opsd_prompts.jsonl",
    log:
        f"{RUNS}/{{parent}}/r{{round}}-{{method}}/logs/build_opsd_prompts.log",
    priority: model_priority
    conda:
        "../envs/cpu.yaml"
    params:
        environment="main",
        filter=lambda wildcards: method_filter(method_settings(config, wildcards.method)),
        pi=opsd_pi_settings,
    script:
        "../scripts/build_opsd_prompts.py"


rule train_adapter:
    input:
        check_round,
        unpack(train_inputs),
        model=model_inputs,
        model_provenance=model_provenance,
        parent_adapters=lambda wildcards: adapters_of(wildcards, wildcards.parent),
        code=train_code,
    output:
        directory(f"{RUNS}/{{parent}}/r{{round}}-{{method}}/adapter"),
    log:
        f"{RUNS}/{{parent}}/r{{round}}-{{method}}/logs/train_adapter.log",
    benchmark:
        f"{RUNS}/{{parent}}/r{{round}}-{{method}}/benchmarks/train_adapter.tsv"
    priority: model_priority
    conda:
        "../envs/torch.yaml"
    threads: threads_heavy()
    resources:
        gpu=1,
    params:
        environment="main",
        model=lambda wildcards: model_path(wildcards.model),
        chat_template_kwargs=lambda wildcards: config["models"][wildcards.model].get("chat_template_kwargs", {}),
        train=lambda wildcards: method_settings(config, wildcards.method)["train"],
        verifier=lambda wildcards: (
            domain_settings(config.get("verifier"), domain_of(wildcards)) if trainer_of(wildcards) == "grpo" else {}
        ),
    script:
        "../scripts/train_adapter.py"
