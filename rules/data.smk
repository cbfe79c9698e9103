# Stage 1: raw datasets -> problem records (one JSONL per split), and where they came from: hub
# datasets are loaded at a resolved commit, local files are hashed (pidistill/provenance.py).


# A raw file no hub loader serves (miniF2F), from the config's pinned source_url and source_sha256.
# A localrule: the submit host reaches the network.
rule download_raw_dataset:
    input:
        code=code("scripts/download_raw_dataset.py"),
    output:
        f"{R}/raw/{{dataset}}/{{filename}}",
    log:
        f"{R}/logs/download_raw_dataset/{{dataset}}/{{filename}}.log",
    conda:
        "../envs/cpu.yaml"
    params:
        environment="main",
        url=lambda wildcards: config["datasets"][wildcards.dataset]["source_url"],
        sha256=lambda wildcards: config["datasets"][wildcards.dataset]["source_sha256"],
    script:
        "../scripts/download_raw_dataset.py"


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


# Train/test overlap from the problem records themselves (content hash of prompt and tests, not the
# dataset's name): the tables flag a study that trains and evaluates on overlapping problems. A CPU
# job next to prepare_dataset (it reads the whole training split, 7,500 MATH problems on the paper).
rule detect_overlap:
    input:
        train=f"{R}/data/{{dataset}}/train.jsonl",
        test=f"{R}/data/{{dataset}}/test.jsonl",
        code=code("scripts/detect_overlap.py"),
    output:
        f"{R}/data/{{dataset}}/overlap.json",
    log:
        f"{R}/logs/detect_overlap/{{dataset}}.log",
    conda:
        "../envs/cpu.yaml"
    params:
        environment="main",
    script:
        "../scripts/detect_overlap.py"
