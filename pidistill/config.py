"""Workflow configuration: schema validation with messages that name the key, and run expansion.

``validate_config`` checks ``config/schema.yaml`` (structure, types, unknown keys) and then the
cross-references a schema cannot express (a study naming a missing method, test-suite PI on a math
dataset, pass@k beyond n). ``study_runs`` expands the studies into the runs ``rule all`` needs.
"""

from __future__ import annotations

import copy
import importlib
from dataclasses import dataclass
from pathlib import Path

import yaml

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "config" / "schema.yaml"
DEFAULT_BOOTSTRAP = {"samples": 2000, "seed": 0}  # config key bootstrap


def bootstrap_settings(config: dict) -> dict:
    """The paired bootstrap's resamples and seed (config key ``bootstrap`` over the defaults)."""
    return {**DEFAULT_BOOTSTRAP, **config.get("bootstrap", {})}


class ConfigError(ValueError):
    """A configuration mistake; the message names the config key."""


def _key(path) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def load_schema(path: str | Path = SCHEMA_PATH) -> dict:
    return yaml.safe_load(Path(path).read_text())


def validate_config(config: dict, schema: dict | None = None) -> dict:
    """Validate ``config`` in place; returns it. Raises ConfigError naming the offending key."""
    import jsonschema

    schema = schema or load_schema()
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: (len(e.absolute_path), list(map(str, e.absolute_path))))
    if errors:
        err = errors[0]
        key = _key(err.absolute_path)
        if err.validator == "additionalProperties":
            extra = sorted(set(err.instance) - set(err.schema.get("properties", {})))
            raise ConfigError(f"config key {key}: unknown key(s) {extra}")
        raise ConfigError(f"config key {key}: {err.message}")
    _check_references(config)
    return config


def _check_references(config: dict) -> None:
    for name, ds in config["datasets"].items():
        for section in ("first_attempts", "evaluation"):
            n = ds[section]["n"]
            for k in ds[section].get("k", []):
                if k > n:
                    raise ConfigError(f"config key datasets.{name}.{section}.k: pass@{k} needs k <= n = {n}")
        skeletons = ds.get("skeletons")
        if skeletons is not None:
            where = f"config key datasets.{name}.skeletons"
            if ds["domain"] != "formal":
                raise ConfigError(f"{where}: proof skeletons are for formal datasets; {name!r} is {ds['domain']}")
            if skeletons["model"] not in config["models"]:
                raise ConfigError(f"{where}.model: unknown model {skeletons['model']!r}")
            _check_prompt(f"{where}.prompt", skeletons["prompt"], ("prompt",))
    for name, model in config["models"].items():
        if model["source"] == "pretrain" and "pretrain" not in model:
            raise ConfigError(f"config key models.{name}.pretrain: required when source is 'pretrain'")
        if model["source"] != "pretrain" and "id" not in model:
            raise ConfigError(f"config key models.{name}.id: required when source is {model['source']!r}")
        pretrain = model.get("pretrain", {})
        if pretrain:
            # imported by name, like pidistill.mucode below: not code of every job (pidistill/codedeps.py)
            defaults = importlib.import_module("pidistill.tinymodel").TinyModelConfig
            batch = pretrain.get("batch_size", defaults.batch_size)
            micro = pretrain.get("micro_batches", defaults.micro_batches)
            if batch % micro:
                raise ConfigError(f"config key models.{name}.pretrain.micro_batches: {micro} does not divide "
                                  f"batch_size {batch}")
        init = pretrain.get("init_from")
        if init is not None and (init not in config["models"] or config["models"][init]["source"] != "pretrain"
                                 or init == name):
            raise ConfigError(f"config key models.{name}.pretrain.init_from: {init!r} is not another pretrained model")
        for key in ("datasets", "tokenizer_datasets"):
            for ds in model.get("pretrain", {}).get(key, []):
                if ds not in config["datasets"]:
                    raise ConfigError(f"config key models.{name}.pretrain.{key}: unknown dataset {ds!r}")
        if init is not None:
            for key in ("tokenizer_datasets", "vocab_size"):
                if key in model["pretrain"]:
                    raise ConfigError(f"config key models.{name}.pretrain.{key}: {name} continues {init} and keeps "
                                      f"its tokenizer; set {key} on {init}")
    runs = run_studies(config)
    _check_formal_checker(config, runs)
    for sname, study in runs.items():
        where = f"studies.{sname}"
        if study["dataset"] not in config["datasets"]:
            raise ConfigError(f"config key {where}.dataset: unknown dataset {study['dataset']!r}")
        if study["model"] not in config["models"]:
            raise ConfigError(f"config key {where}.model: unknown model {study['model']!r}")
        if study["kind"] == "conditions":
            if "methods" not in study:
                raise ConfigError(f"config key {where}.methods: required for kind 'conditions'")
            methods = study["methods"]
            for m in study.get("method_seeds", {}):
                if m not in methods:
                    raise ConfigError(f"config key {where}.method_seeds.{m}: not one of the study's methods")
        else:
            if "method_seeds" in study:
                raise ConfigError(f"config key {where}.method_seeds: only for kind 'conditions'")
            if "method" not in study or "rounds" not in study:
                raise ConfigError(f"config key {where}: kind 'rounds' needs 'method' and 'rounds'")
            methods = [study["method"]]
        domain = config["datasets"][study["dataset"]]["domain"]
        for m in methods:
            if m not in config["methods"]:
                raise ConfigError(f"config key {where}: unknown method {m!r}")
            _check_method(config, m, sname, study, domain)
    for sname, study in derived_studies(config).items():
        _check_derived(config, sname, study, {**runs, **mucode_studies(config)})
    for sname, study in mucode_studies(config).items():
        _check_mucode(config, sname, study)


