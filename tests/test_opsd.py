"""OPSD (pidistill/opsd.py): the training prompts per PI variant, a few real SDFT steps with LoRA on
the tiny model, the teacher (the base weights with the adapter off), one chat template for teacher
and student, the teacher-prompt length check, and determinism."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pidistill.domains import toy_code, toy_math
from pidistill.opsd import (OPSDSettings, check_teacher_prompts, sdft_config, render_test_results, train_opsd,
                            training_problem_ids, training_rows)
from pidistill.problems import Problem

REPO = Path(__file__).resolve().parents[1]
MATH = toy_math.make_splits(0, 8, 0)[0]
CODE = toy_code.make_splits(0, 4, 0)[0]
OPSD = dict(steps=3, batch_size=8, num_generations=4, max_completion_length=8, learning_rate=1e-2, lora_r=4,
            lora_alpha=8, distillation_topk=20)


def _first_verdicts(problems, failed_ids):
    """Two first attempts a problem: both fail on ``failed_ids`` (the second with test results for
    code), both pass elsewhere."""
    rows = []
    for p in problems:
        for a in range(2):
            ok = p.id not in failed_ids
            v = {"id": p.id, "attempt": a, "completion": "x", "passed": ok, "feedback": "ok" if ok else f"failed {a}"}
            if p.domain == "code":
                v["test_results"] = [ok or i == 0 for i in range(len(p.tests))]
            rows.append(v)
    return rows


# ---- the training prompts ------------------------------------------------------------------------


def test_answer_rows_cover_every_problem_or_the_failed_ones():
    failed = {MATH[1].id, MATH[4].id}
    first = _first_verdicts(MATH, failed)
    rows, stats = training_rows(MATH, first, None, {"threshold": None, "frontier": False}, OPSDSettings())
    assert [r["id"] for r in rows] == sorted(p.id for p in MATH) and stats["n_prompts"] == 8
    by_id = {p.id: p for p in MATH}
    for r in rows:
        assert r["prompt"] == [{"role": "user", "content": by_id[r["id"]].prompt}]  # the student's prompt: no PI
        assert r["privileged_context"] == f"The correct answer is: {by_id[r['id']].answer}"
    frontier = training_problem_ids(MATH, first, None, {"frontier": True})
    assert frontier == sorted(failed)
    with pytest.raises(ValueError, match="threshold needs candidates"):
        training_problem_ids(MATH, first, None, {"threshold": 0.5})


def test_frontier_rows_are_the_problems_failed_first_try_and_solved_on_retry():
    """PCCG: source retry, filter frontier: a problem is in when a retry of it passed."""
    failed = {MATH[1].id, MATH[2].id, MATH[3].id}
    first = _first_verdicts(MATH, failed)
    retries = [{"id": MATH[1].id, "attempt": 0, "completion": "a", "passed": True},
               {"id": MATH[2].id, "attempt": 0, "completion": "b", "passed": False},
               {"id": MATH[0].id, "attempt": 0, "completion": "c", "passed": True}]  # not failed first-try
    assert training_problem_ids(MATH, first, retries, {"frontier": True}) == [MATH[1].id]
    assert training_problem_ids(MATH, first, retries, {}) == sorted([MATH[0].id, MATH[1].id])


def test_tests_pi_is_the_first_failed_attempts_results():
    p = CODE[0]
    first = _first_verdicts(CODE, {p.id})
    rows, _ = training_rows(CODE, first, None, {}, OPSDSettings(privileged="tests"))
    text = {r["id"]: r["privileged_context"] for r in rows}[p.id]
    assert text.startswith("Your first attempt was run on the tests:\n")
    lines = text.splitlines()[1:]
    assert lines[0] == f"PASS: {p.tests[0]}" and all(line.startswith("FAIL: ") for line in lines[1:len(p.tests)])
    assert lines[-1] == "Result: failed 0"  # attempt 0: the first failed attempt
    passing = {r["id"]: r["privileged_context"] for r in rows}[CODE[1].id]
    assert "FAIL" not in passing and passing.endswith("Result: ok")
    # tests given as one program: listed without outcomes
    prog = Problem(id="p", domain="code", prompt="f", test_program="assert f() == 1")
    assert render_test_results(prog, {"test_results": None, "feedback": "boom"}) == "assert f() == 1\nResult: boom"
    with pytest.raises(ValueError, match="needs code problems"):
        training_rows(MATH, _first_verdicts(MATH, set()), None, {}, OPSDSettings(privileged="tests"))


def test_code_answer_is_the_reference_solution_and_skeleton_is_a_hook():
    rows, _ = training_rows(CODE, _first_verdicts(CODE, set()), None, {}, OPSDSettings())
    assert rows[0]["privileged_context"] == "A correct solution is:\n" + {p.id: p for p in CODE}[rows[0]["id"]].solution
    with_skeleton = [Problem(id="a", domain="math", prompt="P", answer="1", meta={"skeleton": "have h : 1 = 1"}),
                     Problem(id="b", domain="math", prompt="Q", answer="2")]
    rows, stats = training_rows(with_skeleton, _first_verdicts(with_skeleton, set()), None, {},
                                OPSDSettings(privileged="skeleton", pi_template="Skeleton: {pi}"))
    assert [r["privileged_context"] for r in rows] == ["Skeleton: have h : 1 = 1"]
    assert stats["n_without_pi"] == 1 and stats["without_pi"] == ["b"]


def test_settings_check_themselves():
    with pytest.raises(ValueError, match="privileged"):
        OPSDSettings(privileged="gold")
    with pytest.raises(ValueError, match="teacher_model_kind"):
        OPSDSettings(teacher_model_kind="frozen")
    with pytest.raises(ValueError, match="multiple of train.num_generations"):
        OPSDSettings(batch_size=6, num_generations=4)
    with pytest.raises(ValueError, match=r"\{pi\}"):
        OPSDSettings(pi_template="no placeholder")


# ---- training on the tiny model ------------------------------------------------------------------


def _rows():
    return training_rows(MATH, _first_verdicts(MATH, set()), None, {}, OPSDSettings())[0]


@pytest.fixture(scope="module")
def opsd_round(tmp_path_factory, tiny_math_model):
    out = tmp_path_factory.mktemp("opsd") / "r1" / "adapter"
    summary = train_opsd(_rows(), tiny_math_model, [], OPSDSettings(**OPSD), seed=1, out_dir=out, threads=1)
    return out, summary


def test_opsd_trains_a_lora_adapter(opsd_round, tiny_math_model):
    import torch
    from safetensors.torch import load_file

    from pidistill.generation import PolicySpec, effective_adapter
    from test_trainers import _generate

    out, summary = opsd_round
    assert summary["trained"] and summary["n_prompts"] == 8 and summary["reason"] == "ok"
    history = summary["loss_history"]
    assert [h["step"] for h in history] == [1, 2, 3]
    assert all(torch.isfinite(torch.tensor(h["loss"])) and h["self_distillation/distillation_loss"] >= 0 for h in history)
    assert any(h["self_distillation/distillation_loss"] > 0 for h in history)
    assert summary["max_teacher_prompt_tokens"] > summary["max_student_prompt_tokens"]
    # 8 completions a step, sampled by the student: their tokens count as generated
    assert summary["tokens_generated_in_training"] == round(8 * sum(h["completions/mean_length"] for h in history)) > 0
    weights = load_file(str(out / "adapter_model.safetensors"))
    lora_b = [w for k, w in weights.items() if "lora_B" in k]
    assert lora_b and any(w.abs().sum() > 0 for w in lora_b)  # B starts at zero: training moved it
    assert not (out / "_trainer").exists() and effective_adapter([str(out)]) == str(out)
    assert len(_generate(PolicySpec(tiny_math_model, [str(out)]))) == 4


def test_teacher_is_the_base_weights_with_the_adapter_off(opsd_round, tiny_math_model, tmp_path):
    """TRL's teacher context for teacher_model_kind 'base' switches the trained adapter off: the
    teacher's logits are the base model's, the student's are not."""
    import torch
    from datasets import Dataset
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl.experimental.sdft import SDFTTrainer

    out, _ = opsd_round
    tokenizer = AutoTokenizer.from_pretrained(tiny_math_model)
    base = AutoModelForCausalLM.from_pretrained(tiny_math_model)
    student = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_math_model), str(out))
    rows = _rows()
    args = sdft_config(tmp_path / "t", OPSDSettings(**OPSD), seed=1, cuda=False, chat_template_kwargs=None)
    assert args.bf16 is False and args.gradient_checkpointing is False and args.teacher_model_kind == "base"
    trainer = SDFTTrainer(model=student, args=args, processing_class=tokenizer,
                          train_dataset=Dataset.from_list([{k: r[k] for k in ("prompt", "privileged_context")} for r in rows]))
    ids = torch.tensor([tokenizer.apply_chat_template([rows[0]["prompt"]], add_generation_prompt=True)["input_ids"][0]])
    with torch.no_grad():
        want = base(input_ids=ids).logits
        with trainer._get_teacher_context_for_self_distillation():
            teacher = trainer.teacher_model(input_ids=ids).logits
        live = trainer.model(input_ids=ids).logits
    assert torch.allclose(teacher, want, atol=1e-5)
    assert not torch.allclose(live, want, atol=1e-3)


