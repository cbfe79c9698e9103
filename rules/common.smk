# Config helpers and target lists shared by every rule file.

import os
import sys
from pathlib import Path

sys.path.insert(0, workflow.basedir)  # the pidistill package of this checkout

from pidistill.config import (
    DERIVED_KINDS,
    attempt_sampling,
    method_sources,
    source_settings,
    bootstrap_settings,
    canonical,
    derived_sources,
    enabled_studies,
    method_settings,
    mucode_studies,
    retry_sampling,
    retry_settings,
    policy_lineage,
    policy_round,
    run_studies,
    study_runs,
    validate_config,
)
from pidistill.codedeps import code_files
from pidistill.dagstats import benchmark_files
from pidistill.domains.registry import loader_module
from pidistill.generation import backend_module
from pidistill.methods import (
    diagnosis_key,
    hint_key,
    method_filter,
    method_source,
    method_trainer,
    skeleton_key,
    source_id,
)
from pidistill.mucode import SELECTORS as MU_SELECTORS
from pidistill.verifiers import domain_settings, verifier_module

validate_config(config)
# Sorted keys everywhere: params compare by value, so reordering a config file reruns nothing.
_canonical = canonical(config)
config.clear()
config.update(_canonical)

R = config["results"]
RUNS = f"{R}/runs/{{dataset}}/{{model}}/seed{{seed}}"
# where rule install_lean_server puts the Lean checker installations (verifier.lean_server.prefix)
LEAN_PREFIX = (config.get("verifier", {}).get("lean_server") or {}).get("prefix", ".envs/lean")
STUDIES = sorted(enabled_studies(config))  # every enabled study: one paper section each
RUN_STUDIES = sorted(run_studies(config))  # those that train and evaluate policies
# the paper's order: the run studies, then the derived ones (amortized, levels, scale, domains, cost)
MUCODE_STUDIES = sorted(mucode_studies(config))  # multi-turn code with a learned verifier (rules/mucode.smk)
PAPER_STUDIES = (
    RUN_STUDIES
    + MUCODE_STUDIES
    + sorted(
        set(STUDIES) - set(RUN_STUDIES) - set(MUCODE_STUDIES),
        key=lambda s: (list(DERIVED_KINDS).index(config["studies"][s]["kind"]), s),
    )
)
USED_MODELS = sorted({config["studies"][s]["model"] for s in RUN_STUDIES + MUCODE_STUDIES})
USED_DATASETS = sorted(
    {config["studies"][s]["dataset"] for s in RUN_STUDIES}
    | {ds for s in MUCODE_STUDIES for ds in [config["studies"][s]["dataset"], *config["studies"][s]["eval_datasets"]]}
)
BOOTSTRAP = bootstrap_settings(config)
PAPER_PDF = f"{R}/paper/pidistill.pdf"
MODEL_PROVENANCE = f"{R}/models/{{model}}.provenance.json"  # written by resolve_model


GENERATION = config.get("generation", {})
BACKEND = GENERATION.get("backend", "transformers")
# Generation runs in the vLLM environment when the config asks for that backend (the cluster), and in
# the transformers one otherwise; training always uses envs/torch.yaml (see envs/vllm.yaml for why).
GENERATION_ENV = "../envs/vllm.yaml" if BACKEND == "vllm" else "../envs/torch.yaml"
# The pinned environment a rule's script runs in (params.environment; the config's `environments`
# maps a name to a venv, scripts/_repo.py switches to it): "main" is the driver's own .venv.
GENERATION_VENV = "vllm" if BACKEND == "vllm" else "main"


IN_CHECKOUT = Path.cwd().resolve() == Path(workflow.basedir).resolve()  # the working directory is set by now


def start_warm_worker():
    """onstart: in a local run (not a cluster's, not a job's own Snakemake), start the warm worker
    (pidistill/worker.py) unless the config says warm_worker: false."""
    from snakemake_interface_executor_plugins.settings import ExecMode

    from pidistill import worker

    if config.get("warm_worker", True) and workflow.local_exec and workflow.exec_mode == ExecMode.DEFAULT:
        worker.start(".snakemake/pidistill-warm-worker.log", workflow.basedir)


def stop_warm_worker():
    from pidistill import worker

    worker.stop()


