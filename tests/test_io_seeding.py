import json

import pytest

from pidistill.io import InputError, atomic_path, read_json, read_jsonl, write_json, write_jsonl
from pidistill.seeding import derangement, derive_seed, request_seed


def test_jsonl_roundtrip_sorted_keys(tmp_path):
    path = tmp_path / "a.jsonl"
    write_jsonl(path, [{"b": 1, "a": 2}])
    assert path.read_text() == '{"a": 2, "b": 1}\n'
    assert read_jsonl(path) == [{"a": 2, "b": 1}]


def test_bad_jsonl_names_file_and_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"a": 1}\n{"a": \n')
    with pytest.raises(InputError, match=r"bad.jsonl:2: invalid JSON"):
        read_jsonl(path)
    with pytest.raises(InputError, match="file not found"):
        read_json(tmp_path / "missing.json")


def test_atomic_write_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out.json"
    write_json(target, {"ok": True})
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("interrupted")
    assert json.loads(target.read_text()) == {"ok": True}  # the old complete file survives
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]  # no temp file left behind


def test_seeds_are_stable_and_distinct():
    assert derive_seed("a", 1) == derive_seed("a", 1)
    assert derive_seed("a", 1) != derive_seed("a", 2)
    s = request_seed(42, "first_attempt", "HumanEval/0", 0)
    assert 0 <= s < 2**31
    assert s != request_seed(42, "first_attempt", "HumanEval/0", 1)
    assert s != request_seed(123, "first_attempt", "HumanEval/0", 0)


@pytest.mark.parametrize("n", [2, 3, 10, 101])
def test_derangement_moves_everything(n):
    items = list(range(n))
    for seed in range(20):
        perm = derangement(items, seed)
        assert sorted(perm) == items
        assert all(p != i for i, p in enumerate(perm))
    assert derangement(items, 5) == derangement(items, 5)


def test_derangement_needs_two():
    with pytest.raises(ValueError):
        derangement([1], 0)


@pytest.mark.parametrize("umask", [0o022, 0o002, 0o077])
def test_written_files_honour_the_umask(tmp_path, umask):
    """Like any other tool's files: 0666 less the umask (mkstemp alone would give 0600)."""
    import stat
    import subprocess
    import sys

    code = ("import os, sys; os.umask(int(sys.argv[1], 8)); from pidistill.io import write_json, write_jsonl, write_text;"
            "d = sys.argv[2]; write_json(d + '/a.json', {}); write_jsonl(d + '/b.jsonl', [{}]); write_text(d + '/c.tex', 'x');"
            "open(d + '/plain', 'w').close()")
    subprocess.run([sys.executable, "-c", code, oct(umask), str(tmp_path)], check=True)
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in tmp_path.iterdir()}
    assert modes == {name: 0o666 & ~umask for name in ("a.json", "b.jsonl", "c.tex", "plain")}
