"""A method is a composition: source of candidate solutions -> filter -> trainer.

The config declares each method (``methods.<name>``); this module turns that into the three pieces
and names the generation job a source needs, so that two methods with the same source share one job.

Sources (``source.kind``):

- ``retry`` (the default, from the method's ``pi`` and ``k``): K retries of every failed first
  attempt, the retry message carrying the PI condition. ``model`` lets another model retry the
  student's failed attempts (cross-model retry); ``pi: hint`` carries a hint that ``hint_model``
  wrote for the problem without seeing the gold (cross-model hint); ``pi: first_step`` carries the
  first step of the reference solution; ``pi: diagnosis`` carries what ``diagnosis_model`` wrote
  after reading each failed attempt and the verifier's feedback on it (failure-diagnosis PI);
  ``pi_max_chars`` cuts the PI text.
- ``samples``: ``n`` more first-attempt samples of every training problem, with no failure signal
  (double-sample, frontier-rejection). ``temperature`` is one value or ``[low, high]``: sample ``a``
  of ``n`` then uses ``low + a * (high - low) / (n - 1)`` (temperature-uniform).
- ``resample``: ``per_failure`` fresh first-attempt samples of the problem for every failed first
  attempt, with no failure signal and no failed attempt in context. With ``per_failure = 2K`` this
  is the compute-matched (2x) control of a K-retry method: the same failures get twice the
  generations the retry method spends on them, without being told they failed.
- ``first_attempts``: the first attempts themselves (rejection-sampling SFT); no new generation.

Filters (``filter``): keep candidates that pass (binary, the default), or whose graded score reaches
``threshold`` (``graded_score``: the math verifier's credit, or the fraction of a code sample's
tests that pass); ``frontier: true`` keeps only problems with at least one failed first attempt (the
problems a retry method draws from).

Trainers (``train.trainer``): ``lora`` (LoRA SFT, the default), ``full`` (full fine-tune SFT),
``grpo`` (GRPO with the failure-shaped reward of ``pidistill.grpo``) and ``opsd`` (on-policy
self-distillation from the PI teacher, ``pidistill.opsd``). GRPO and OPSD sample their own
completions: their source and filter choose the problems they train on (source ``first_attempts``:
the training problems themselves).
"""

from __future__ import annotations

import hashlib
import json
from typing import Sequence

SOURCE_KINDS = ("retry", "samples", "resample", "first_attempts")
TRAINERS = ("lora", "full", "grpo", "opsd")
DEFAULT_HINT_PROMPT = "Give a short hint for this problem without stating its final answer.\n\n{prompt}"
DEFAULT_DIAGNOSIS_PROMPT = ("This attempt failed. The checker says:\n{feedback}\nExplain in two sentences why it fails "
                            "and what to change. Do not write the solution.")
_CUSTOM_RETRY_KEYS = ("retry_text", "pi_template", "gibberish", "hint_prompt", "diagnosis_prompt", "pi_max_chars")


def method_source(method: dict) -> dict:
    """The source spec of a method config, with its defaults filled in (every key it depends on)."""
    src = dict(method.get("source", {"kind": "retry"}))
    kind = src["kind"]
    if kind == "retry":
        src["pi"] = method.get("pi", "none")
        src["k"] = int(method.get("k", 1))
        for key in ("retry_text", "pi_template", "gibberish", "pi_max_chars"):
            if key in method:
                src[key] = method[key]
        # PI another model writes: its model and prompt go with that PI condition only
        for pi, what, default in (("hint", "hints", DEFAULT_HINT_PROMPT), ("diagnosis", "diagnoses", DEFAULT_DIAGNOSIS_PROMPT)):
            if src["pi"] == pi:
                if f"{pi}_model" not in src:
                    raise ValueError(f"pi {pi!r} needs source.{pi}_model (the model that writes the {what})")
                src.setdefault(f"{pi}_prompt", default)
            elif f"{pi}_model" in src or f"{pi}_prompt" in src:
                raise ValueError(f"source.{pi}_model and source.{pi}_prompt go with pi {pi!r}")
    elif kind == "samples":
        if "n" not in src:
            raise ValueError("source kind 'samples' needs n")
    elif kind == "resample":
        src.setdefault("per_failure", 2)
    if kind != "retry":
        extra = sorted(set(src) & {"model", "hint_model", "hint_prompt", "diagnosis_model", "diagnosis_prompt"})
        if extra:
            raise ValueError(f"source kind {kind!r} does not take {extra} (only kind 'retry' does)")
    return src


