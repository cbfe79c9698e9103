"""The vLLM backend without a GPU: request and engine arguments, seeding, LoRA handling, wiring
(through a stand-in ``vllm`` module that records what the backend asks of it)."""

from __future__ import annotations

import json
import sys
import types

import pytest

from pidistill.generation import GenerationRequest, PolicySpec, SamplingSettings, load_backend
from pidistill.generation.vllm_backend import engine_kwargs, lora_spec, sampling_kwargs
from pidistill.seeding import request_seed


def _adapter(path, r=16, trained=True):
    path.mkdir(parents=True)
    if trained:
        (path / "adapter_config.json").write_text(json.dumps({"r": r, "lora_alpha": 2 * r}))
    return str(path)


def test_lora_is_the_newest_trained_round(tmp_path):
    r1 = _adapter(tmp_path / "base" / "r1-tryagain" / "adapter", r=16)
    r2 = _adapter(tmp_path / "base" / "r1-tryagain" / "r2-tryagain" / "adapter", trained=False)
    spec = lora_spec(PolicySpec("Qwen/Qwen3-1.7B", [r1, r2]))
    assert spec.path == r1 and spec.rank == 16 and spec.int_id > 0
    assert lora_spec(PolicySpec("Qwen/Qwen3-1.7B", [])) is None
    assert lora_spec(PolicySpec("m", [r1])).int_id == spec.int_id  # stable id per path


def test_engine_and_sampling_arguments(tmp_path):
    r1 = _adapter(tmp_path / "a", r=64)
    kw = engine_kwargs(PolicySpec("Qwen/Qwen3-8B", [r1], revision="abc"), lora_spec(PolicySpec("m", [r1])))
    assert kw["enable_prefix_caching"] and kw["enable_lora"] and kw["max_lora_rank"] == 64
    assert kw["revision"] == "abc" and kw["dtype"] == "bfloat16"
    assert "enable_lora" not in engine_kwargs(PolicySpec("m"), None)
    req = GenerationRequest("HumanEval/0#3", ({"role": "user", "content": "x"},), request_seed(42, "evaluation", "HumanEval/0", 3))
    s = sampling_kwargs(req, SamplingSettings(temperature=0.7, top_p=0.95, max_new_tokens=768))
    assert s == {"n": 1, "temperature": 0.7, "top_p": 0.95, "max_tokens": 768, "seed": req.seed}


@pytest.fixture
def fake_vllm(monkeypatch):
    calls = {}

    class SamplingParams:
        def __init__(self, **kw):
            self.kw = kw

    class LLM:
        def __init__(self, **kw):
            calls["engine"] = kw

        def chat(self, conversations, sampling_params, lora_request, chat_template_kwargs, use_tqdm):
            calls.setdefault("chat", []).append((conversations, sampling_params, lora_request, chat_template_kwargs))
            out = []
            for conv, sp in zip(conversations, sampling_params):
                text = f"{conv[-1]['content']}|seed={sp.kw['seed']}"
                out.append(types.SimpleNamespace(outputs=[types.SimpleNamespace(text=text)]))
            return out

    class LoRARequest:
        def __init__(self, name, int_id, path):
            self.args = (name, int_id, path)

    vllm = types.ModuleType("vllm")
    vllm.LLM, vllm.SamplingParams = LLM, SamplingParams
    lora_mod = types.ModuleType("vllm.lora.request")
    lora_mod.LoRARequest = LoRARequest
    monkeypatch.setitem(sys.modules, "vllm", vllm)
    monkeypatch.setitem(sys.modules, "vllm.lora", types.ModuleType("vllm.lora"))
    monkeypatch.setitem(sys.modules, "vllm.lora.request", lora_mod)
    return calls


def test_backend_wiring_batches_in_order_with_lora(tmp_path, fake_vllm):
    r1 = _adapter(tmp_path / "base" / "r1-gold" / "adapter", r=16)
    policy = PolicySpec("Qwen/Qwen3-1.7B", [r1], chat_template_kwargs={"enable_thinking": False})
    backend = load_backend("vllm", policy, batch_size=2)
    reqs = [GenerationRequest(f"p{i}#0", ({"role": "user", "content": f"q{i}"},), seed=100 + i) for i in range(5)]
    out = backend.generate(reqs, SamplingSettings(temperature=0.7, max_new_tokens=32))
    assert out == [f"q{i}|seed={100 + i}" for i in range(5)]
    assert len(fake_vllm["chat"]) == 3  # batches of 2, 2, 1
    _, params, lora, template_kwargs = fake_vllm["chat"][0]
    assert lora.args[2] == r1 and template_kwargs == {"enable_thinking": False}
    assert fake_vllm["engine"]["enable_lora"] and fake_vllm["engine"]["model"] == "Qwen/Qwen3-1.7B"


def test_vllm_is_not_imported_by_the_demo_path():
    import subprocess

    code = ("import sys, pidistill.generation, pidistill.generation.hf, pidistill.sampling, pidistill.sft, "
            "pidistill.cli; assert 'vllm' not in sys.modules, 'vllm imported'")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