def init_from(model):
    """The demo model whose pretraining ``model`` continues (its ``pretrain.init_from``), or None."""
    return (config["models"].get(model, {}).get("pretrain") or {}).get("init_from")


def model_depth(model):
    """0 for a model that is not continued from another; 1 + its parent's depth for one that is
    (tiny -> tiny_prover -> tiny_prover_strong)."""
    parent = init_from(model)
    return 1 + model_depth(parent) if parent else 0


def models_after(model):
    """How many pretrainings wait, one after another, for this one (tiny: 2, tiny_prover: 1)."""
    children = [m for m in config["models"] if init_from(m) == model]
    return max((1 + models_after(c) for c in children), default=0)


def pretrain_priority(wildcards):
    """Pretraining before every other ready job, the head of the longest chain first."""
    return 10 + models_after(wildcards.model)


def model_priority(wildcards):
    """Among ready jobs, those of a model that was ready later go first (its depth in the pretraining
    chain): their chains (heuristic rounds, diagnoses) start late, so this ends them with the rest
    instead of after it. Snakemake's greedy scheduler otherwise prefers the largest inputs."""
    return model_depth(wildcards.model) if "model" in wildcards.keys() else 0


def checkout_path(rel):
    """A file of this checkout, as a path that works from the working directory: relative when
    Snakemake runs in the checkout, absolute under `snakemake -s <checkout>/Snakefile -d <elsewhere>`."""
    return rel if IN_CHECKOUT else str(Path(workflow.basedir) / rel)


def code(script, *modules):
    """The script, the modules a registry chose for this job (loader, backend, verifier) and every
    pidistill module they run (pidistill/codedeps.py), as inputs: editing one reruns the job."""
    return [checkout_path(f) for f in code_files(Path(workflow.basedir) / script, Path(workflow.basedir), modules)]


def threads_heavy():
    return config.get("threads", 1)


# ---- models -----------------------------------------------------------------------------------


def model_path(model):
    spec = config["models"][model]
    if spec["source"] == "pretrain":
        return f"{R}/models/{model}"
    return spec["id"]


def model_files(model):
    """Model files a job that loads ``model`` needs: the pretrained demo model's directory, a local
    model's, or nothing for a hub model."""
    spec = config["models"][model]
    if spec["source"] == "pretrain":
        return [f"{R}/models/{model}"]
    if spec["source"] == "local":
        return [spec["id"]]
    return []


def pretrain_datasets(model, *keys):
    """The datasets a demo model's pretraining names under ``keys`` (``datasets``: its corpus;
    ``tokenizer_datasets``: more text for its tokenizer)."""
    spec = config["models"][model]["pretrain"]
    return [d for key in keys for d in spec.get(key, [])]


def pretrain_loaders(model, key):
    """Dataset name -> toy loader, for the datasets a demo model's pretraining names under ``key``."""
    return {d: config["datasets"][d]["loader"] for d in pretrain_datasets(model, key)}


def pretrain_author_modules(model):
    """The toy authors whose dialogues a demo model's pretraining corpus and its tokenizer's hold
    (its code inputs; the tokenizer's are read without the checker)."""
    from pidistill.tinymodel import author_module

    def authors(key, checker):
        return {author_module(config["datasets"][d]["loader"], checker) for d in pretrain_datasets(model, key)}

    return sorted(authors("datasets", True) | authors("tokenizer_datasets", False))


def model_inputs(wildcards):
    """Model files a job on the run's own model needs."""
    return model_files(wildcards.model)


# ---- methods: source -> filter -> trainer (pidistill/methods.py) -------------------------------

SOURCE_METHODS = method_sources(config)  # source id -> a method that has it (its spec is read from it)


def source_of(wildcards):
    """The spec of the source a generation job makes (params: the job reruns when it changes)."""
    try:
        method = SOURCE_METHODS[wildcards.source]
    except KeyError:
        raise ValueError(f"no enabled method has source {wildcards.source!r}") from None
    return source_settings(config, method, wildcards.dataset)


def retry_model(wildcards):
    """The model that retries: the policy itself, or the source's other model (cross-model retry)."""
    return source_of(wildcards).get("model") or wildcards.model


def retry_adapters(wildcards):
    """The policy's adapters when it retries itself; none when another model retries its failures."""
    if retry_model(wildcards) != wildcards.model:
        return []
    return adapters_of(wildcards, wildcards.parent)