def _short_hash(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:8]


def _num(x: float) -> str:
    return f"{x:g}"


def source_id(src: dict) -> str | None:
    """The directory name of a source's generation job (None for first attempts: nothing new).
    It spells out what the source is; custom retry wording adds a hash of that wording."""
    kind = src["kind"]
    if kind == "first_attempts":
        return None
    if kind == "retry":
        out = f"retry-{src['pi']}-k{src['k']}"
        if src.get("model"):
            out += f"-by-{src['model']}"
        if src.get("hint_model"):
            out += f"-hint-{src['hint_model']}"
        if src.get("diagnosis_model"):
            out += f"-diag-{src['diagnosis_model']}"
        custom = {k: src[k] for k in _CUSTOM_RETRY_KEYS if k in src}
        if custom:
            out += "-" + _short_hash(custom)
        return out
    if kind == "samples":
        t = src.get("temperature")
        temp = "" if t is None else ("-t" + (f"{_num(t[0])}to{_num(t[1])}" if isinstance(t, list) else _num(t)))
        return f"samples-n{src['n']}{temp}"
    return f"resample-x{src['per_failure']}"


def _model_prompt_key(model: str, prompt: str) -> str:
    """A directory name for what ``model`` wrote from ``prompt``: a change of either is a new
    directory, not an overwrite."""
    return f"{model}-{hashlib.sha256(prompt.encode()).hexdigest()[:8]}"


def hint_key(src: dict) -> str:
    """The name of the hints file a cross-model hint source reads: its hint model and prompt (every
    method with the same two shares the file, whatever its retry)."""
    return _model_prompt_key(src["hint_model"], src["hint_prompt"])


def skeleton_key(spec: dict) -> str:
    """The name of the skeletons of a dataset's skeleton source (``datasets.<name>.skeletons``): its
    model and prompt."""
    return _model_prompt_key(spec["model"], spec["prompt"])


def diagnosis_key(src: dict) -> str:
    """The name of the diagnoses file a failure-diagnosis source reads (under its policy's run):
    its diagnosis model and prompt."""
    return _model_prompt_key(src["diagnosis_model"], src["diagnosis_prompt"])


def sample_temperatures(n: int, temperature) -> list[float]:
    """The temperature of each of the ``n`` samples: one value, or ``[low, high]`` spread evenly."""
    if not isinstance(temperature, (list, tuple)):
        return [float(temperature)] * n
    low, high = map(float, temperature)
    if n == 1:
        return [(low + high) / 2]
    return [round(low + a * (high - low) / (n - 1), 6) for a in range(n)]


def method_filter(method: dict) -> dict:
    return {"threshold": None, "frontier": False, **method.get("filter", {})}


def method_trainer(method: dict) -> str:
    return method.get("train", {}).get("trainer", "lora")


# ---- filtering ---------------------------------------------------------------------------------


def graded_score(verdict: dict) -> float:
    """Graded credit of a verdict in [0, 1]: 1 when it passes; else the math verifier's partial
    credit (``credit``), or the fraction of a code sample's tests that passed (``test_results``), or
    the verdict's own ``score``."""
    if verdict["passed"]:
        return 1.0
    if verdict.get("credit") is not None:
        return float(verdict["credit"])
    results = verdict.get("test_results")
    if results:
        return sum(bool(r) for r in results) / len(results)
    return float(verdict.get("score") or 0.0)


def failed_problems(first_verdicts: Sequence[dict]) -> set[str]:
    return {v["id"] for v in first_verdicts if not v["passed"]}


def filter_candidates(candidates: Sequence[dict], first_verdicts: Sequence[dict], threshold: float | None = None,
                      frontier: bool = False) -> list[dict]:
    """The candidates a method trains on (see the module docstring for the rules)."""
    if threshold is None:
        kept = [v for v in candidates if v["passed"]]
    else:
        kept = [v for v in candidates if graded_score(v) >= threshold]
    if frontier:
        failed = failed_problems(first_verdicts)
        kept = [v for v in kept if v["id"] in failed]
    return kept


