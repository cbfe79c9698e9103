# Verification of any samples file (first attempts, retries, evaluation samples) against its split.


rule verify_samples:
    input:
        samples=f"{RUNS}/{{policy}}/{{kind}}.jsonl",
        problems=verify_problems,
        code=lambda wildcards: code("scripts/verify_samples.py", verifier_module(domain_of(wildcards))),
        lean_server=lambda wildcards: lean_server_installation(domain_of(wildcards)),
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


# The Lean checker each formal verification job starts (verifier.lean_server): kimina-lean-server,
# elan, the variant's Mathlib and REPL at the versions envs/lean-server.toml pins, installed once into
# the prefix (on the filesystem the nodes share). A localrule: the submit host reaches the network
# (elan's release, the toolchain, the repositories, Mathlib's prebuilt library).
rule install_lean_server:
    input:
        pins="envs/lean-server.toml",
        code=code("scripts/install_lean_server.py", "pidistill.verifiers.lean_install"),
    output:
        f"{LEAN_PREFIX}/{{variant}}/installed.json",
    log:
        f"{R}/logs/install_lean_server/{{variant}}.log",
    conda:
        "../envs/cpu.yaml"
    params:
        environment="main",
    script:
        "../scripts/install_lean_server.py"