def _check_mucode(config: dict, name: str, study: dict) -> None:
    """A µCode study: code datasets with public tests, known methods, settings its trainers take.

    pidistill.mucode and pidistill.sft are imported by name: every rule reads the config, and an
    import the code walk (pidistill/codedeps.py) follows would make them code of every job."""
    import importlib

    METHODS = importlib.import_module("pidistill.mucode").METHODS

    where = f"config key studies.{name}"
    if study["model"] not in config["models"]:
        raise ConfigError(f"{where}.model: unknown model {study['model']!r}")
    for key, names in (("dataset", [study["dataset"]]), ("eval_datasets", study["eval_datasets"])):
        for ds in names:
            if ds not in config["datasets"]:
                raise ConfigError(f"{where}.{key}: unknown dataset {ds!r}")
            if config["datasets"][ds]["domain"] != "code":
                raise ConfigError(f"{where}.{key}: {ds!r} is a {config['datasets'][ds]['domain']} dataset; "
                                  "µCode runs code with public and private tests")
    for m in study["methods"]:
        if m not in METHODS:
            raise ConfigError(f"{where}.methods: unknown µCode method {m!r} (known: {', '.join(METHODS)})")
    if "mucode" not in study["methods"]:
        raise ConfigError(f"{where}.methods: must include 'mucode' (its generators make the next iteration's rollouts)")
    ev = study.get("eval", {})
    if ev.get("report_turns", 3) > ev.get("turns", 6):
        raise ConfigError(f"{where}.eval.report_turns: more than eval.turns ({ev.get('turns', 6)})")
    if "{feedback}" not in study.get("feedback_template", "{feedback}"):
        raise ConfigError(f"{where}.feedback_template: must contain {{feedback}}")
    import dataclasses

    TrainSettings = importlib.import_module("pidistill.sft").TrainSettings
    known = {f.name for f in dataclasses.fields(TrainSettings)} - {"extra", "min_pairs"}
    unknown = sorted(set(study.get("generator", {})) - known)
    if unknown:
        raise ConfigError(f"{where}.generator: unknown key(s) {unknown} (known: {', '.join(sorted(known))})")
    trainer = study.get("generator", {}).get("trainer", "full")
    if trainer not in ("full", "lora"):
        raise ConfigError(f"{where}.generator.trainer: {trainer!r} (µCode fine-tunes with full or lora)")