CHATML = (  # a ChatML template that renders like Qwen3's for user turns and the generation prompt
    "{% for m in messages %}{{ '<|im_start|>' + m['role'] + '\\n' + m['content'] + '<|im_end|>\\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}"
    "{% if enable_thinking is defined and enable_thinking is false %}{{ '<think>\\n\\n</think>\\n\\n' }}{% endif %}"
    "{% endif %}"
)


def _chatml_tokenizer():
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(models.BPE(unk_token=None))
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    special = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<think>", "</think>"]
    core.train_from_iterator([p.prompt for p in MATH] * 4, trainer=trainers.BpeTrainer(
        vocab_size=400, special_tokens=special, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False))
    tok = PreTrainedTokenizerFast(tokenizer_object=core, eos_token="<|im_end|>", pad_token="<|endoftext|>",
                                  additional_special_tokens=special[1:], padding_side="left")
    tok.chat_template = CHATML
    return tok


@pytest.mark.parametrize("template", ["tiny", "chatml"])
def test_teacher_and_student_share_the_template_and_the_completion_tokens(template, tiny_math_model, tmp_path):
    """The teacher's input is its prompt (the student's, with the PI appended to the user turn, in
    the same chat template: the same assistant header) followed by exactly the student's tokens."""
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl.experimental.sdft import SDFTTrainer

    from pidistill.sft import lora_model

    tokenizer = AutoTokenizer.from_pretrained(tiny_math_model) if template == "tiny" else _chatml_tokenizer()
    kwargs = {} if template == "tiny" else {"enable_thinking": False}
    model = AutoModelForCausalLM.from_pretrained(tiny_math_model)
    model.resize_token_embeddings(max(len(tokenizer), model.config.vocab_size))
    net = lora_model(model, None, 4, 8, 0.0, "all-linear", seed=1)
    rows = _rows()[:2]
    args = sdft_config(tmp_path / "t", OPSDSettings(**OPSD), seed=1, cuda=False, chat_template_kwargs=kwargs)
    trainer = SDFTTrainer(model=net, args=args, processing_class=tokenizer,
                          train_dataset=Dataset.from_list([{k: r[k] for k in ("prompt", "privileged_context")} for r in rows]))
    student = trainer._tokenize_prompts([r["prompt"] for r in rows])
    completion = torch.tensor([[7, 8, 9], [10, 11, 0]])
    mask = torch.tensor([[1, 1, 1], [1, 1, 0]])
    batch = trainer.teacher_context_builder.build([r["prompt"] for r in rows], [r["privileged_context"] for r in rows],
                                                  completion, mask)
    assert torch.equal(batch["teacher_input_ids"][:, -3:], completion)
    assert torch.equal(batch["teacher_attention_mask"][:, -3:], mask)
    header = tokenizer.apply_chat_template([{"role": "user", "content": "q"}], add_generation_prompt=True, **kwargs)
    header = header["input_ids"] if isinstance(header, dict) or hasattr(header, "keys") else header
    n_tail = len(header) - len(tokenizer.apply_chat_template([{"role": "user", "content": "q"}], **kwargs)["input_ids"])
    n_tail = max(n_tail, 1)
    for i, r in enumerate(rows):
        teacher = [t for t, m in zip(batch["teacher_input_ids"][i, :-3].tolist(), batch["teacher_attention_mask"][i, :-3].tolist()) if m]
        assert teacher[-n_tail:] == student[i][-n_tail:]  # the same assistant header ends both prompts
        text = tokenizer.decode(teacher)
        assert r["prompt"][0]["content"] + "\n\n" + r["privileged_context"] in text
        if template == "chatml":
            assert text.endswith("<|im_start|>assistant\n<think>\n\n</think>\n\n")


