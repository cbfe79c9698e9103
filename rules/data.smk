# Stage 1: raw datasets -> problem records (one JSONL per split).


rule prepare_dataset:
    input:
        code=code("scripts/prepare_dataset.py"),
    output:
        train=f"{R}/data/{{dataset}}/train.jsonl",
        test=f"{R}/data/{{dataset}}/test.jsonl",
    params:
        spec=lambda wildcards: config["datasets"][wildcards.dataset],
    log:
        f"{R}/logs/prepare_dataset/{{dataset}}.log",
    conda:
        "../envs/cpu.yaml"
    script:
        "../scripts/prepare_dataset.py"