def _check_formal_checker(config: dict, runs: dict) -> None:
    """A study on formal problems needs a real proof checker, named in the config: no checker, no
    pass rate (pidistill/verifiers/formal.py)."""
    formal = sorted(s for s, st in runs.items() if config["datasets"][st["dataset"]]["domain"] == "formal")
    if not formal:
        return
    verifier = config.get("verifier", {})
    if not verifier.get("checker"):
        raise ConfigError(f"config key verifier.checker: study {formal[0]!r} has formal problems; set the proof "
                          "checker (lean-server with verifier.server_url, or coq)")
    if verifier["checker"] != "lean-server":
        return
    url, managed = verifier.get("server_url"), verifier.get("lean_server")
    if bool(url) == bool(managed):
        raise ConfigError("config key verifier.server_url: verifier.checker is lean-server; set either the URL of a "
                          "running kimina-lean-server (server_url) or the installation each verification job starts "
                          "(lean_server: {variant, prefix}), not " + ("both" if url else "neither")
                          + " (docs/formal-verifier.md)")
    if managed:
        # a statement is checked against the Mathlib it was written for: the installation's variant is
        # the miniF2F variant of every Lean dataset a study uses
        for sname in formal:
            dataset = runs[sname]["dataset"]
            loader = config["datasets"][dataset]["loader"]
            if loader.startswith("minif2f") and loader != managed["variant"]:
                raise ConfigError(f"config key verifier.lean_server.variant: {managed['variant']!r}, but study "
                                  f"{sname!r} uses dataset {dataset!r} ({loader}), written against another Mathlib")


def _check_prompt(where: str, prompt: str, fields: tuple[str, ...]) -> None:
    """A prompt template fills exactly ``fields`` (``{field}``; literal braces doubled)."""
    import string

    try:
        named = {f for _, f, _, _ in string.Formatter().parse(prompt) if f is not None}
    except ValueError as e:
        raise ConfigError(f"{where}: {e} (write a literal brace as {{{{ or }}}})") from None
    if named != set(fields):
        raise ConfigError(f"{where}: must contain {', '.join('{' + f + '}' for f in fields)} and no other field, "
                          f"has {sorted(named) or 'none'}")


# loaders whose records carry no proof skeleton (meta.skeleton): the skeleton PI needs a source
_NO_SKELETONS = ("minif2f-deepseek", "minif2f-lean4")


def _check_skeletons(config: dict, where: str, study: dict) -> None:
    ds = config["datasets"][study["dataset"]]
    if ds["loader"] in _NO_SKELETONS and "skeletons" not in ds:
        raise ConfigError(f"{where}: the skeleton PI needs a skeleton per problem, and dataset {study['dataset']!r} "
                          f"({ds['loader']}) has none: name a skeleton source, datasets.{study['dataset']}.skeletons: "
                          "{model, prompt} (pidistill/skeletons.py)")


