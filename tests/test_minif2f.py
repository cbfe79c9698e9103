"""miniF2F loaders: both published variants, the records they make, and bad files named clearly."""

import io
import json
import re
import tarfile
from pathlib import Path

import pytest

from pidistill.domains.minif2f import DEEPSEEK_VARIANT, LEAN4_VARIANT, parse_lean_file
from pidistill.domains.registry import load
from pidistill.io import InputError
from pidistill.problems import Problem, read_problems, write_problems

DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"
DEEPSEEK = DATASETS / "minif2f_deepseek_prover_v1.5.jsonl"
LEAN4 = DATASETS / "miniF2F-lean4_test.tar.gz"
HEADER = "import Mathlib\nimport Aesop\n\nset_option maxHeartbeats 0\n\nopen BigOperators Real Nat Topology Rat\n\n"


def _deepseek(tmp_path, rows) -> str:
    path = tmp_path / "minif2f.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def _row(name, split="test", statement=None):
    return {"name": name, "split": split, "informal_prefix": f"/-- Show that {name} holds.-/\n",
            "formal_statement": statement or f"theorem {name} (n : ℕ) (h : n = 2) : n + n = 4 := by\n",
            "goal": "n : ℕ\nh : n = 2\n⊢ n + n = 4", "header": HEADER}


def _tarball(tmp_path, files: dict[str, str]) -> str:
    path = tmp_path / "miniF2F-lean4.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(f"miniF2F-lean4/MiniF2F/Test/{name}.lean")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return str(path)


def test_deepseek_records(tmp_path):
    src = _deepseek(tmp_path, [_row("b_p2"), _row("a_p1"), _row("v_p3", split="valid")])
    problems = load("minif2f-deepseek", src)
    assert [p.id for p in problems] == ["a_p1", "b_p2"]  # split test by default, sorted
    p = problems[0]
    assert p.domain == "formal" and p.meta["variant"] == DEEPSEEK_VARIANT and p.meta["split"] == "test"
    assert p.meta["header"] == HEADER and p.meta["statement"] == "theorem a_p1 (n : ℕ) (h : n = 2) : n + n = 4 := by"
    assert p.meta["informal"] == "Show that a_p1 holds." and p.meta["goal"].endswith("⊢ n + n = 4")
    assert HEADER + p.meta["statement"] in p.prompt and "# Problem: Show that a_p1 holds." in p.prompt
    assert [p.id for p in load("minif2f-deepseek", src, split="test,valid")] == ["a_p1", "b_p2", "v_p3"]
    # formal records survive the problems file
    write_problems(tmp_path / "p.jsonl", problems)
    assert [q.to_dict() for q in read_problems(tmp_path / "p.jsonl")] == [q.to_dict() for q in problems]


def test_deepseek_bad_records_name_the_line(tmp_path):
    with pytest.raises(InputError, match=r"minif2f.jsonl:2: .*missing field\(s\) 'header'"):
        row = _row("b")
        del row["header"]
        load("minif2f-deepseek", _deepseek(tmp_path, [_row("a"), row]))
    with pytest.raises(InputError, match=r":1: formal_statement must end with ':= by'"):
        load("minif2f-deepseek", _deepseek(tmp_path, [_row("a", statement="theorem a : True := by trivial")]))
    with pytest.raises(InputError, match=r":2: duplicate name 'a'"):
        load("minif2f-deepseek", _deepseek(tmp_path, [_row("a"), _row("a")]))
    with pytest.raises(InputError, match="split='train'"):
        load("minif2f-deepseek", _deepseek(tmp_path, [_row("a")]), split="train")
    with pytest.raises(InputError, match="reads a local file"):
        load("minif2f-deepseek")


def test_lean4_records_and_errors(tmp_path):
    body = HEADER + "theorem t_p1 (x : ℕ) :\n    x + 0 = x := by sorry\n"
    problems = load("minif2f-lean4", _tarball(tmp_path, {"t_p1": body, "s_p0": body.replace("t_p1", "s_p0")}))
    assert [p.id for p in problems] == ["s_p0", "t_p1"]
    p = problems[1]
    assert p.meta["variant"] == LEAN4_VARIANT and p.meta["header"] == HEADER
    assert p.meta["statement"] == "theorem t_p1 (x : ℕ) :\n    x + 0 = x := by" and p.meta["informal"] == ""
    with pytest.raises(InputError, match=r"t\.lean: expected one `theorem`"):
        parse_lean_file("t.lean", HEADER + "lemma x : True := by sorry\n")
    with pytest.raises(InputError, match="must end with ':= by sorry'"):
        parse_lean_file("t.lean", HEADER + "theorem x : True := by trivial\n")
    with pytest.raises(InputError, match=r"theorem 'other' in a file named t_p1\.lean"):
        load("minif2f-lean4", _tarball(tmp_path, {"t_p1": body.replace("t_p1", "other")}))
    (tmp_path / "plain.txt").write_text("not a tarball")
    with pytest.raises(InputError, match="not a tar archive"):
        load("minif2f-lean4", str(tmp_path / "plain.txt"))


def test_formal_problem_needs_its_statement():
    with pytest.raises(ValueError, match="needs meta 'header' and 'statement'"):
        Problem(id="x", domain="formal", prompt="p", meta={"header": ""})


@pytest.mark.skipif(not (DEEPSEEK.exists() and LEAN4.exists()), reason="../shared/datasets (miniF2F) not present")
def test_the_real_files_and_how_they_differ():
    test = load("minif2f-deepseek", str(DEEPSEEK))
    valid = load("minif2f-deepseek", str(DEEPSEEK), split="valid")
    lean4 = load("minif2f-lean4", str(LEAN4))
    assert (len(test), len(valid), len(lean4)) == (244, 244, 244)
    assert all(p.meta["statement"].endswith(":= by") and p.meta["header"].startswith("import Mathlib") for p in test + lean4)
    # the variants are not interchangeable: one theorem is named differently and most statements differ
    a, b = {p.id.lower(): p for p in test}, {p.id.lower(): p for p in lean4}
    assert set(a) == set(b)
    norm = lambda s: re.sub(r"\s+", " ", s).strip()  # noqa: E731
    differ = sum(norm(a[k].meta["statement"]) != norm(b[k].meta["statement"]) for k in a)
    assert differ == 180, differ
    assert {p.meta["variant"] for p in test} == {DEEPSEEK_VARIANT} and {p.meta["variant"] for p in lean4} == {LEAN4_VARIANT}


@pytest.mark.skipif(not DEEPSEEK.is_file(), reason="../shared/datasets is not in this checkout")
def test_the_paper_configs_pinned_minif2f_is_this_file():
    """The paper config downloads DeepSeek's file at a commit, checked by sha256: the same bytes as the
    reference copy, and its splits are what the lean study trains and evaluates on."""
    import hashlib

    from pidistill.config import load_config

    spec = load_config(Path(__file__).resolve().parents[1] / "config" / "paper.yaml")["datasets"]["minif2f"]
    assert hashlib.sha256(DEEPSEEK.read_bytes()).hexdigest() == spec["source_sha256"]
    assert re.fullmatch(r"https://raw\.githubusercontent\.com/deepseek-ai/DeepSeek-Prover-V1\.5/[0-9a-f]{40}/"
                        r"datasets/minif2f\.jsonl", spec["source_url"])
    train = load(spec["loader"], str(DEEPSEEK), **spec["train_options"])
    test = load(spec["loader"], str(DEEPSEEK), **spec["test_options"])
    assert len(train) == len(test) == 244 and not {p.id for p in train} & {p.id for p in test}