def test_a_teacher_prompt_longer_than_max_prompt_length_is_an_error(tiny_math_model, tmp_path):
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl.experimental.sdft import SDFTTrainer

    from pidistill.sft import lora_model

    tokenizer = AutoTokenizer.from_pretrained(tiny_math_model)
    net = lora_model(AutoModelForCausalLM.from_pretrained(tiny_math_model), None, 4, 8, 0.0, "all-linear", seed=1)
    rows = _rows()[:4]
    rows[2] = {**rows[2], "privileged_context": "The correct answer is: " + "7 " * 200}
    args = sdft_config(tmp_path / "t", OPSDSettings(**OPSD), seed=1, cuda=False, chat_template_kwargs=None)
    trainer = SDFTTrainer(model=net, args=args, processing_class=tokenizer,
                          train_dataset=Dataset.from_list([{k: r[k] for k in ("prompt", "privileged_context")} for r in rows]))
    lengths = check_teacher_prompts(trainer, rows[:2], 2048)
    assert 0 < lengths["max_student_prompt_tokens"] < lengths["max_teacher_prompt_tokens"] < 100
    with pytest.raises(ValueError, match=rf"problem '{rows[2]['id']}'.*max_prompt_length=100"):
        check_teacher_prompts(trainer, rows, 100)


