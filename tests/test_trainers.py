"""The trainers beside LoRA SFT: full fine-tune (pidistill.sft, ``trainer: full``) and GRPO with the
failure-shaped reward (pidistill.grpo), on the tiny toy_math model; how policies made of full
fine-tunes and adapters resolve and load; and scripts/train_adapter.py's dispatch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pidistill.domains import toy_math
from pidistill.generation import (GenerationRequest, PolicySpec, SamplingSettings, effective_adapter, load_backend,
                                  resolve_policy, round_kind)
from pidistill.grpo import (FailureShapedReward, GRPOSettings, failed_answers, normalized_answer, shaped_reward,
                            train_grpo, training_prompts)
from pidistill.seeding import request_seed
from pidistill.sft import TrainSettings, train_adapter
from pidistill.verifiers import Verdict, VerifierSettings

REPO = Path(__file__).resolve().parents[1]
PROBLEMS = toy_math.make_splits(0, 8, 0)[0]
FULL = dict(trainer="full", steps=3, batch_size=4, learning_rate=1e-3)
LORA = dict(steps=2, batch_size=4, learning_rate=1e-3, lora_r=4, lora_alpha=8)
GRPO = dict(steps=3, batch_size=8, num_generations=4, max_completion_length=8, learning_rate=1e-3, lora_r=4, lora_alpha=8)


def _pairs():
    return [{"id": p.id, "attempt": 0, "prompt": [{"role": "user", "content": p.prompt}],
             "completion": [{"role": "assistant", "content": toy_math.format_answer(int(p.answer))}]} for p in PROBLEMS]


def _first_verdicts():
    """Two first attempts a problem: problem 0 solved once; the others fail with slips (problem 1
    also once with no answer), so 7 problems are prompts."""
    rows = []
    for i, p in enumerate(PROBLEMS):
        slips = toy_math.slips(toy_math.item_of(p))
        rows.append({"id": p.id, "attempt": 0, "completion": f"\\boxed{{{slips[0]}}}", "passed": False,
                     "extracted": str(slips[0])})
        second = (p.answer, True) if i == 0 else (None, False) if i == 1 else (str(slips[-1]), False)
        rows.append({"id": p.id, "attempt": 1, "completion": f"\\boxed{{{second[0]}}}" if second[0] else "I think",
                     "passed": second[1], "extracted": second[0]})
    return rows


def _files(directory) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(Path(directory).iterdir()) if p.is_file()}


def _generate(policy: PolicySpec) -> list[str]:
    backend = load_backend("transformers", policy, batch_size=8, progress=False)
    reqs = [GenerationRequest(f"{p.id}#0", ({"role": "user", "content": p.prompt},), request_seed(3, "t", p.id, 0))
            for p in PROBLEMS[:4]]
    return backend.generate(reqs, SamplingSettings(temperature=1.0, max_new_tokens=8))


# ---- policy resolution (no training) -------------------------------------------------------------


def _round(path: Path, kind: str | None) -> str:
    path.mkdir(parents=True)
    (path / "training.json").write_text("{}")
    if kind == "lora":
        (path / "adapter_config.json").write_text(json.dumps({"r": 8}))
    elif kind == "full":
        (path / "config.json").write_text("{}")
    return str(path)


def test_resolution_stacks_full_finetunes_and_adapters(tmp_path):
    lora1, full2, none3, lora4, full5 = (_round(tmp_path / f"r{i}", k) for i, k in
                                         enumerate(["lora", "full", None, "lora", "full"], start=1))
    assert [round_kind(p) for p in (lora1, full2, none3)] == ["lora", "full", None]
    assert resolve_policy("hub/m", [], "abc") == resolve_policy("hub/m", [none3], "abc")
    assert resolve_policy("hub/m", [lora1], "abc").adapter == lora1
    r = resolve_policy("hub/m", [lora1, full2, none3], "abc")  # the full fine-tune holds lora1 merged in
    assert (r.model, r.revision, r.adapter) == (full2, None, None)
    r = resolve_policy("hub/m", [lora1, full2, none3, lora4], "abc")
    assert (r.model, r.adapter) == (full2, lora4)
    assert effective_adapter([lora1, full2]) is None and effective_adapter([lora1, full2, lora4]) == lora4
    assert resolve_policy("hub/m", [lora1, full2, lora4, full5]).model == full5


def test_vllm_serves_a_full_finetune_as_the_model(tmp_path, monkeypatch):
    from pidistill.generation.vllm_backend import engine_kwargs, lora_spec

    full = _round(tmp_path / "r1" / "adapter", "full")
    policy = PolicySpec("Qwen/Qwen3-8B", [full], revision="abc")
    assert lora_spec(policy) is None
    kw = engine_kwargs(policy, None)
    assert kw["model"] == full and kw["revision"] is None and "enable_lora" not in kw
    monkeypatch.chdir(tmp_path)  # rules pass results paths relative to the working directory
    model = engine_kwargs(PolicySpec("Qwen/Qwen3-8B", ["r1/adapter"]), None)["model"]
    assert Path(model).is_absolute() and Path(model).resolve() == Path(full).resolve()
    lora = _round(tmp_path / "r1" / "r2" / "adapter", "lora")
    policy = PolicySpec("Qwen/Qwen3-8B", [full, lora], revision="abc")
    spec = lora_spec(policy)
    assert spec.path == lora and spec.rank == 8
    kw = engine_kwargs(policy, spec)
    assert kw["model"] == full and kw["enable_lora"]


# ---- full fine-tune ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def full_round(tmp_path_factory, tiny_math_model):
    out = tmp_path_factory.mktemp("full") / "r1" / "adapter"
    summary = train_adapter(_pairs(), tiny_math_model, [], TrainSettings(**FULL), seed=1, out_dir=out, threads=1)
    return str(out), summary


def test_full_finetune_is_a_model_directory_that_loads_and_generates(full_round, tiny_math_model):
    out, summary = full_round
    assert summary["trained"] and summary["continued_from"] is None and len(summary["loss_history"]) == 3
    files = _files(out)
    assert {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "training.json"} <= set(files)
    assert "adapter_config.json" not in files and round_kind(out) == "full"
    assert "is_local" not in json.loads(files["tokenizer_config.json"])
    assert files["model.safetensors"] != (Path(tiny_math_model) / "model.safetensors").read_bytes()
    mode = 0o666 & ~_umask()
    assert all((Path(out) / f).stat().st_mode & 0o777 == mode for f in files)
    as_round = _generate(PolicySpec(tiny_math_model, [out], revision="ignored-for-a-round"))
    assert as_round == _generate(PolicySpec(out))  # the round's directory is the policy's model
    assert all(isinstance(t, str) for t in as_round) and any("boxed" in t for t in as_round)


REBUILD = """
import sys
sys.path.insert(0, {tests!r})
import test_trainers as t
t.train_adapter(t._pairs(), {model!r}, [], t.TrainSettings(**t.FULL), seed=1, out_dir={out!r} + "/full", threads=1)
t.train_grpo(t.PROBLEMS, t._first_verdicts(), {model!r}, [], t.GRPOSettings(**t.GRPO), {{"workers": 1}}, seed=1,
             out_dir={out!r} + "/grpo", threads=1)
