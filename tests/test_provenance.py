"""Provenance: hub revisions resolved to commits (online API or the local HF cache), content hashes,
hub loads recorded by the dataset loaders, a hub model loaded offline at its pinned commit, and the
paper's provenance section."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from pidistill import provenance, tinymodel
from pidistill.provenance import (
    RevisionError,
    collect_hub_loads,
    model_provenance,
    pinned_revision,
    resolve_hub_revision,
    sha256_path,
)
from pidistill.report.sections import provenance_tex

SHA = "0123456789abcdef0123456789abcdef01234567"
SHA2 = "fedcba9876543210fedcba9876543210fedcba98"


def fake_hub_cache(cache: Path, repo_id: str, repo_type: str, sha: str, ref: str = "main") -> Path:
    """The layout huggingface_hub leaves after a download: refs/<ref> holds the commit, files under snapshots/."""
    folder = cache / f"{repo_type}s--{repo_id.replace('/', '--')}"
    (folder / "refs").mkdir(parents=True, exist_ok=True)
    (folder / "refs" / ref).write_text(sha)
    snapshot = folder / "snapshots" / sha
    snapshot.mkdir(parents=True, exist_ok=True)
    return snapshot


@pytest.fixture
def offline_cache(tmp_path, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    return tmp_path / "hub"


def test_a_commit_is_its_own_revision():
    assert resolve_hub_revision("any/repo", "model", SHA) == SHA


def test_offline_revision_comes_from_the_local_cache(offline_cache):
    fake_hub_cache(offline_cache, "org/model", "model", SHA)
    fake_hub_cache(offline_cache, "org/model", "model", SHA2, ref="v1.0")
    assert resolve_hub_revision("org/model") == SHA
    assert resolve_hub_revision("org/model", revision="v1.0") == SHA2
    fake_hub_cache(offline_cache, "org/data", "dataset", SHA2)
    assert resolve_hub_revision("org/data", "dataset") == SHA2


def test_unresolvable_revision_names_repo_revision_and_cache(offline_cache):
    with pytest.raises(RevisionError, match=r"model 'org/missing' at revision 'main'.*HF_HUB_OFFLINE.*refs/main"):
        resolve_hub_revision("org/missing")


def test_online_revision_asks_the_hub(monkeypatch, tmp_path):
    from huggingface_hub import HfApi, constants

    asked = []

    def repo_info(self, repo_id, repo_type=None, revision=None):
        asked.append((repo_id, repo_type, revision))
        return type("Info", (), {"sha": SHA})()

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(HfApi, "repo_info", repo_info)
    assert resolve_hub_revision("Qwen/Qwen3-8B", "model", None) == SHA
    assert asked == [("Qwen/Qwen3-8B", "model", "main")]


def test_sha256_of_a_directory_covers_names_and_contents(tmp_path):
    d = tmp_path / "m"
    (d / "sub").mkdir(parents=True)
    (d / "a.bin").write_bytes(b"1")
    (d / "sub" / "b.json").write_text("{}")
    first = sha256_path(d)
    assert first == sha256_path(d) and len(first) == 64
    (d / "sub" / "b.json").write_text("{ }")
    assert sha256_path(d) != first
    (d / "sub" / "b.json").write_text("{}")
    (d / "a.bin").rename(d / "c.bin")
    assert sha256_path(d) != first
    with pytest.raises(FileNotFoundError, match="nowhere"):
        sha256_path(tmp_path / "nowhere")


def test_model_provenance_and_pinning(tmp_path, offline_cache):
    fake_hub_cache(offline_cache, "Qwen/Qwen3-1.7B", "model", SHA)
    hub = model_provenance({"source": "hub", "id": "Qwen/Qwen3-1.7B"}, "Qwen/Qwen3-1.7B")
    assert hub == {"source": "hub", "id": "Qwen/Qwen3-1.7B", "revision": "main", "commit": SHA}
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "config.json").write_text("{}")
    local = model_provenance({"source": "pretrain"}, tmp_path / "m")
    assert local["source"] == "pretrain" and local["sha256"] == sha256_path(tmp_path / "m")
    (tmp_path / "hub.json").write_text(json.dumps(hub))
    (tmp_path / "local.json").write_text(json.dumps(local))
    assert pinned_revision(tmp_path / "hub.json") == SHA
    assert pinned_revision(tmp_path / "local.json") is None


def test_hub_loaders_load_at_the_resolved_commit_and_record_it(offline_cache, monkeypatch):
    """The code and math loaders pass the resolved commit to datasets.load_dataset and note each load."""
    import datasets

    fake_hub_cache(offline_cache, "openai_humaneval", "dataset", SHA)
    fake_hub_cache(offline_cache, "HuggingFaceH4/MATH-500", "dataset", SHA2)
    calls = []

    def load_dataset(name, config=None, split=None, revision=None):
        calls.append((name, config, split, revision))
        if name == "openai_humaneval":
            row = {"task_id": "HumanEval/0", "entry_point": "f", "canonical_solution": "    return 1\n",
                   "test": "def check(candidate):\n    assert candidate() == 1\n",
                   "prompt": 'def f():\n    """\n    >>> f()\n    1\n    """\n'}
            return {"test": datasets.Dataset.from_list([row])}
        return datasets.Dataset.from_list([{"problem": "1+1?", "answer": "2", "unique_id": "test/a/1.json",
                                            "solution": "\\boxed{2}", "subject": "Algebra", "level": 1}])

    monkeypatch.setattr(datasets, "load_dataset", load_dataset)
    from pidistill.domains.registry import load

    with collect_hub_loads() as loads:
        code = load("humaneval", None)
        math = load("math500", None)
    assert len(code) == 1 and len(math) == 1
    assert calls == [("openai_humaneval", None, None, SHA), ("HuggingFaceH4/MATH-500", None, "test", SHA2)]
    assert loads == [{"repo": "openai_humaneval", "config": None, "revision": "main", "commit": SHA},
                     {"repo": "HuggingFaceH4/MATH-500", "config": None, "revision": "main", "commit": SHA2}]
    assert provenance._HUB_LOADS.get() is None  # nothing is collected outside the block


def _tiny_model(seed: int, out: Path) -> None:
    import torch

    texts = ["Compute 2+3.", "\\boxed{5}", "Try again."] * 20
    tokenizer = tinymodel.build_tokenizer(texts, vocab_size=200)
    model = tinymodel.build_model(tinymodel.TinyModelConfig(hidden_size=32, layers=1, heads=2, kv_heads=1,
                                                            intermediate_size=64), tokenizer)
    with torch.no_grad():  # two "commits" of one repository: same architecture, different weights
        for p in model.parameters():
            p.add_(0.01 * seed)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)


def test_hub_model_loads_offline_at_its_pinned_commit(tmp_path):
    """With the hub unreachable (HF_HUB_OFFLINE=1), a hub id resolves from the cache, and loading at a
    pinned commit gets that commit's weights even after ``main`` moved to another commit."""
    cache = tmp_path / "hub"
    old = fake_hub_cache(cache, "pidistill-test/tiny", "model", SHA, ref="v1")
    new = fake_hub_cache(cache, "pidistill-test/tiny", "model", SHA2, ref="main")
    _tiny_model(1, old)
    _tiny_model(2, new)
    script = textwrap.dedent("""
        import sys, torch
        from pidistill.generation import PolicySpec
        from pidistill.generation.hf import load_policy
        from pidistill.provenance import model_provenance
        record = model_provenance({"source": "hub", "id": "pidistill-test/tiny"}, "pidistill-test/tiny")
        sums = []
        for rev in (sys.argv[1], record["commit"]):
            model, _ = load_policy(PolicySpec("pidistill-test/tiny", [], revision=rev))
            sums.append(float(sum(p.double().sum() for p in model.parameters())))
        print(record["commit"], *sums)
    """)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(cache)}
    proc = subprocess.run([sys.executable, "-c", script, SHA], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    commit, pinned_sum, main_sum = proc.stdout.split()
    assert commit == SHA2  # main, as resolved from the cache

    from safetensors.torch import load_file

    def checksum(snapshot):
        return sum(float(t.double().sum()) for t in load_file(snapshot / "model.safetensors").values())

    assert float(pinned_sum) == pytest.approx(checksum(old)) and float(main_sum) == pytest.approx(checksum(new))
    assert float(pinned_sum) != pytest.approx(float(main_sum))


def test_paper_section_names_commits_and_hashes():
    models = {"qwen": {"source": "hub", "id": "Qwen/Qwen3-8B", "revision": "main", "commit": SHA},
              "tiny": {"source": "pretrain", "path": "results/models/tiny", "sha256": "ab" * 32}}
    datasets = {"math": {"splits": {
        "train": {"origin": "hub", "loader": "math-train", "problems": 7, "sha256": "cd" * 32,
                  "hub": [{"repo": "EleutherAI/hendrycks_math", "config": "algebra", "revision": "main", "commit": SHA2}]},
        "test": {"origin": "file", "loader": "math500", "problems": 5, "sha256": "ef" * 32,
                 "source": "data/test.jsonl", "source_sha256": "12" * 32}}}}
    tex = provenance_tex(models, datasets)
    assert "\\texttt{Qwen/Qwen3-8B} at main = commit \\texttt{" + SHA[:12] + "}" in tex
    assert "sha256 \\texttt{" + "ab" * 6 + "}" in tex
    assert "\\texttt{EleutherAI/hendrycks\\_math:algebra} commit \\texttt{" + SHA2[:12] in tex
    assert "5 problems from file \\texttt{data/test.jsonl}" in tex and "7 problems from \\texttt{EleutherAI" in tex
    assert tex.index("Data \\texttt{math}, test") < tex.index("Data \\texttt{math}, train")
