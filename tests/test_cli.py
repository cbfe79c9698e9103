"""The `pidistill` command runs every stage outside Snakemake, on a tiny model saved like a hub model."""

import json
from pathlib import Path

import pytest

from pidistill import tinymodel
from pidistill.cli import main
from pidistill.io import read_jsonl


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("tiny_cli")
    cfg = tinymodel.TinyModelConfig(hidden_size=32, layers=1, heads=2, kv_heads=1, intermediate_size=64, corpus_size=200)
    dialogues = tinymodel.corpus_dialogues({"toy_math": "toy_math"}, {"math": "Try again carefully."}, cfg)
    tokenizer = tinymodel.build_tokenizer((m["content"] for d in dialogues for m in d["messages"]), vocab_size=300)
    tinymodel.build_model(cfg, tokenizer).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return str(out)


def test_stages_chain(tmp_path, model_dir):
    p = lambda name: str(tmp_path / name)  # noqa: E731
    assert main(["prepare", "toy_math", "--out", p("train.jsonl"), "--option", "split=train",
                 "--option", "n_train=12", "--option", "n_test=4"]) == 0
    gen = ["--model", model_dir, "--seed", "3", "--temperature", "1.0", "--max-new-tokens", "6"]
    assert main(["sample", *gen, "--problems", p("train.jsonl"), "--n", "2", "--out", p("first.jsonl")]) == 0
    assert main(["verify", "--problems", p("train.jsonl"), "--samples", p("first.jsonl"), "--out", p("first.v.jsonl")]) == 0
    first = read_jsonl(p("first.v.jsonl"))
    assert len(first) == 24 and all("passed" in v for v in first)
    assert main(["retry", *gen, "--problems", p("train.jsonl"), "--verdicts", p("first.v.jsonl"), "--pi", "gold",
                 "--k", "2", "--out", p("retries.jsonl")]) == 0
    retries = read_jsonl(p("retries.jsonl"))
    assert len(retries) == 2 * sum(not v["passed"] for v in first)
    assert all("The correct answer is" in r["retry_message"] for r in retries)
    assert main(["verify", "--problems", p("train.jsonl"), "--samples", p("retries.jsonl"), "--out", p("retries.v.jsonl")]) == 0
    # the random model rarely answers correctly: train on the canonical answers to exercise the trainer
    pairs = [{"id": r["id"], "attempt": 0, "prompt": [{"role": "user", "content": "Compute 2+2."}],
              "completion": [{"role": "assistant", "content": "\\boxed{4}"}]} for r in retries[:3]]
    (tmp_path / "pairs.jsonl").write_text("".join(json.dumps(x) + "\n" for x in pairs))
    assert main(["pairs", "--problems", p("train.jsonl"), "--first-verdicts", p("first.v.jsonl"),
                 "--retry-verdicts", p("retries.v.jsonl"), "--out", p("real_pairs.jsonl"), "--stats", p("stats.json")]) == 0
    assert json.loads((tmp_path / "stats.json").read_text())["n_first_attempts"] == 24
    assert main(["train", "--model", model_dir, "--pairs", p("pairs.jsonl"), "--out", p("adapter"), "--steps", "2",
                 "--learning-rate", "1e-3", "--lora-r", "4", "--lora-alpha", "8"]) == 0
    assert (tmp_path / "adapter" / "adapter_config.json").exists()
    assert main(["sample", *gen, "--adapter", p("adapter"), "--problems", p("train.jsonl"), "--n", "1",
                 "--stage", "evaluation", "--out", p("eval.jsonl")]) == 0
    assert main(["verify", "--problems", p("train.jsonl"), "--samples", p("eval.jsonl"), "--out", p("eval.v.jsonl")]) == 0
    assert main(["evaluate", "--problems", p("train.jsonl"), "--verdicts", p("eval.v.jsonl"), "--k", "1",
                 "--out", p("evaluation.json")]) == 0
    ev = json.loads((tmp_path / "evaluation.json").read_text())
    assert ev["n_problems"] == 12 and 0 <= ev["metrics"]["pass@1"] <= 1


def test_training_with_too_few_pairs_keeps_parent(tmp_path, model_dir):
    (tmp_path / "pairs.jsonl").write_text("")
    assert main(["train", "--model", model_dir, "--pairs", str(tmp_path / "pairs.jsonl"), "--out",
                 str(tmp_path / "adapter"), "--min-pairs", "1"]) == 0
    summary = json.loads((tmp_path / "adapter" / "training.json").read_text())
    assert summary["trained"] is False and "policy is the parent's" in summary["reason"]
    assert not (tmp_path / "adapter" / "adapter_config.json").exists()