def candidate_statistics(first_verdicts: Sequence[dict], candidates: Sequence[dict], kept: Sequence[dict],
                         pairs: Sequence[dict], source: dict) -> dict:
    """Counts for the CSVs: the frontier, how many candidates passed and were kept, the tokens each
    stage generated (``tokens`` of each record, where the sampling job counted them)."""
    failed = failed_problems(first_verdicts)
    solved = {v["id"] for v in candidates if v["passed"]}
    frontier = solved & failed if source["kind"] != "first_attempts" else set()
    return {
        "source": source["kind"],
        "n_train_problems": len({v["id"] for v in first_verdicts}),
        "n_first_attempts": len(first_verdicts),
        "n_first_correct": sum(bool(v["passed"]) for v in first_verdicts),
        "n_failed_problems": len(failed),
        # kept under these names for the retry source: the candidates are its retries
        "n_retries": len(candidates),
        "n_retries_correct": sum(bool(v["passed"]) for v in candidates),
        "n_kept": len(kept),
        "n_frontier": len(frontier),
        "retry_success_rate": (len(frontier) / len(failed)) if failed else 0.0,
        "n_pairs": len(pairs),
        "tokens_first_attempts": sum(int(v.get("tokens") or 0) for v in first_verdicts),
        "tokens_source": 0 if source["kind"] == "first_attempts" else sum(int(v.get("tokens") or 0) for v in candidates),
    }


# ---- descriptions for the paper ----------------------------------------------------------------

_OPSD_PI = {"answer": "the gold answer (code: the reference solution)", "tests": "its first attempt's test results",
            "skeleton": "a proof skeleton"}
_PI_TEXT = {
    "none": "no PI", "gold": "the gold answer", "gibberish": "a meaningless string", "wrong": "another problem's gold",
    "tests": "the real test suite", "other_tests": "another problem's test suite",
    "first_step": "the first step of the reference solution", "hint": "a hint",
    "skeleton": "the proof's skeleton (its outline with holes)", "feedback": "the checker's messages on that attempt",
    "heuristic": "a rule-based diagnosis of the checker's messages", "diagnosis": "a diagnosis",
}


def describe_method(method: dict) -> str:
    """One plain-text sentence saying what a method is: its source, filter and trainer."""
    src = method_source(method)
    kind = src["kind"]
    if kind == "retry":
        who = f"{src['model']} retries" if src.get("model") else "the policy retries"
        what = _PI_TEXT[src["pi"]]
        if src["pi"] == "hint":
            what = f"a hint {src['hint_model']} wrote without the gold"
        if src["pi"] == "diagnosis":
            what = f"a diagnosis {src['diagnosis_model']} wrote from the attempt and the checker's messages"
        times = "once" if src["k"] == 1 else f"{src['k']} times"
        text = f"{who} each failed first attempt {times}, told it failed, with {what}"
    elif kind == "samples":
        t = src.get("temperature")
        temp = (f" at temperatures spread evenly over [{t[0]:g}, {t[1]:g}]" if isinstance(t, list)
                else (f" at temperature {t:g}" if t is not None else ""))
        text = f"{src['n']} more samples of every training problem{temp}, with no failure signal"
    elif kind == "resample":
        text = (f"{src['per_failure']} fresh samples of the problem for each failed first attempt, with no failure "
                "signal (the compute-matched control of a one-retry method: twice its retry generations on the same "
                "failures)" if src["per_failure"] == 2 else
                f"{src['per_failure']} fresh samples of the problem for each failed first attempt, with no failure signal")
    else:
        text = "the correct first attempts themselves"
    flt = method_filter(method)
    keep = (f"keeps candidates whose graded score is at least {flt['threshold']:g}" if flt["threshold"] is not None
            else "keeps the candidates that pass")
    if flt["frontier"]:
        keep += ", only on problems with a failed first attempt"
    trainer = {"lora": "LoRA SFT", "full": "full fine-tune SFT",
               "grpo": "GRPO with the failure-shaped reward", "opsd": "OPSD"}[method_trainer(method)]
    if method_trainer(method) == "grpo":
        return (f"GRPO on the problems with a failed first attempt; reward 1 for a passing sample, "
                f"{method.get('train', {}).get('beta', 0.2):g} for a failing one that differs from every "
                "failed first attempt, 0 otherwise")
    if method_trainer(method) == "opsd":
        train = method.get("train", {})
        what = _OPSD_PI[train.get("privileged", "answer")]
        if kind == "first_attempts":
            on = "the problems with a failed first attempt" if flt["frontier"] else "every training problem"
        else:
            on = f"the problems with a kept candidate of its source ({text})"
            if flt["frontier"]:
                on += " and a failed first attempt"
        return (f"on-policy self-distillation on {on}: the student samples without PI and is trained toward "
                f"the same model's token distribution with {what} in its prompt (teacher: "
                f"{train.get('teacher_model_kind', 'base')})")
    return f"{text}; the filter {keep}; {trainer}"