def _check_method(config: dict, name: str, sname: str, study: dict, domain: str) -> None:
    """A method's pieces fit together and fit the study's dataset (see pidistill/methods.py)."""
    from pidistill.methods import method_source, method_trainer

    where = f"config key methods.{name}"
    method = config["methods"][name]
    try:
        src = method_source(method_settings(config, name))
    except ValueError as e:
        raise ConfigError(f"{where}.source: {e}") from None
    pi = src.get("pi")
    if pi in ("tests", "other_tests") and domain != "code":
        raise ConfigError(f"{where}.pi: {pi!r} needs a code dataset, but study {sname!r} uses {study['dataset']!r} ({domain})")
    if src["kind"] != "retry" and any(k in method for k in ("pi", "k", "retry_text", "pi_template", "gibberish", "pi_max_chars")):
        raise ConfigError(f"{where}: pi, k and the retry wording belong to retry sources; the source is {src['kind']!r}")
    if pi == "skeleton":
        if domain != "formal":
            raise ConfigError(f"{where}.pi: 'skeleton' needs a formal dataset, but study {sname!r} uses "
                              f"{study['dataset']!r} ({domain})")
        _check_skeletons(config, f"{where}.pi", study)
    for key in ("model", "hint_model", "diagnosis_model"):
        if key in src and src[key] not in config["models"]:
            raise ConfigError(f"{where}.source.{key}: unknown model {src[key]!r}")
    trainer = method_trainer(method_settings(config, name))
    if trainer == "grpo" and src["kind"] != "first_attempts":
        raise ConfigError(f"{where}.source: trainer 'grpo' samples its own candidates; give it source kind "
                          f"'first_attempts' (its prompts are the problems with a failed first attempt)")
    if trainer == "opsd":
        _check_opsd(config, name, sname, study, domain, src)


def _check_opsd(config: dict, name: str, sname: str, study: dict, domain: str, src: dict) -> None:
    """An OPSD method's PI fits the dataset, its filter its source, its teacher the study's rounds.

    pidistill.opsd is imported by name: this check runs in the Snakemake driver, never in a job, so
    it must not make the OPSD trainer a code input of every job that reads the config helpers here
    (pidistill/codedeps.py; a job that did import it would fail rule_log's check loudly)."""
    OPSDSettings = importlib.import_module("pidistill.opsd").OPSDSettings  # noqa: N806

    where = f"config key methods.{name}"
    train = method_settings(config, name)["train"]
    try:
        settings = OPSDSettings.from_config(train)
    except ValueError as e:
        raise ConfigError(f"{where}.train: {e}") from None
    if settings.privileged == "tests" and domain != "code":
        raise ConfigError(f"{where}.train.privileged: 'tests' needs a code dataset, but study {sname!r} uses "
                          f"{study['dataset']!r} ({domain})")
    if settings.privileged == "skeleton":
        _check_skeletons(config, f"{where}.train.privileged", study)
    try:
        settings.template_for(domain)
    except ValueError as e:
        raise ConfigError(f"{where}.train: {e} (study {sname!r} uses {study['dataset']!r}, {domain})") from None
    if src["kind"] == "first_attempts" and config["methods"][name].get("filter", {}).get("threshold") is not None:
        raise ConfigError(f"{where}.filter.threshold: OPSD with source 'first_attempts' trains on the problems "
                          "themselves; a graded threshold needs a source with candidates")
    if study["kind"] == "rounds" and study["rounds"] > 1 and settings.teacher_model_kind == "base":
        raise ConfigError(f"{where}.train.teacher_model_kind: 'base' is the model without any adapter, so from "
                          f"round 2 of study {sname!r} on it would not be the parent policy; use 'live' or 'ema'")


def _check_derived(config: dict, name: str, study: dict, runs: dict) -> None:
    """A derived study draws from enabled run studies of the kind it reads (see DERIVED_KINDS)."""
    where = f"config key studies.{name}"
    kind = study["kind"]
    wanted = DERIVED_KINDS[kind]
    sources = derived_sources(config, name)
    if kind in ("amortized", "levels") and len(sources) != 1:
        raise ConfigError(f"{where}.from: kind {kind!r} draws from one study")
    if kind in ("domains", "hierarchy") and not sources:
        raise ConfigError(f"{where}.from: kind {kind!r} needs the studies it lists")
    for source in sources + ([study["lr_study"]] if "lr_study" in study else []):
        if source not in config["studies"]:
            raise ConfigError(f"{where}: unknown study {source!r}")
        if source not in runs:
            raise ConfigError(f"{where}: study {source!r} is switched off or is itself derived "
                              f"(kind {kind!r} draws from {' or '.join(wanted)} studies)")
        if runs[source]["kind"] not in wanted:
            raise ConfigError(f"{where}: study {source!r} is of kind {runs[source]['kind']!r}; "
                              f"kind {kind!r} draws from {' or '.join(wanted)} studies")
    if kind == "amortized" and study.get("round", 1) > runs[sources[0]]["rounds"]:
        raise ConfigError(f"{where}.round: study {sources[0]!r} has only {runs[sources[0]]['rounds']} rounds")
    if kind == "scale" and "lr_study" in study and runs[study["lr_study"]]["kind"] != "conditions":
        raise ConfigError(f"{where}.lr_study: must be a conditions study")
    if "band" in study and not study["band"][0] < study["band"][1]:
        raise ConfigError(f"{where}.band: [low, high] with low < high, got {study['band']}")
    for m in study.get("methods", []):
        if m not in config["methods"]:
            raise ConfigError(f"{where}: unknown method {m!r}")


