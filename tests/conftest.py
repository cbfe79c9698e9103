import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATASETS = REPO.parent / "shared" / "datasets"

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


def pretrain_tiny(out, loader: str, domain: str) -> str:
    """A tiny Qwen3 chat model briefly pretrained on one toy domain's dialogues (pidistill.tinymodel),
    saved like a hub model. A few seconds (one thread: the tiny network gains nothing from more)."""
    from pidistill import tinymodel
    from pidistill.retry import DEFAULT_RETRY_TEXT

    cfg = tinymodel.TinyModelConfig(hidden_size=64, layers=2, heads=2, kv_heads=1, intermediate_size=128, steps=120,
                                    batch_size=16, corpus_size=600, learning_rate=3e-3)
    dialogues = tinymodel.corpus_dialogues({loader: loader}, {domain: DEFAULT_RETRY_TEXT[domain]}, cfg)
    tinymodel.pretrain(out, cfg, dialogues, threads=1)
    return str(out)


@pytest.fixture(scope="session")
def tiny_math_model(tmp_path_factory) -> str:
    """The tiny model on toy_math: it answers "\\boxed{n}", sometimes right, sometimes with the author's
    slips, so first attempts, rewards and filters have something to work with."""
    return pretrain_tiny(tmp_path_factory.mktemp("tiny_math_model"), "toy_math", "math")