def test_base_teacher_needs_a_parent_without_adapter(opsd_round, tiny_math_model, tmp_path):
    out, _ = opsd_round
    with pytest.raises(ValueError, match="teacher_model_kind 'base'"):
        train_opsd(_rows(), tiny_math_model, [str(out)], OPSDSettings(**OPSD), seed=1, out_dir=tmp_path / "r2")
    s = train_opsd(_rows()[:1], tiny_math_model, [], OPSDSettings(**OPSD), seed=1, out_dir=tmp_path / "few")
    assert s["trained"] is False and "2 needed" in s["reason"]


REBUILD = """
import sys
sys.path.insert(0, {tests!r})
import test_opsd as t
t.train_opsd(t._rows(), {model!r}, [], t.OPSDSettings(**t.OPSD), seed=1, out_dir={out!r}, threads=1)
"""


def test_opsd_rebuilds_byte_identical(opsd_round, tiny_math_model, tmp_path):
    """The same round trained again in another process (another PYTHONHASHSEED): the same bytes."""
    out, _ = opsd_round
    code = REBUILD.format(tests=str(REPO / "tests"), model=tiny_math_model, out=str(tmp_path / "again"))
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, env=env)
    assert proc.returncode == 0, proc.stderr[-4000:]
    files = lambda d: {p.name: p.read_bytes() for p in sorted(Path(d).iterdir())}  # noqa: E731
    assert files(tmp_path / "again") == files(out)
    assert json.loads((out / "training.json").read_text())["trained"] is True


def test_train_adapter_script_dispatches_opsd_and_lists_its_module(tmp_path, tiny_math_model):
    """scripts/train_adapter.py runs pidistill.opsd only for trainer opsd; a job whose rule did not
    list the module fails (pidistill.smk.rule_log), so an OPSD edit can never go untracked."""
    from pidistill.codedeps import code_files
    from pidistill.io import write_jsonl
    from test_trainers import _dispatch

    assert "pidistill/opsd.py" not in code_files(REPO / "scripts" / "train_adapter.py", REPO)
    write_jsonl(tmp_path / "prompts.jsonl", _rows()[:1])
    (tmp_path / "prov.json").write_text("{}")
    spec = {"input": {"parent_adapters": [], "model_provenance": str(tmp_path / "prov.json"),
                      "prompts": str(tmp_path / "prompts.jsonl")},
            "params": {"model": tiny_math_model, "train": {"trainer": "opsd", **OPSD}}}
    modules, summary = _dispatch(tmp_path, "opsd", {**spec, "modules": ["pidistill.opsd"]})
    assert "pidistill.opsd" in modules and "pidistill.grpo" not in modules
    assert summary["trained"] is False and summary["n_prompts"] == 1  # one prompt < the 2 a step needs
    assert "pidistill/opsd.py" in _dispatch(tmp_path, "undeclared", {**spec, "modules": []}, ok=False)