# Studies that run policies, and studies derived from their results (kind -> kinds it draws from).
RUN_KINDS = ("conditions", "rounds")
DERIVED_KINDS = {
    "amortized": ("rounds",),
    "levels": ("conditions",),
    "scale": ("conditions",),
    "domains": ("conditions",),
    "hierarchy": ("conditions", "rounds"),
    "cost": ("conditions", "rounds", "mucode"),
}


def run_studies(config: dict) -> dict:
    """Enabled studies that train and evaluate policies (kinds conditions and rounds)."""
    return {k: v for k, v in enabled_studies(config).items() if v["kind"] in RUN_KINDS}


def mucode_studies(config: dict) -> dict:
    """Enabled µCode studies (kind mucode: rollouts, verifiers and generators of their own)."""
    return {k: v for k, v in enabled_studies(config).items() if v["kind"] == "mucode"}


def derived_studies(config: dict) -> dict:
    """Enabled studies computed from the run studies' results, without generation of their own."""
    return {k: v for k, v in enabled_studies(config).items() if v["kind"] in DERIVED_KINDS}


def derived_sources(config: dict, name: str) -> list[str]:
    """The run studies a derived study draws from: its ``from`` (a name or a list), or, where it
    leaves that out (scale, cost), every enabled study of the kinds it reads, in sorted order."""
    study = config["studies"][name]
    src = study.get("from")
    if src is None:
        wanted = DERIVED_KINDS[study["kind"]]
        studies = {**run_studies(config), **mucode_studies(config)}
        return sorted(s for s, v in studies.items() if v["kind"] in wanted)
    return [src] if isinstance(src, str) else list(src)


@dataclass(frozen=True)
class Run:
    """One trained-and-evaluated policy of a study."""

    study: str
    dataset: str
    model: str
    seed: int
    policy: str  # lineage path: base/r1-<method>/r2-<method>...

    @property
    def run_dir(self) -> str:
        return f"{self.dataset}/{self.model}/seed{self.seed}"

    @property
    def round(self) -> int:
        return policy_round(self.policy)

    @property
    def method(self) -> str | None:
        return policy_method(self.policy)


def policy_round(policy: str) -> int:
    return policy.count("/")


def policy_method(policy: str) -> str | None:
    if policy == "base":
        return None
    return policy.rsplit("/", 1)[1].split("-", 1)[1]


def policy_parent(policy: str) -> str:
    if policy == "base":
        raise ValueError("the base policy has no parent")
    return policy.rsplit("/", 1)[0]


def policy_lineage(policy: str) -> list[str]:
    """Every trained ancestor and the policy itself, oldest first (base excluded)."""
    parts = policy.split("/")
    return ["/".join(parts[: i + 1]) for i in range(1, len(parts))]


def child_policy(parent: str, method: str) -> str:
    return f"{parent}/r{policy_round(parent) + 1}-{method}"


def enabled_studies(config: dict) -> dict:
    return {k: v for k, v in config["studies"].items() if v.get("enabled", True)}


def method_seeds(study: dict, method: str) -> list[int]:
    """The seeds a method of a study runs with: its own (``method_seeds``) or the study's."""
    return list(study.get("method_seeds", {}).get(method, study["seeds"]))


