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
    priority: model_priority
    conda:
        "../envs/cpu.yaml"
    threads: config.get("verifier", {}).get("workers", 1)
    params:
        environment="main",
        verifier=lambda wildcards: domain_settings(config.get("verifier"), domain_of(wildcards)),
    script:
        "../scripts/verify_samples.py"


# A skeleton source's outlines, judged as outlines (pidistill/skeletons.py): the ones that check with
# their holes are the dataset's skeleton PI.
rule check_skeletons:
    input:
        outlines=f"{R}/skeletons/{{dataset}}/seed{{seed}}/{{skeleton}}/outlines.jsonl",
        problems=lambda wildcards: split_file(wildcards, "train"),
        code=lambda wildcards: code("scripts/check_skeletons.py", verifier_module(domain_of(wildcards))),
        lean_server=lambda wildcards: lean_server_installation(domain_of(wildcards)),
    output:
        f"{R}/skeletons/{{dataset}}/seed{{seed}}/{{skeleton}}/skeletons.jsonl",
    log:
        f"{R}/skeletons/{{dataset}}/seed{{seed}}/{{skeleton}}/logs/check_skeletons.log",
    priority: model_priority
    conda:
        "../envs/cpu.yaml"
    threads: config.get("verifier", {}).get("workers", 1)
    params:
        environment="main",
        verifier=lambda wildcards: domain_settings(config.get("verifier"), domain_of(wildcards)),
    script:
        "../scripts/check_skeletons.py"


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
