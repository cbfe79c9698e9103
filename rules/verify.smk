# Verification of any samples file (first attempts, retries, evaluation samples) against its split.


rule verify_samples:
    input:
        samples=f"{RUNS}/{{policy}}/{{kind}}.jsonl",
        problems=verify_problems,
        code=lambda wildcards: code("scripts/verify_samples.py", verifier_module(domain_of(wildcards))),
    output:
        f"{RUNS}/{{policy}}/{{kind}}.verdicts.jsonl",
    log:
        f"{RUNS}/{{policy}}/logs/verify_{{kind}}.log",
    conda:
        "../envs/cpu.yaml"
    threads: config.get("verifier", {}).get("workers", 1)
    params:
        environment="main",
        verifier=lambda wildcards: domain_settings(config.get("verifier"), domain_of(wildcards)),
    script:
        "../scripts/verify_samples.py"