def study_seeds(study: dict) -> list[int]:
    """Every seed a study runs (each with its base policy): the study's, then the methods' own."""
    out = list(study["seeds"])
    for seeds in study.get("method_seeds", {}).values():
        out += [s for s in seeds if s not in out]
    return out


def study_runs(config: dict, study_name: str) -> list[Run]:
    study = config["studies"][study_name]
    runs = []
    for seed in study_seeds(study):
        base = Run(study_name, study["dataset"], study["model"], seed, "base")
        runs.append(base)
        if study["kind"] == "conditions":
            runs += [Run(study_name, study["dataset"], study["model"], seed, child_policy("base", m))
                     for m in study["methods"] if seed in method_seeds(study, m)]
        else:
            policy = "base"
            for _ in range(study["rounds"]):
                policy = child_policy(policy, study["method"])
                runs.append(Run(study_name, study["dataset"], study["model"], seed, policy))
    return runs


def method_settings(config: dict, method: str) -> dict:
    """The method's config with train defaults filled in."""
    m = copy.deepcopy(config["methods"][method])
    train = copy.deepcopy(config.get("train_defaults", {}))
    train.update(m.get("train", {}))
    m["train"] = train
    if "source" not in m:
        m.setdefault("pi", "none")
        m.setdefault("k", 1)
    return m


def source_settings(config: dict, method: str, dataset: str | None = None) -> dict:
    """Only what a method's source generation depends on (``pidistill.methods.method_source``: not
    its filter, training hyperparameters or label), so changing a learning rate or a filter does not
    resample anything. With ``dataset``, a retry's text falls back to the dataset's (the method's own
    wins)."""
    from pidistill.methods import method_source

    out = method_source(method_settings(config, method))
    if (dataset is not None and out["kind"] == "retry" and "retry_text" not in out
            and "retry_text" in config["datasets"][dataset]):
        out["retry_text"] = config["datasets"][dataset]["retry_text"]
    return out


def retry_settings(config: dict, method: str, dataset: str | None = None) -> dict:
    """The retry source of a method (see ``source_settings``)."""
    out = source_settings(config, method, dataset)
    if out["kind"] != "retry":
        raise ValueError(f"method {method!r} does not retry (its source is {out['kind']!r})")
    return out


def method_sources(config: dict) -> dict[str, str]:
    """Source id -> one method that has that source (the job's spec is read from it), for every
    enabled study's methods. Methods with the same source share its job."""
    from pidistill.methods import method_source, source_id

    out: dict[str, str] = {}
    for study in run_studies(config).values():
        for m in sorted(study.get("methods") or [study["method"]]):
            sid = source_id(method_source(method_settings(config, m)))
            if sid is not None:
                out.setdefault(sid, m)
    return dict(sorted(out.items()))


def retry_sampling(config: dict, dataset: str) -> dict:
    """Sampling settings of retries: the first attempts' with the dataset's ``retries`` overrides
    (``n`` is not one: a retry's count is the method's ``k``)."""
    spec = config["datasets"][dataset]
    merged = {**spec["first_attempts"], **spec.get("retries", {})}
    merged.pop("n", None)
    merged.pop("k", None)
    return merged


def attempt_sampling(config: dict, dataset: str) -> dict:
    """Sampling settings of more first-attempt samples (sources samples and resample): the first
    attempts' without their ``n`` (the source says how many)."""
    merged = dict(config["datasets"][dataset]["first_attempts"])
    merged.pop("n", None)
    merged.pop("k", None)
    return merged


def canonical(obj):
    """``obj`` with every mapping's keys in sorted order (lists keep their order: it means something)."""
    if isinstance(obj, dict):
        return {k: canonical(obj[k]) for k in sorted(obj)}
    if isinstance(obj, list):
        return [canonical(v) for v in obj]
    return obj


def load_config(path: str | Path) -> dict:
    config = yaml.safe_load(Path(path).read_text())
    return validate_config(config)