"""


@pytest.fixture(scope="module")
def rebuilt(tmp_path_factory, tiny_math_model) -> Path:
    """Both rounds trained again in another process, with another PYTHONHASHSEED (set and dict
    orders that vary between processes would show as different bytes)."""
    out = tmp_path_factory.mktemp("rebuilt")
    code = REBUILD.format(tests=str(REPO / "tests"), model=tiny_math_model, out=str(out))
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, env=env)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return out


def test_full_finetune_rebuilds_byte_identical(full_round, rebuilt):
    out, _ = full_round
    assert _files(rebuilt / "full") == _files(out)


def test_rounds_on_top_of_a_full_finetune(full_round, tiny_math_model, tmp_path):
    """LoRA after full: a new adapter on the full model. Full after full+LoRA: the LoRA merged in,
    then fine-tuned on, so the new model holds everything. An untrained round changes nothing."""
    full, _ = full_round
    lora = tmp_path / "r2"
    s = train_adapter(_pairs(), tiny_math_model, [full], TrainSettings(**LORA), seed=1, out_dir=lora, threads=1)
    assert s["trained"] and s["continued_from"] is None and s["parent_weights"] == {"model": full, "adapter": None}
    assert json.loads((lora / "adapter_config.json").read_text())["base_model_name_or_path"] == full
    assert resolve_policy(tiny_math_model, [full, str(lora)]).adapter == str(lora)
    assert len(_generate(PolicySpec(tiny_math_model, [full, str(lora)]))) == 4
    empty = tmp_path / "r3"
    assert not train_adapter([], tiny_math_model, [full, str(lora)], TrainSettings(**FULL), seed=1, out_dir=empty)["trained"]
    full2 = tmp_path / "r4"
    parents = [full, str(lora), str(empty)]
    s = train_adapter(_pairs(), tiny_math_model, parents, TrainSettings(**FULL), seed=1, out_dir=full2, threads=1)
    assert s["continued_from"] == str(lora) and round_kind(full2) == "full"
    r = resolve_policy(tiny_math_model, [*parents, str(full2)])
    assert (r.model, r.adapter) == (str(full2), None)
    assert len(_generate(PolicySpec(tiny_math_model, [*parents, str(full2)]))) == 4


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# ---- GRPO: the reward ------------------------------------------------------------------------------


def test_shaped_reward_on_hand_made_verdicts():
    failed = frozenset({"7", "x = 1"})
    assert shaped_reward(Verdict(True, 1.0, "ok", extracted="12"), failed, 0.2) == 1.0
    assert shaped_reward(Verdict(True, 1.0, "ok", extracted="7"), failed, 0.2) == 1.0  # a pass is a pass
    assert shaped_reward(Verdict(False, 0.0, "wrong_answer", extracted="8"), failed, 0.2) == 0.2  # new wrong answer
    assert shaped_reward(Verdict(False, 0.0, "wrong_answer", extracted="8"), failed, 0.5) == 0.5
    assert shaped_reward(Verdict(False, 0.0, "wrong_answer", extracted="7"), failed, 0.2) == 0.0  # repeated
    assert shaped_reward(Verdict(False, 0.0, "wrong_answer", extracted=" x =\n 1 "), failed, 0.2) == 0.0  # whitespace
    assert shaped_reward(Verdict(False, 0.0, "no_answer", extracted=None), failed, 0.2) == 0.0  # tried nothing
    assert shaped_reward(Verdict(False, 0.0, "empty_answer", extracted="  "), failed, 0.2) == 0.0
    assert normalized_answer("a\t\tb\n c") == "a b c"


def test_failed_answers_and_prompts_come_from_failed_first_attempts():
    first = _first_verdicts()
    failed = failed_answers(first)
    assert set(failed) == {p.id for p in PROBLEMS}  # every problem failed at least one first attempt
    slips0 = toy_math.slips(toy_math.item_of(PROBLEMS[0]))
    assert failed[PROBLEMS[0].id] == {str(slips0[0])}  # its passed attempt adds nothing
    assert failed[PROBLEMS[1].id] == {str(toy_math.slips(toy_math.item_of(PROBLEMS[1]))[0])}  # no-answer adds nothing
    solved = [dict(r, passed=True) if r["id"] == PROBLEMS[0].id else r for r in first]
    rows = training_prompts(PROBLEMS, solved)
    assert [r["id"] for r in rows] == sorted(p.id for p in PROBLEMS[1:])
    assert rows[0]["prompt"] == [{"role": "user", "content": next(p.prompt for p in PROBLEMS if p.id == rows[0]["id"])}]


def test_reward_function_runs_the_verifier():
    p = PROBLEMS[2]
    slips = toy_math.slips(toy_math.item_of(p))
    reward = FailureShapedReward({p.id: p}, failed_answers(_first_verdicts()), 0.2, VerifierSettings(progress=False))
    texts = [f"\\boxed{{{p.answer}}}", f"\\boxed{{{slips[0]}}}", f"\\boxed{{ {slips[-1]} }}", "\\boxed{999}", "no idea"]
    logged = {}
    out = reward(prompts=[[]] * 5, completions=[[{"role": "assistant", "content": t}] for t in texts], id=[p.id] * 5,
                 log_metric=logged.__setitem__, trainer_state=None)
    assert out == [1.0, 0.0, 0.0, 0.2, 0.0]
    assert logged == {"iprs/passed": 0.2, "iprs/new_answer": 0.2}


# ---- GRPO: training --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def grpo_round(tmp_path_factory, tiny_math_model):
    out = tmp_path_factory.mktemp("grpo") / "r1" / "adapter"
    summary = train_grpo(PROBLEMS, _first_verdicts(), tiny_math_model, [], GRPOSettings(**GRPO), {"workers": 1}, seed=1,
                         out_dir=out, threads=1)
    return str(out), summary


def test_grpo_trains_an_adapter_like_sft(grpo_round, tiny_math_model):
    out, summary = grpo_round
    assert summary["trained"] and summary["n_prompts"] == 8 and summary["reason"] == "ok"
    history = summary["reward_history"]
    assert [h["step"] for h in history] == [1, 2, 3]
    assert all(0.0 <= h["reward"] <= 1.0 and "iprs/passed" in h for h in history)
    assert summary["tokens_generated_in_training"] > 0  # 8 sampled completions a step count as generated
    assert round_kind(out) == "lora" and "ref" not in os.listdir(out)
    assert sorted(json.loads((Path(out) / "adapter_config.json").read_text())["target_modules"])
    assert effective_adapter([out]) == out
    assert len(_generate(PolicySpec(tiny_math_model, [out]))) == 4


def test_grpo_is_deterministic(grpo_round, rebuilt):
    out, _ = grpo_round
    assert _files(rebuilt / "grpo") == _files(out)


def test_grpo_on_top_of_a_full_finetune(full_round, tiny_math_model, tmp_path):
    full, _ = full_round
    s = train_grpo(PROBLEMS, _first_verdicts(), tiny_math_model, [full], GRPOSettings(**GRPO), {"workers": 1}, seed=1,
                   out_dir=tmp_path / "g", threads=1)
    assert s["trained"] and s["parent_weights"] == {"model": full, "adapter": None}
    assert json.loads((tmp_path / "g" / "adapter_config.json").read_text())["base_model_name_or_path"] == full
    # with a KL term TRL adds a frozen "ref" copy of the continued adapter: only the trained one is saved
    s = train_grpo(PROBLEMS, _first_verdicts(), tiny_math_model, [full, str(tmp_path / "g")],
                   GRPOSettings(**GRPO, kl_beta=0.04), {"workers": 1}, seed=1, out_dir=tmp_path / "g2", threads=1)
    assert s["continued_from"] == str(tmp_path / "g")  # continues the parent's adapter, like LoRA SFT
    assert sorted(os.listdir(tmp_path / "g2")) == ["README.md", "adapter_config.json", "adapter_model.safetensors",
                                                   "training.json"]
    assert resolve_policy(tiny_math_model, [full, str(tmp_path / "g"), str(tmp_path / "g2")]).adapter == str(tmp_path / "g2")


def test_grpo_with_too_few_prompts_trains_nothing(tmp_path, tiny_math_model):
    solved = [dict(r, passed=True) for r in _first_verdicts()]
    s = train_grpo(PROBLEMS, solved, tiny_math_model, [], GRPOSettings(**GRPO), None, seed=1, out_dir=tmp_path)
    assert not s["trained"] and "policy is the parent's" in s["reason"] and s["n_prompts"] == 0
    assert os.listdir(tmp_path) == ["training.json"] and round_kind(tmp_path) is None
    # a step needs batch_size * grad_accum / num_generations distinct prompts (TRL drops a partial group)
    one = [r for r in _first_verdicts() if r["id"] == PROBLEMS[3].id]
    s = train_grpo(PROBLEMS, one, tiny_math_model, [], GRPOSettings(**GRPO), None, seed=1, out_dir=tmp_path / "b")
    assert not s["trained"] and "2 needed" in s["reason"]


def test_grpo_settings_check_the_group_size():
    with pytest.raises(ValueError, match="multiple of train.num_generations"):
        GRPOSettings(batch_size=6, num_generations=4)
    with pytest.raises(ValueError, match="at least 2"):
        GRPOSettings(num_generations=1, batch_size=1)
    assert GRPOSettings.from_config({"trainer": "grpo", "beta": 0.5, "min_pairs": 3}).beta == 0.5
    with pytest.raises(ValueError, match="grpo is pidistill.grpo"):
        TrainSettings.from_config({"trainer": "grpo"})


# ---- scripts/train_adapter.py --------------------------------------------------------------------

DISPATCH = r"""
import json, runpy, sys, types
from pathlib import Path
sys.path.insert(0, {scripts!r})
spec = json.loads(sys.argv[1])
inputs = types.SimpleNamespace(**spec["input"], code=spec["code"])
inputs.get = lambda key, default=None: getattr(inputs, key, default)
class Wildcards(dict):
    __getattr__ = dict.__getitem__