HINTS = {
    hint_key(spec): {"model": spec["hint_model"], "prompt": spec["hint_prompt"]}
    for spec in (method_source(method_settings(config, m)) for m in SOURCE_METHODS.values())
    if spec.get("pi") == "hint"
}


def hints_file(wildcards, src):
    """The hints a cross-model hint source reads (rule sample_hints)."""
    return f"{R}/hints/{wildcards.dataset}/seed{wildcards.seed}/{hint_key(src)}/hints.jsonl"


def hint_spec(wildcards):
    return HINTS[wildcards.hint]


DIAGNOSES = {
    diagnosis_key(spec): {"model": spec["diagnosis_model"], "prompt": spec["diagnosis_prompt"]}
    for spec in (method_source(method_settings(config, m)) for m in SOURCE_METHODS.values())
    if spec.get("pi") == "diagnosis"
}


def diagnosis_spec(wildcards):
    return DIAGNOSES[wildcards.diagnosis]


def diagnoses_file(wildcards, src):
    """The diagnoses of the parent policy's failed attempts a failure-diagnosis source reads (rule
    sample_diagnoses)."""
    return f"{run_dir(wildcards)}/{wildcards.parent}/diagnoses/{diagnosis_key(src)}/diagnoses.jsonl"


SKELETONS = {skeleton_key(ds["skeletons"]): ds["skeletons"] for ds in config["datasets"].values() if "skeletons" in ds}


def skeletons_file(wildcards):
    """The checked skeletons of the dataset's skeleton source (rule check_skeletons); nothing for a
    dataset whose problems carry their own (meta.skeleton)."""
    spec = config["datasets"][wildcards.dataset].get("skeletons")
    if spec is None:
        return {}
    return {"skeletons": f"{R}/skeletons/{wildcards.dataset}/seed{wildcards.seed}/{skeleton_key(spec)}/skeletons.jsonl"}


def skeleton_spec(wildcards):
    return SKELETONS[wildcards.skeleton]


def opsd_skeleton_inputs(wildcards):
    """The checked skeletons an OPSD method with the skeleton PI reads."""
    if method_settings(config, wildcards.method)["train"].get("privileged") != "skeleton":
        return {}
    return skeletons_file(wildcards)


def retry_extra_inputs(wildcards):
    """The PI assignment (wrong answer, shuffled tests), the hints file or the diagnoses of the
    policy's failed attempts (rule sample_diagnoses) a retry source reads."""
    src = source_of(wildcards)
    if src["pi"] in ("wrong", "other_tests"):
        return {"donors": f"{R}/data/{wildcards.dataset}/pi_donors/{src['pi']}-seed{wildcards.seed}.json"}
    if src["pi"] == "hint":
        return {"hints": hints_file(wildcards, src)}
    if src["pi"] == "diagnosis":
        return {"diagnoses": diagnoses_file(wildcards, src)}
    if src["pi"] == "skeleton":
        return skeletons_file(wildcards)
    return {}


def extra_attempt_inputs(wildcards):
    """resample draws for each failed first attempt, so it reads their verdicts; samples does not."""
    if source_of(wildcards)["kind"] == "resample":
        return {"first_verdicts": f"{run_dir(wildcards)}/{wildcards.policy}/first_attempts.verdicts.jsonl"}
    return {}


def candidate_inputs(wildcards):
    """What a method's filter reads beyond the first attempts: its source's verified candidates
    (none for rejection-sampling SFT, whose candidates are the first attempts), and the hints."""
    src = method_source(method_settings(config, wildcards.method))
    sid = source_id(src)
    out = {}
    if sid is not None:
        out["candidates"] = f"{run_dir(wildcards)}/{wildcards.parent}/sources/{sid}/samples.verdicts.jsonl"
    if src.get("pi") == "hint":
        out["hints"] = hints_file(wildcards, src)
    if src.get("pi") == "diagnosis":
        out["diagnoses"] = diagnoses_file(wildcards, src)
    return out


def trainer_of(wildcards):
    return method_trainer(method_settings(config, wildcards.method))


def opsd_pi_settings(wildcards):
    """What build_opsd_prompts reads of an OPSD method's train section: its PI and how it reads (a
    learning rate or a step count changes the training, not the prompts)."""
    train = method_settings(config, wildcards.method)["train"]
    return {k: train[k] for k in ("trainer", "privileged", "pi_template") if k in train}


