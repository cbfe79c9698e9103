# Stage 1: raw datasets -> problem records (one JSONL per split), and where they came from: hub
# datasets are loaded at a resolved commit, local files are hashed (pidistill/provenance.py).


rule prepare_dataset:
    input:
        code=code("scripts/prepare_dataset.py"),
    output:
        train=f"{R}/data/{{dataset}}/train.jsonl",
        test=f"{R}/data/{{dataset}}/test.jsonl",
        provenance=f"{R}/data/{{dataset}}/provenance.json",
    params:
        spec=lambda wildcards: config["datasets"][wildcards.dataset],
    log:
        f"{R}/logs/prepare_dataset/{{dataset}}.log",
    conda:
        "../envs/cpu.yaml"
    script:
        "../scripts/prepare_dataset.py"
