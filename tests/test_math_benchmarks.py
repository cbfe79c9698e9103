"""MATH-500 and MATH training-problem loaders (local files through ``datasets``; the hub path with
``datasets.load_dataset`` replaced by a local stand-in, since the hub is unreachable here)."""

from __future__ import annotations

import collections
import json
from pathlib import Path

import pytest

from pidistill.domains import math_benchmarks as mb
from pidistill.domains.registry import load
from pidistill.problems import read_problems, write_problems
from pidistill.provenance import RevisionError

DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"
MATH500 = DATASETS / "MATH-500_test.jsonl"

COMMIT = "0123456789abcdef0123456789abcdef01234567"  # a commit resolves as itself, no hub needed
MINI500 = [
    {"problem": "Compute $1+1$.", "solution": "It is $\\boxed{2}$.", "answer": "2", "subject": "Prealgebra", "level": 1, "unique_id": "test/prealgebra/1.json"},
    {"problem": "Find $x$ if $2x=3$.", "solution": "$x=\\boxed{\\frac32}$", "answer": "\\frac{3}{2}", "subject": "Algebra", "level": 2, "unique_id": "test/algebra/7.json"},
    {"problem": "Solve $x^2<1$.", "solution": "$\\boxed{(-1,1)}$", "answer": "(-1,1)", "subject": "Intermediate Algebra", "level": 5, "unique_id": "test/intermediate_algebra/3.json"},
]

# The original MATH layout: no answer column, "Level N" strings, the subject under "type".
MINI_TRAIN = [
    {"problem": "What is $2\\cdot 3$?", "level": "Level 1", "type": "Prealgebra", "solution": "We get $\\boxed{6}$."},
    {"problem": "Simplify $\\sqrt{8}$.", "level": "Level 2", "type": "Algebra", "solution": "$\\sqrt 8 = \\boxed{2\\sqrt{2}}$."},
    {"problem": "A problem whose solution has no box.", "level": "Level 3", "type": "Geometry", "solution": "The area is 5."},
    {"problem": "Compute $1+1$.", "level": "Level 1", "type": "Prealgebra", "solution": "$\\boxed{2}$"},  # also in MINI500
    {"problem": "Nested: find the set.", "level": "Level 5", "type": "Intermediate Algebra", "solution": "So $\\boxed{\\{1, \\frac{1}{2}\\}}$."},
]


def _jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_math500_from_local_file(tmp_path):
    problems = mb.load_math500(str(_jsonl(tmp_path / "m.jsonl", MINI500)))
    assert [p.id for p in problems] == [r["unique_id"] for r in MINI500]
    p = problems[1]
    assert p.domain == "math" and p.answer == "\\frac{3}{2}"
    assert p.meta == {"level": 2, "subject": "Algebra", "unique_id": "test/algebra/7.json", "dataset": "math500"}
    assert p.prompt.startswith("Find $x$") and "\\boxed{}" in p.prompt
    assert mb.load_math500(str(tmp_path / "m.jsonl"), instruction="")[0].prompt == "Compute $1+1$."
    # options: level and subject filters, limit
    assert [p.id for p in mb.load_math500(str(tmp_path / "m.jsonl"), levels=[1, 5])] == ["test/prealgebra/1.json", "test/intermediate_algebra/3.json"]
    assert len(mb.load_math500(str(tmp_path / "m.jsonl"), subjects="Algebra")) == 1
    assert len(mb.load_math500(str(tmp_path / "m.jsonl"), limit=2)) == 2


def test_math500_round_trips_through_problem_files(tmp_path):
    problems = load("math500", str(_jsonl(tmp_path / "m.jsonl", MINI500)))
    write_problems(tmp_path / "p.jsonl", problems)
    assert read_problems(tmp_path / "p.jsonl") == problems


def test_math500_rejects_other_formats(tmp_path):
    with pytest.raises(ValueError, match="missing field"):
        mb.load_math500(str(_jsonl(tmp_path / "bad.jsonl", [{"question": "x", "answer": "1"}])))
    with pytest.raises(ValueError, match="duplicate"):
        mb.load_math500(str(_jsonl(tmp_path / "dup.jsonl", [MINI500[0], MINI500[0]])))
    with pytest.raises(ValueError, match="not found"):
        mb.load_math500(str(tmp_path / "missing.jsonl"))