def test_bad_input_names_the_file(tmp_path, capsys):
    bad = tmp_path / "problems.jsonl"
    bad.write_text('{"id": "a", "domain": "math", "prompt": "x", "answer": "1"}\n{"id": "b", "domain": "math"}\n')
    (tmp_path / "s.jsonl").write_text('{"id": "a", "completion": "\\\\boxed{1}"}\n')
    assert main(["verify", "--problems", str(bad), "--samples", str(tmp_path / "s.jsonl"), "--out", str(tmp_path / "v.jsonl")]) == 2
    assert "problems.jsonl:2" in capsys.readouterr().err
    assert not (tmp_path / "v.jsonl").exists()


def test_round_two_continues_round_ones_adapter(tmp_path, model_dir):
    from pidistill.generation import effective_adapter

    pairs = [{"id": "x", "attempt": 0, "prompt": [{"role": "user", "content": "Compute 2+2."}],
              "completion": [{"role": "assistant", "content": "\\boxed{4}"}]}] * 4
    (tmp_path / "pairs.jsonl").write_text("".join(json.dumps(x) + "\n" for x in pairs))
    common = ["--model", model_dir, "--pairs", str(tmp_path / "pairs.jsonl"), "--steps", "2", "--learning-rate", "1e-2",
              "--lora-r", "4", "--lora-alpha", "8"]
    assert main(["train", *common, "--out", str(tmp_path / "r1")]) == 0
    (tmp_path / "empty.jsonl").write_text("")
    assert main(["train", "--model", model_dir, "--adapter", str(tmp_path / "r1"), "--pairs", str(tmp_path / "empty.jsonl"),
                 "--out", str(tmp_path / "r2")]) == 0  # trains nothing: round 2's policy is round 1's
    assert effective_adapter([str(tmp_path / "r1"), str(tmp_path / "r2")]) == str(tmp_path / "r1")
    assert main(["train", *common, "--adapter", str(tmp_path / "r1"), "--adapter", str(tmp_path / "r2"),
                 "--out", str(tmp_path / "r3")]) == 0
    summary = json.loads((tmp_path / "r3" / "training.json").read_text())
    assert summary["continued_from"] == str(tmp_path / "r1")
    assert effective_adapter([str(tmp_path / p) for p in ("r1", "r2", "r3")]) == str(tmp_path / "r3")
    w1 = (tmp_path / "r1" / "adapter_model.safetensors").read_bytes()
    w3 = (tmp_path / "r3" / "adapter_model.safetensors").read_bytes()
    assert w1 != w3


def test_train_full_finetune_then_sample_from_it(tmp_path, model_dir):
    """`--trainer full` writes the fine-tuned model as the round's directory; sampling with it as the
    round (`--adapter`) loads those weights, not the base model's."""
    pairs = [{"id": "x", "attempt": 0, "prompt": [{"role": "user", "content": "Compute 2+2."}],
              "completion": [{"role": "assistant", "content": "\\boxed{4}"}]}] * 4
    (tmp_path / "pairs.jsonl").write_text("".join(json.dumps(x) + "\n" for x in pairs))
    out = tmp_path / "r1"
    assert main(["train", "--model", model_dir, "--pairs", str(tmp_path / "pairs.jsonl"), "--trainer", "full",
                 "--steps", "2", "--learning-rate", "1e-2", "--batch-size", "4", "--out", str(out)]) == 0
    summary = json.loads((out / "training.json").read_text())
    assert summary["trained"] and summary["settings"]["trainer"] == "full"
    assert (out / "model.safetensors").is_file() and not (out / "adapter_config.json").exists()
    assert (out / "model.safetensors").read_bytes() != (Path(model_dir) / "model.safetensors").read_bytes()
    from pidistill.generation import resolve_policy

    assert resolve_policy(model_dir, [str(out)]).model == str(out)
    assert main(["prepare", "toy_math", "--out", str(tmp_path / "p.jsonl"), "--option", "split=test",
                 "--option", "n_train=4", "--option", "n_test=2"]) == 0
    assert main(["sample", "--model", model_dir, "--adapter", str(out), "--problems", str(tmp_path / "p.jsonl"),
                 "--n", "1", "--max-new-tokens", "4", "--out", str(tmp_path / "s.jsonl")]) == 0
    assert len((tmp_path / "s.jsonl").read_text().splitlines()) == 2


def test_train_rejects_an_unknown_trainer(tmp_path, model_dir, capsys):
    with pytest.raises(SystemExit):
        main(["train", "--model", model_dir, "--pairs", str(tmp_path / "p.jsonl"), "--trainer", "grpo",
              "--out", str(tmp_path / "r")])
    assert "invalid choice: 'grpo'" in capsys.readouterr().err