def train_inputs(wildcards):
    """SFT trainers read the pairs; GRPO reads the problems and the first attempts' verdicts; OPSD
    its prompts with their PI (rule build_opsd_prompts)."""
    base = f"{run_dir(wildcards)}/{wildcards.parent}/r{wildcards.round}-{wildcards.method}"
    if trainer_of(wildcards) == "opsd":
        return {"prompts": f"{base}/opsd_prompts.jsonl"}
    if trainer_of(wildcards) == "grpo":
        return {
            "problems": split_file(wildcards, "train"),
            "first_verdicts": f"{run_dir(wildcards)}/{wildcards.parent}/first_attempts.verdicts.jsonl",
        }
    return {"pairs": f"{base}/sft_pairs.jsonl"}


def train_code(wildcards):
    if trainer_of(wildcards) == "grpo":
        return code("scripts/train_adapter.py", "pidistill.grpo", verifier_module(domain_of(wildcards)))
    if trainer_of(wildcards) == "opsd":
        return code("scripts/train_adapter.py", "pidistill.opsd")
    return code("scripts/train_adapter.py")


# ---- policies ---------------------------------------------------------------------------------


def run_dir(wildcards):
    return RUNS.format(dataset=wildcards.dataset, model=wildcards.model, seed=wildcards.seed)


def adapters_of(wildcards, policy):
    """Adapter directories of every round of ``policy``, oldest first (none for base)."""
    return [f"{run_dir(wildcards)}/{p}/adapter" for p in policy_lineage(policy)]


def model_provenance(wildcards):
    """The model's resolved revision (commit or content hash): jobs load the model as recorded there."""
    return MODEL_PROVENANCE.format(model=wildcards.model)


def policy_inputs(wildcards):
    return {
        "model": model_inputs(wildcards),
        "model_provenance": model_provenance(wildcards),
        "adapters": adapters_of(wildcards, wildcards.policy),
    }


def check_round(wildcards):
    if int(wildcards.round) != policy_round(wildcards.parent) + 1:
        raise ValueError(f"round r{wildcards.round} does not follow parent policy {wildcards.parent!r}")
    return []


def split_file(wildcards, split):
    return f"{R}/data/{wildcards.dataset}/{split}.jsonl"


# ---- targets ----------------------------------------------------------------------------------


def study_evaluations(study):
    return [f"{R}/runs/{r.run_dir}/{r.policy}/evaluation.json" for r in study_runs(config, study)]


def study_round_stats(study):
    return [
        f"{R}/runs/{r.run_dir}/{r.policy}/round_stats.json" for r in study_runs(config, study) if r.policy != "base"
    ]


def study_adapters(study):
    return [f"{R}/runs/{r.run_dir}/{r.policy}/adapter" for r in study_runs(config, study) if r.policy != "base"]


def lean_server_installation(domain):
    """A formal verification job that starts its own Lean server needs the installation (and reruns
    when it is reinstalled); no other job does."""
    managed = config.get("verifier", {}).get("lean_server")
    if domain != "formal" or not managed or config["verifier"].get("checker") != "lean-server":
        return []
    return [f"{LEAN_PREFIX}/{managed['variant']}/installed.json"]


def verify_problems(wildcards):
    """Evaluation samples are checked against the test split, everything else against train."""
    return split_file(wildcards, "test" if wildcards.kind == "eval_samples" else "train")


# ---- report ----------------------------------------------------------------------------------


def studies_of_kind(kind):
    return [s for s in STUDIES if config["studies"][s]["kind"] == kind] or ["__none__"]


def study_methods(study):
    spec = config["studies"][study]
    return spec["methods"] if spec["kind"] == "conditions" else [spec["method"]]


def study_params(wildcards):
    """The study's config and the labels of its own methods (another method's label is not used)."""
    study = config["studies"][wildcards.study]
    labels = {m: config["methods"][m].get("label", m) for m in study_methods(wildcards.study)}
    return {"name": wildcards.study, **study, "labels": labels}


# ---- datasets and verification -------------------------------------------------------------


def downloaded_source(dataset):
    """Where download_raw_dataset puts a dataset's source_url file (None: the config has none)."""
    url = config["datasets"][dataset].get("source_url")
    return f"{R}/raw/{dataset}/{os.path.basename(url)}" if url else None


