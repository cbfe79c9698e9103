"""Workflow configuration: schema validation with messages that name the key, and run expansion.

``validate_config`` checks ``config/schema.yaml`` (structure, types, unknown keys) and then the
cross-references a schema cannot express (a study naming a missing method, test-suite PI on a math
dataset, pass@k beyond n). ``study_runs`` expands the studies into the runs ``rule all`` needs.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path

import yaml

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "config" / "schema.yaml"


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
    for name, model in config["models"].items():
        if model["source"] == "pretrain" and "pretrain" not in model:
            raise ConfigError(f"config key models.{name}.pretrain: required when source is 'pretrain'")
        if model["source"] != "pretrain" and "id" not in model:
            raise ConfigError(f"config key models.{name}.id: required when source is {model['source']!r}")
        for ds in model.get("pretrain", {}).get("datasets", []):
            if ds not in config["datasets"]:
                raise ConfigError(f"config key models.{name}.pretrain.datasets: unknown dataset {ds!r}")
    for sname, study in enabled_studies(config).items():
        where = f"studies.{sname}"
        if study["dataset"] not in config["datasets"]:
            raise ConfigError(f"config key {where}.dataset: unknown dataset {study['dataset']!r}")
        if study["model"] not in config["models"]:
            raise ConfigError(f"config key {where}.model: unknown model {study['model']!r}")
        if study["kind"] == "conditions":
            if "methods" not in study:
                raise ConfigError(f"config key {where}.methods: required for kind 'conditions'")
            methods = study["methods"]
        else:
            if "method" not in study or "rounds" not in study:
                raise ConfigError(f"config key {where}: kind 'rounds' needs 'method' and 'rounds'")
            methods = [study["method"]]
        domain = config["datasets"][study["dataset"]]["domain"]
        for m in methods:
            if m not in config["methods"]:
                raise ConfigError(f"config key {where}: unknown method {m!r}")
            if config["methods"][m]["pi"] in ("tests", "other_tests") and domain != "code":
                raise ConfigError(f"config key methods.{m}.pi: {config['methods'][m]['pi']!r} needs a code dataset, "
                                  f"but study {sname!r} uses {study['dataset']!r} ({domain})")


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


def study_runs(config: dict, study_name: str) -> list[Run]:
    study = config["studies"][study_name]
    runs = []
    for seed in study["seeds"]:
        base = Run(study_name, study["dataset"], study["model"], seed, "base")
        runs.append(base)
        if study["kind"] == "conditions":
            runs += [Run(study_name, study["dataset"], study["model"], seed, child_policy("base", m)) for m in study["methods"]]
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
    m.setdefault("k", 1)
    return m


def retry_settings(config: dict, method: str, dataset: str | None = None) -> dict:
    """Only what the retry sampling of a method depends on (not its training hyperparameters or
    label), so changing a learning rate does not resample retries. With ``dataset``, the retry
    text falls back to the dataset's (the method's own wins)."""
    m = method_settings(config, method)
    keys = ("pi", "k", "retry_text", "pi_template") + (("gibberish",) if m["pi"] == "gibberish" else ())
    out = {k: m[k] for k in keys if k in m}
    if dataset is not None and "retry_text" not in out and "retry_text" in config["datasets"][dataset]:
        out["retry_text"] = config["datasets"][dataset]["retry_text"]
    return out


def retry_sampling(config: dict, dataset: str) -> dict:
    """Sampling settings of retries: the first attempts' with the dataset's ``retries`` overrides
    (``n`` is not one: a retry's count is the method's ``k``)."""
    spec = config["datasets"][dataset]
    merged = {**spec["first_attempts"], **spec.get("retries", {})}
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
