# Evaluation of a policy on the test split: pass@1 from n samples, unbiased pass@k, per-problem rows.


rule evaluate_policy:
    input:
        verdicts=f"{RUNS}/{{policy}}/eval_samples.verdicts.jsonl",
        problems=lambda wildcards: split_file(wildcards, "test"),
        code=code("scripts/evaluate_policy.py"),
    output:
        f"{RUNS}/{{policy}}/evaluation.json",
    log:
        f"{RUNS}/{{policy}}/logs/evaluate_policy.log",
    priority: model_priority
    conda:
        "../envs/cpu.yaml"
    params:
        environment="main",
        ks=lambda wildcards: config["datasets"][wildcards.dataset]["evaluation"].get("k", [1]),
    script:
        "../scripts/evaluate_policy.py"