@pytest.mark.skipif(not MATH500.exists(), reason=f"{MATH500} not present")
def test_math500_real_file():
    problems = load("math500", str(MATH500))
    assert len(problems) == 500 and len({p.id for p in problems}) == 500
    levels = collections.Counter(p.meta["level"] for p in problems)
    assert set(levels) == {1, 2, 3, 4, 5} and sum(levels.values()) == 500
    assert len({p.meta["subject"] for p in problems}) == 7
    assert all(p.id == p.meta["unique_id"] and p.id.startswith("test/") for p in problems)
    assert all(p.answer for p in problems)


def test_math_train_from_local_jsonl(tmp_path):
    problems = mb.load_math_train(str(_jsonl(tmp_path / "train.jsonl", MINI_TRAIN)))
    # the row without a boxed answer is skipped; answers come from the solution's last box
    assert [p.answer for p in problems] == ["6", "2\\sqrt{2}", "2", "\\{1, \\frac{1}{2}\\}"]
    assert [p.meta["level"] for p in problems] == [1, 2, 1, 5]
    assert problems[1].meta["subject"] == "Algebra" and problems[1].meta["dataset"] == "math_train"
    assert len({p.id for p in problems}) == 4
    # the registry name routes to the same loader
    assert [p.id for p in load("math-train", str(tmp_path / "train.jsonl"))] == [p.id for p in problems]


def test_math_train_excludes_evaluation_problems(tmp_path):
    src = _jsonl(tmp_path / "train.jsonl", MINI_TRAIN)
    held_out = _jsonl(tmp_path / "m500.jsonl", MINI500)
    problems = mb.load_math_train(str(src), exclude=str(held_out))
    assert "Compute $1+1$." not in {p.prompt.split("\n\n")[0] for p in problems}
    assert len(problems) == 3


def test_math_train_from_saved_dataset_dir_and_answer_column(tmp_path):
    import datasets

    rows = [dict(r, answer=a) for r, a in zip(MINI_TRAIN[:2], ["6", "2\\sqrt2"])]
    datasets.Dataset.from_list(rows).save_to_disk(str(tmp_path / "saved"))
    problems = mb.load_math_train(str(tmp_path / "saved"), levels=2)
    assert [p.answer for p in problems] == ["2\\sqrt2"]  # an answer column wins over the solution box


def test_math_train_hub_path_concatenates_configs(monkeypatch):
    """With no source the loader asks ``datasets`` for each configured subject and concatenates them."""
    import datasets

    calls = []

    def fake_load_dataset(name, config=None, split=None, revision=None):
        calls.append((name, config, split, revision))
        subject_rows = [r for r in MINI_TRAIN if r["type"].lower().replace(" ", "_") == config]
        return datasets.Dataset.from_list(subject_rows or [MINI_TRAIN[2]])

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    problems = mb.load_math_train(None, configs=["prealgebra", "algebra"], revision=COMMIT)
    assert calls == [(mb.MATH_TRAIN_HUB, "prealgebra", "train", COMMIT), (mb.MATH_TRAIN_HUB, "algebra", "train", COMMIT)]
    assert [p.answer for p in problems] == ["6", "2", "2\\sqrt{2}"]
    calls.clear()
    mb.load_math_train(None, hub="someone/MATH-lighteval", configs=None, split="train", revision=COMMIT)
    assert calls == [("someone/MATH-lighteval", None, "train", COMMIT)]


def test_math500_hub_path(monkeypatch):
    import datasets

    calls = []

    def fake_load_dataset(name, config=None, split=None, revision=None):
        calls.append((name, config, split, revision))
        return datasets.Dataset.from_list(MINI500)

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    assert len(load("math500", revision=COMMIT)) == 3
    assert calls == [(mb.MATH500_HUB, None, "test", COMMIT)]



def test_hub_path_offline_without_cache_names_the_dataset(monkeypatch, tmp_path):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))
    with pytest.raises(RevisionError, match="dataset 'HuggingFaceH4/MATH-500' at revision 'main'"):
        load("math500")


def test_toy_math_problems_share_the_record_shape():
    problems = load("toy_math", None, n_train=10, n_test=5)
    assert all(p.domain == "math" and p.answer is not None for p in problems)
