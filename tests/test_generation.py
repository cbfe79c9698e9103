"""The transformers backend on a tiny randomly initialised model saved and loaded like a hub model."""

import pytest

from pidistill import tinymodel
from pidistill.generation import GenerationRequest, PolicySpec, SamplingSettings, load_backend
from pidistill.seeding import request_seed


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("tiny")
    texts = ["Compute 2+3.", "\\boxed{5}", "Write a Python function f(x) that returns x times 3 plus 1.",
             "def f(x):\n    return x*3+1", "Try again carefully."] * 20
    tokenizer = tinymodel.build_tokenizer(texts, vocab_size=300)
    model = tinymodel.build_model(tinymodel.TinyModelConfig(hidden_size=32, layers=1, heads=2, kv_heads=1,
                                                            intermediate_size=64), tokenizer)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return str(out)


def _requests(ids, seed=1):
    return [GenerationRequest(f"{i}#0", ({"role": "user", "content": f"Compute {i}+3."},), request_seed(seed, "t", str(i), 0))
            for i in ids]


def test_chat_template_prompt_is_prefix(model_dir):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    prompt = [{"role": "user", "content": "Compute 2+3."}]
    full = prompt + [{"role": "assistant", "content": "\\boxed{5}"}]
    a = tok.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True)
    b = tok.apply_chat_template(full, tokenize=False)
    assert b.startswith(a) and b.endswith("<|end|>")
    assert tok.decode(tok("def f(x):\n    return x*3+1")["input_ids"]) == "def f(x):\n    return x*3+1"


def test_sample_does_not_depend_on_batch(model_dir):
    backend = load_backend("transformers", PolicySpec(model_dir), batch_size=8, progress=False)
    settings = SamplingSettings(temperature=1.0, max_new_tokens=8)
    alone = backend.generate(_requests([7]), settings)
    batched = backend.generate(_requests([1, 2, 3, 7, 11, 12]), settings)
    shuffled = backend.generate(_requests([12, 7, 3]), settings)
    assert alone[0] == batched[3] == shuffled[1]
    again = backend.generate(_requests([1, 2, 3, 7, 11, 12]), settings)
    assert again == batched  # deterministic


def test_different_seeds_give_different_samples(model_dir):
    backend = load_backend("transformers", PolicySpec(model_dir), batch_size=8, progress=False)
    settings = SamplingSettings(temperature=1.0, max_new_tokens=8)
    reqs = [GenerationRequest(f"x#{a}", ({"role": "user", "content": "Compute 2+3."},), request_seed(1, "t", "x", a))
            for a in range(8)]
    outs = backend.generate(reqs, settings)
    assert len(set(outs)) > 1


def test_greedy_when_temperature_zero(model_dir):
    backend = load_backend("transformers", PolicySpec(model_dir), batch_size=8, progress=False)
    settings = SamplingSettings(temperature=0.0, max_new_tokens=8)
    a = backend.generate(_requests([5], seed=1), settings)
    b = backend.generate(_requests([5], seed=2), settings)
    assert a == b


def test_gumbel_sampler_matches_softmax_frequencies():
    import torch

    from pidistill.generation.hf import SeededGumbelSampler

    logits = torch.tensor([[2.0, 1.0, 0.0, -1.0]])
    probs = torch.softmax(logits / 0.7, -1)[0]
    counts = torch.zeros(4)
    for s in range(3000):
        sampler = SeededGumbelSampler([s], temperature=0.7, top_p=1.0)
        counts[int(sampler(torch.zeros(1, 3, dtype=torch.long), logits.clone()).argmax())] += 1
    assert torch.allclose(counts / counts.sum(), probs, atol=0.03)


def test_top_p_keeps_nucleus():
    import torch

    from pidistill.generation.hf import SeededGumbelSampler

    logits = torch.log(torch.tensor([[0.6, 0.3, 0.05, 0.05]]))
    seen = set()
    for s in range(300):
        sampler = SeededGumbelSampler([s], temperature=1.0, top_p=0.8)
        seen.add(int(sampler(torch.zeros(1, 2, dtype=torch.long), logits.clone()).argmax()))
    assert seen == {0, 1}


def test_pretraining_runs_in_float32_without_autocast(tmp_path, monkeypatch):
    """TRL's SFTConfig defaults to bf16 autocast, on a CPU too, where a CPU without bf16 instructions
    emulates it (every matmul of the demo's pretraining about 10x slower on an AVX2-only machine):
    the demo model pretrains in float32, the precision it is saved in."""
    import trl

    from pidistill.retry import DEFAULT_RETRY_TEXT

    seen = {}
    original = trl.SFTTrainer.train

    def train(self, *args, **kwargs):
        seen.update(bf16=self.args.bf16, fp16=self.args.fp16, dtype=next(self.model.parameters()).dtype)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(trl.SFTTrainer, "train", train)
    cfg = tinymodel.TinyModelConfig(hidden_size=32, layers=1, heads=2, kv_heads=1, intermediate_size=64, steps=2,
                                    batch_size=4, corpus_size=40)
    dialogues = tinymodel.corpus_dialogues({"toy_math": "toy_math"}, {"math": DEFAULT_RETRY_TEXT["math"]}, cfg)
    tinymodel.pretrain(tmp_path / "m", cfg, dialogues, threads=1)
    import torch

    assert seen == {"bf16": False, "fp16": False, "dtype": torch.float32}


def test_pretraining_micro_batches_are_the_same_updates_with_less_padding(tmp_path, monkeypatch):
    """Each optimizer batch runs as micro-batches of similar length (transformers' batch_rebalance
    sampler with gradient accumulation): the same examples per update, the loss normalised over the
    whole batch's tokens, so the weights match those of one batch per update; and the micro-batches
    hold fewer padded tokens than the whole batch would."""
    import torch
    import trl

    from pidistill import tinymodel
    from pidistill.retry import DEFAULT_RETRY_TEXT

    padded = []
    original = trl.SFTTrainer.training_step

    def training_step(self, model, inputs, *args, **kwargs):
        padded.append(inputs["input_ids"].numel())
        return original(self, model, inputs, *args, **kwargs)

    monkeypatch.setattr(trl.SFTTrainer, "training_step", training_step)
    weights, tokens = {}, {}
    for micro in (1, 4):
        cfg = tinymodel.TinyModelConfig(hidden_size=32, layers=1, heads=2, kv_heads=1, intermediate_size=64, steps=3,
                                        batch_size=16, micro_batches=micro, corpus_size=200, learning_rate=1e-2)
        dialogues = tinymodel.corpus_dialogues({"toy_code": "toy_code"}, {"code": DEFAULT_RETRY_TEXT["code"]}, cfg)
        padded.clear()
        tinymodel.pretrain(tmp_path / f"m{micro}", cfg, dialogues, threads=1)
        assert len(padded) == 3 * micro
        tokens[micro] = sum(padded)
        from transformers import AutoModelForCausalLM

        weights[micro] = AutoModelForCausalLM.from_pretrained(tmp_path / f"m{micro}").state_dict()
    assert tokens[4] < 0.8 * tokens[1]
    for name, w in weights[1].items():
        torch.testing.assert_close(weights[4][name], w, rtol=1e-4, atol=1e-5, msg=name)
    with pytest.raises(ValueError, match="batch_size 6 is not a multiple of micro_batches 4"):
        tinymodel.TinyModelConfig(batch_size=6, micro_batches=4)