def dataset_split_spec(dataset, split):
    """What preparing one split reads: its loader, the loader's options, its local source file (the
    downloaded one where the config gives source_url)."""
    spec = dict(config["datasets"][dataset])
    if spec.get("source_url"):
        spec.setdefault("source", downloaded_source(dataset))
    if split == "test":
        return (
            spec.get("test_loader", spec["loader"]),
            spec.get("test_options", {}),
            spec.get("test_source", spec.get("source")),
        )
    return spec["loader"], spec.get("train_options", {}), spec.get("source")


def dataset_sources(wildcards):
    """Local raw files of a dataset: inputs, so replacing one reruns its preparation."""
    return sorted({src for split in ("train", "test") if (src := dataset_split_spec(wildcards.dataset, split)[2])})


def dataset_params(wildcards):
    out = {"domain": config["datasets"][wildcards.dataset]["domain"]}
    for split in ("train", "test"):
        loader, options, source = dataset_split_spec(wildcards.dataset, split)
        out[split] = {"loader": loader, "options": options, "source": source}
    return out


def dataset_loader_modules(dataset):
    return sorted({loader_module(dataset_split_spec(dataset, split)[0]) for split in ("train", "test")})


def domain_of(wildcards):
    return config["datasets"][wildcards.dataset]["domain"]


def method_table_studies():
    return [s for s in RUN_STUDIES if config["studies"][s].get("method_table")] or ["__none__"]


def curve_studies():
    return [s for s in RUN_STUDIES if config["studies"][s].get("curve")] or ["__none__"]


def study_figures(study):
    kind = config["studies"][study]["kind"]
    if kind == "conditions":
        out = [f"{R}/figures/{study}_gains.pdf", f"{R}/figures/{study}_training.pdf"]
        if config["studies"][study].get("curve"):
            out.append(f"{R}/figures/{study}_curve.pdf")
        return out
    if kind == "rounds":
        return [f"{R}/figures/{study}_rounds.pdf"]
    if kind == "scale":
        return [f"{R}/figures/{study}_scale.pdf"]
    if kind == "mucode":
        return [f"{R}/figures/{study}_turns.pdf"]
    return []


def study_table(study):
    """The study's LaTeX table. The cost table is made of measured times, which differ from run to run,
    so it lives under benchmarks/ with the benchmark files (the rebuild test compares everything else)."""
    if config["studies"][study]["kind"] == "cost":
        return f"{R}/benchmarks/{study}/table.tex"
    return f"{R}/tables/{study}.tex"


def study_numbers(study):
    """The numbers a study's prose quotes (none for cost: they would be measurements)."""
    return [] if config["studies"][study]["kind"] == "cost" else [f"{R}/studies/{study}/numbers.json"]


# ---- derived studies -------------------------------------------------------------------------


def source_spec(source):
    """What a derived study reads of a study it draws from: the runs it has, not its labels or stop rule."""
    keys = ("kind", "dataset", "model", "seeds", "methods", "method", "rounds")
    return {k: v for k, v in config["studies"][source].items() if k in keys}


def derived_params(wildcards):
    study = config["studies"][wildcards.study]
    keep = ("kind", "title", "round", "band", "methods", "device", "lr_study")
    sources = derived_sources(config, wildcards.study)
    return {
        "name": wildcards.study,
        **{k: v for k, v in study.items() if k in keep},
        "sources": {s: source_spec(s) for s in sources},
    }


def amortized_round(study):
    return config["studies"][study].get("round", config["studies"][derived_sources(config, study)[0]]["rounds"])


def amortized_runs(study):
    """The base run and the run after the compared round, for each seed of the rounds study."""
    r = amortized_round(study)
    return [run for run in study_runs(config, derived_sources(config, study)[0]) if run.round in (0, r)]


def evaluation_file(run):
    return f"{R}/runs/{run.run_dir}/{run.policy}/evaluation.json"


def derived_labels(study, sources=None):
    """Labels of the methods a derived study shows."""
    sources = sources or derived_sources(config, study)
    return {m: config["methods"][m].get("label", m) for s in sources for m in study_methods(s)}


def lr_settings(study):
    """Learning rate and LoRA rank of each method of the scale study's LR sweep."""
    lr_study = config["studies"][study]["lr_study"]
    return {
        m: {k: method_settings(config, m)["train"].get(k) for k in ("learning_rate", "lora_r")}
        for m in study_methods(lr_study)
    }


