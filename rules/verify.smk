# Verification of any samples file (first attempts, retries, evaluation samples) against its split.


rule verify_samples:
    input:
        samples=f"{RUNS}/{{policy}}/{{kind}}.jsonl",
        problems=verify_problems,
        code=code("scripts/verify_samples.py"),
    output:
        f"{RUNS}/{{policy}}/{{kind}}.verdicts.jsonl",
    params:
        verifier=config.get("verifier", {}),
    log:
        f"{RUNS}/{{policy}}/logs/verify_{{kind}}.log",
    conda:
        "../envs/cpu.yaml"
    script:
        "../scripts/verify_samples.py"
