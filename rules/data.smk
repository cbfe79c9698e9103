# Stage 1: raw datasets -> problem records (one JSONL per split), and where they came from: hub
# datasets are loaded at a resolved commit, local files are hashed (pidistill/provenance.py).


rule prepare_dataset:
    input:
        sources=dataset_sources,
        code=lambda wildcards: code("scripts/prepare_dataset.py", *dataset_loader_modules(wildcards.dataset)),
    output:
        train=f"{R}/data/{{dataset}}/train.jsonl",
        test=f"{R}/data/{{dataset}}/test.jsonl",
        provenance=f"{R}/data/{{dataset}}/provenance.json",
    log:
        f"{R}/logs/prepare_dataset/{{dataset}}.log",
    conda:
        "../envs/cpu.yaml"
    params:
        environment="main",
        spec=dataset_params,
    script:
        "../scripts/prepare_dataset.py"