snakemake = types.SimpleNamespace(
    input=inputs, output=[spec["out"]], log=[spec["out"] + ".log"], rule="train_adapter", threads=1,
    wildcards=Wildcards(seed="1"), params=types.SimpleNamespace(**spec["params"]))
runpy.run_path({script!r}, init_globals={{"snakemake": snakemake}}, run_name="__main__")
print(json.dumps(sorted(m for m in sys.modules if m.startswith("pidistill"))))
"""


def _dispatch(tmp_path, name, spec, ok=True):
    from pidistill.codedeps import code_files

    script = REPO / "scripts" / "train_adapter.py"
    code = DISPATCH.format(scripts=str(REPO / "scripts"), script=str(script))
    # the rule's code inputs: the script and the trainer's modules, as rules/train.smk lists them
    spec = {**spec, "out": str(tmp_path / name), "code": code_files(script, REPO, spec.pop("modules"))}
    proc = subprocess.run([sys.executable, "-c", code, json.dumps(spec)], capture_output=True, text=True, cwd=REPO)
    log = Path(spec["out"] + ".log")
    if not ok:
        assert proc.returncode != 0
        return log.read_text()
    assert proc.returncode == 0, proc.stderr + (log.read_text() if log.exists() else "")
    return json.loads(proc.stdout.strip().splitlines()[-1]), json.loads((tmp_path / name / "training.json").read_text())


def test_script_dispatches_and_imports_only_the_chosen_trainer(tmp_path, tiny_math_model):
    from pidistill.codedeps import code_files
    from pidistill.problems import write_problems

    script = REPO / "scripts" / "train_adapter.py"
    assert "pidistill/sft.py" in code_files(script, REPO)  # imported statically: every trainer job runs it
    assert "pidistill/grpo.py" not in code_files(script, REPO)  # imported by name: the GRPO rule lists it
    write_problems(tmp_path / "train.jsonl", PROBLEMS)
    (tmp_path / "pairs.jsonl").write_text("")
    (tmp_path / "first.jsonl").write_text("".join(json.dumps(dict(r, passed=True)) + "\n" for r in _first_verdicts()))
    (tmp_path / "prov.json").write_text(json.dumps({}))
    common = {"parent_adapters": [], "model_provenance": str(tmp_path / "prov.json")}
    params = {"model": tiny_math_model}
    for trainer in ("lora", "full"):
        modules, summary = _dispatch(tmp_path, trainer, {
            "input": {**common, "pairs": str(tmp_path / "pairs.jsonl")}, "modules": [],
            "params": {**params, "train": {"trainer": trainer, "min_pairs": 1}}})
        assert "pidistill.sft" in modules and "pidistill.grpo" not in modules and "pidistill.verifiers" not in modules
        assert summary["trained"] is False and summary["settings"]["trainer"] == trainer
    grpo = {"input": {**common, "problems": str(tmp_path / "train.jsonl"), "first_verdicts": str(tmp_path / "first.jsonl")},
            "params": {**params, "train": {"trainer": "grpo", "beta": 0.3}, "verifier": {"workers": 1}}}
    modules, summary = _dispatch(tmp_path, "grpo", {**grpo, "modules": ["pidistill.grpo", "pidistill.verifiers.math"]})
    assert "pidistill.grpo" in modules
    assert summary["trained"] is False and summary["n_prompts"] == 0 and summary["settings"]["beta"] == 0.3
    assert "pidistill/grpo.py" in _dispatch(tmp_path, "grpo-undeclared", {**grpo, "modules": []}, ok=False)