def curve_values(study):
    """Method -> the value of the study's curve setting (k: retries per failed first attempt)."""
    setting = config["studies"][study]["curve"]
    return {m: source_settings(config, m)[setting] for m in study_methods(study)}


def method_table_specs():
    """What the method table reads of each run study: kind, dataset, model, domain, method label."""
    out = {}
    for s in RUN_STUDIES:
        spec = config["studies"][s]
        out[s] = {
            "kind": spec["kind"],
            "dataset": spec["dataset"],
            "model": spec["model"],
            "domain": config["datasets"][spec["dataset"]]["domain"],
        }
        if spec["kind"] == "rounds":
            out[s]["label"] = config["methods"][spec["method"]].get("label", spec["method"])
    return out


def method_descriptions(studies):
    """Method -> the sentence that says what it is (pidistill.methods.describe_method), and its note."""
    from pidistill.methods import describe_method

    methods = sorted({m for s in studies if s in RUN_STUDIES for m in study_methods(s)})
    return {
        m: {
            "label": config["methods"][m].get("label", m),
            "text": describe_method(method_settings(config, m)),
            "note": config["methods"][m].get("note"),
        }
        for m in methods
    }


def cost_jobs(study):
    """Study -> benchmark files of every heavy job it needs, for each study the cost table covers."""
    return {s: benchmark_files(config, s, R) for s in derived_sources(config, study)}


# ---- µCode (rules/mucode.smk) ---------------------------------------------------------------


MU = f"{R}/mucode/{{study}}/{{dataset}}/{{model}}/seed{{seed}}"


def mu_study(wildcards):
    return config["studies"][wildcards.study]


def mu_generator(wildcards, method, iteration):
    """A policy's weights: none for the base (iteration 0), else that iteration's generator."""
    iteration = int(iteration)
    if iteration == 0:
        return []
    return [f"{MU}/iter{iteration}/generator/{method}".format(**wildcards)]


def mu_rollouts_upto(wildcards, iteration):
    return [f"{MU}/iter{i}/rollouts.jsonl".format(**wildcards) for i in range(int(iteration) + 1)]


def mu_last_generator(wildcards):
    """Whether the policy is the last µCode generator, the one the selectors, verifier-iteration and
    tests-hidden tables evaluate."""
    return wildcards.method == "mucode" and int(wildcards.iteration) == mu_study(wildcards)["iterations"]


def mu_verifiers(wildcards):
    """The policy's own verifier (the newest trained before its generator: iteration i-1, the base's:
    0), then, for the last µCode generator, the first iteration's (the verifier-iteration table)."""
    own = max(0, int(wildcards.iteration) - 1)
    return [f"iter{own}"] + (["iter0"] if mu_last_generator(wildcards) and own != 0 else [])


def mu_hidden(wildcards):
    """The tests-hidden evaluation: the base and the last µCode generator."""
    return bool(mu_study(wildcards).get("hidden_tests", True)) and (
        wildcards.method == "base" or mu_last_generator(wildcards)
    )


def mu_selectors(wildcards):
    """The selectors a policy's BoN runs with besides its method's own (eval.selector, which
    pidistill.mucode.evaluate always runs): every one for the last µCode generator (the selectors
    table), none for the others."""
    return list(MU_SELECTORS) if mu_last_generator(wildcards) else []


def mu_params(wildcards):
    return {"name": wildcards.study, **mu_study(wildcards)}


def mu_model(wildcards):
    return mu_study(wildcards)["model"]


def mu_runs(study):
    """(dataset, model, seed) of a µCode study's paths."""
    spec = config["studies"][study]
    return [dict(study=study, dataset=spec["dataset"], model=spec["model"], seed=s) for s in spec["seeds"]]


def mu_evaluations(study):
    """Every evaluation of a µCode study: the base (iteration 0) and each method's generator of each
    iteration, on each evaluation dataset."""
    spec = config["studies"][study]
    policies = [("base", 0)] + [(m, i) for i in range(1, spec["iterations"] + 1) for m in spec["methods"]]
    return [
        f"{MU}/iter{i}/eval/{m}/{ds}.json".format(**run)
        for run in mu_runs(study)
        for m, i in policies
        for ds in spec["eval_datasets"]
    ]
