"""The Lean checker the pipeline installs and starts itself (verifier.lean_server): the installer
(pidistill/verifiers/lean_install.py) against local git repositories, a stand-in elan release and a
stand-in lake (no Lean toolchain or Mathlib can be installed on these machines); the server process a
verification job starts from an installation (pidistill/verifiers/lean_process.py), here the
stand-in server program tests/lean_standin_server.py; and the two together, verdicts included."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import psutil
import pytest

from pidistill.domains.minif2f import formal_problem
from pidistill.verifiers import VerifierSettings, verify_samples
from pidistill.verifiers.formal import checker_for, verify_batch
from pidistill.verifiers.lean_install import PINS, GitPin, Installer, InstallError, LeanPins
from pidistill.verifiers.lean_process import (INSTALLED, Installation, ManagedLeanServer, ServerProcess,
                                              ServerStartError, installation_dir)

STANDIN = Path(__file__).with_name("lean_standin_server.py")
HEADER = "import Mathlib\n\n"
STATEMENT = "theorem two_add (n : ℕ) (h : n = 2) :\n    n + n = 4 := by"
PROBLEM = formal_problem("two_add", HEADER, STATEMENT, split="test", variant="test")
TOOLCHAIN = "leanprover/lean4:v4.24.0"

FAKE_ELAN = """#!/bin/sh
case "$1 $2" in
  "toolchain install") echo "$3" >> "$ELAN_HOME/toolchains.txt" ;;
  *) echo "elan: $*" ;;
esac
"""
# what the stand-in lake does: no prebuilt Mathlib (cache get fails), `lake build` leaves a REPL binary in
# a REPL checkout, `lake build repl` one in the Lake package of the Mathlib project
FAKE_LAKE = """#!/bin/sh
echo "lake $* ($(basename "$PWD"))" >> "$ELAN_HOME/lake.log"
case "$*" in
  "exe cache get") echo "no cache for this revision"; exit 1 ;;
  "build") if [ -f REPL.lean ]; then mkdir -p .lake/build/bin && touch .lake/build/bin/repl; fi ;;
  "build repl") mkdir -p .lake/packages/REPL/.lake/build/bin && touch .lake/packages/REPL/.lake/build/bin/repl ;;
  *) echo "lake: unknown $*"; exit 2 ;;
esac
"""
FAKE_ELAN_INIT = """#!/bin/sh
mkdir -p "$ELAN_HOME/bin"
cat > "$ELAN_HOME/bin/elan" <<'X'
{elan}X
cat > "$ELAN_HOME/bin/lake" <<'X'
{lake}X
chmod +x "$ELAN_HOME/bin/elan" "$ELAN_HOME/bin/lake"
echo "elan-init $*"
"""


def _git(cwd, *args):
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@x", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@x"}
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True).stdout.strip()


def make_repo(path: Path, files: dict[str, str]) -> str:
    """A git repository with one commit of ``files``; returns the commit."""
    path.mkdir(parents=True)
    _git(path, "init", "-q")
    for name, text in files.items():
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).write_text(text)
    _git(path, "add", "-A")
    _git(path, "commit", "-q", "-m", "pinned")
    return _git(path, "rev-parse", "HEAD")


@pytest.fixture
def sources(tmp_path):
    """Local stand-ins for what the installer downloads: Mathlib (with the REPL as a Lake package, as
    DeepSeek's fork), a REPL repository, kimina-lean-server (the stand-in program as its `server`
    module, no requirements) and an elan release archive."""
    src = tmp_path / "src"
    manifest = json.dumps({"packages": [{"name": "REPL", "rev": "3334a97b", "url": "https://example/repl"}]})
    mathlib = make_repo(src / "mathlib4", {"lean-toolchain": TOOLCHAIN + "\n", "lake-manifest.json": manifest,
                                           "Mathlib.lean": "-- Mathlib\n"})
    repl = make_repo(src / "repl", {"lean-toolchain": TOOLCHAIN + "\n", "REPL.lean": "-- the REPL\n"})
    other_repl = make_repo(src / "repl-old", {"lean-toolchain": "leanprover/lean4:v4.9.0\n", "REPL.lean": "--\n"})
    server = make_repo(src / "kimina", {"server/__init__.py": "", "server/__main__.py": STANDIN.read_text(),
                                        "requirements.txt": ""})
    archive = src / "elan.tar.gz"
    init = FAKE_ELAN_INIT.format(elan=FAKE_ELAN, lake=FAKE_LAKE).encode()
    with tarfile.open(archive, "w:gz") as tar:
        info = tarfile.TarInfo("elan-init")
        info.size, info.mode = len(init), 0o755
        tar.addfile(info, io.BytesIO(init))
    fetched = []

    def fetch(url, dest):
        fetched.append(url)
        shutil.copy(archive, dest)

    return {"mathlib": GitPin(str(src / "mathlib4"), mathlib), "repl": GitPin(str(src / "repl"), repl),
            "other_repl": GitPin(str(src / "repl-old"), other_repl), "server": GitPin(str(src / "kimina"), server),
            "fetch": fetch, "fetched": fetched}


def _pins(sources, repl="repl"):
    return LeanPins(variant="minif2f-test", elan="v4.2.3", elan_url="https://example/elan/{version}/elan-{target}.tar.gz",
                    server=sources["server"], mathlib=sources["mathlib"], repl=sources.get(repl) if repl else None)


def _installer(sources, prefix, repl="repl", log=None):
    return Installer(_pins(sources, repl), prefix, fetch_url=sources["fetch"], log=(log or (lambda line: None)))


def test_install_then_a_verification_job_starts_checks_and_stops_its_server(sources, tmp_path, monkeypatch):
    prefix = tmp_path / "lean" / "minif2f-test"
    spec = _installer(sources, prefix).install()
    assert sources["fetched"] == [f"https://example/elan/v4.2.3/elan-{os.uname().machine}-unknown-linux-gnu.tar.gz"]
    versions = spec["versions"]
    assert versions["toolchain"] == TOOLCHAIN and versions["mathlib"]["commit"] == sources["mathlib"].rev
    assert versions["repl"]["commit"] == sources["repl"].rev and versions["server"]["commit"] == sources["server"].rev
    assert (prefix / "elan" / "toolchains.txt").read_text() == TOOLCHAIN + "\n"  # the toolchain Mathlib names
    lake = (prefix / "elan" / "lake.log").read_text().splitlines()
    assert lake == ["lake exe cache get (mathlib4)", "lake build (mathlib4)", "lake build (repl)"]
    assert json.loads((prefix / INSTALLED).read_text()) == spec
    from pidistill.verifiers import lean_install
    assert lean_install.INSTALLED == INSTALLED  # what the installer writes is what the jobs read

    # a verification job (verifier.lean_server) starts the installed server, checks, stops it
    record = tmp_path / "seen.json"
    monkeypatch.setenv("STANDIN_RECORD", str(record))
    settings = VerifierSettings(checker="lean-server", workers=2, timeout_s=5, retries=0,
                                lean_server={"variant": "minif2f-test", "prefix": str(tmp_path / "lean")})
    checker = checker_for(settings)
    assert isinstance(checker, ManagedLeanServer)
    checker.log = tmp_path / "verify.server.log"
    verdicts = verify_batch([(PROBLEM, "  subst h\n  omega"), (PROBLEM, "  linarith"), (PROBLEM, "  sorry")],
                            settings, checker=checker)
    assert [(v.passed, v.reason) for v in verdicts] == [(True, "ok"), (False, "checker_error"), (False, "unsound")]
    seen = json.loads(record.read_text())
    assert seen["env"]["LEAN_SERVER_REPL_PATH"] == str(prefix / "repl" / ".lake" / "build" / "bin" / "repl")
    assert seen["env"]["LEAN_SERVER_PROJECT_DIR"] == str(prefix / "mathlib4")
    assert seen["env"]["LEAN_SERVER_MAX_REPLS"] == "2" and seen["env"]["LEAN_SERVER_HOST"] == "127.0.0.1"
    assert seen["env"]["ELAN_HOME"] == str(prefix / "elan") and seen["path"][0] == str(prefix / "elan" / "bin")
    assert seen["cwd"] == str(prefix / "kimina-lean-server")
    # the server and its REPLs (each in a session of its own) are gone once the batch is judged
    assert not any(psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE
                   for p in [seen["pid"], *seen["repls"]])
    assert "starting" in (tmp_path / "verify.server.log").read_text()


def test_install_resumes_and_a_finished_installation_is_left_alone(sources, tmp_path):
    prefix = tmp_path / "inst"
    lines = []
    first = _installer(sources, prefix, log=lines.append).install()
    before = (prefix / "elan" / "lake.log").read_text()
    lines.clear()
    assert _installer(sources, prefix, log=lines.append).install() == first
    assert (prefix / "elan" / "lake.log").read_text() == before  # nothing rebuilt
    assert not [line for line in lines if line.startswith(("$ git fetch", "$ lake", "$ elan"))]


def test_repl_packaged_with_mathlib_and_a_repl_for_another_toolchain(sources, tmp_path):
    spec = _installer(sources, tmp_path / "packaged", repl=None).install()
    assert spec["env"]["LEAN_SERVER_REPL_PATH"] == "mathlib4/.lake/packages/REPL/.lake/build/bin/repl"
    assert spec["versions"]["repl"] == {"packaged_with": "mathlib", "commit": "3334a97b"}
    with pytest.raises(InstallError, match=r"the REPL at \w+ is for leanprover/lean4:v4.9.0, Mathlib's toolchain is "
                                           r"leanprover/lean4:v4.24.0"):
        _installer(sources, tmp_path / "mismatch", repl="other_repl").install()
    assert not (tmp_path / "mismatch" / INSTALLED).exists()


def test_a_failing_step_stops_with_its_output_and_marks_nothing(sources, tmp_path):
    bad = GitPin(sources["mathlib"].repo, "0" * 40)  # no such commit
    pins = LeanPins("minif2f-test", "v4.2.3", "https://example/{version}/{target}", sources["server"], bad, None)
    with pytest.raises(InstallError, match=r"`git fetch -q --depth 1 origin 0{40}` failed"):
        Installer(pins, tmp_path / "p", fetch_url=sources["fetch"], log=lambda line: None).install()
    assert not (tmp_path / "p" / INSTALLED).exists() and not (tmp_path / "p" / ".done" / "checkout-mathlib4").exists()


def test_the_pinned_variants_load():
    for variant in ("minif2f-deepseek", "minif2f-lean4"):
        pins = LeanPins.load(variant)
        assert pins.server.repo.endswith("kimina-lean-server") and len(pins.server.rev) == 40
    assert LeanPins.load("minif2f-deepseek").repl is None  # the fork's lakefile requires the REPL
    assert LeanPins.load("minif2f-lean4").repl.rev == "8fff8552292860d349b459d6a811e6915671dc0d"
    with pytest.raises(ValueError, match=r"no variant 'lean3'"):
        LeanPins.load("lean3", PINS)
    assert installation_dir({"variant": "minif2f-lean4"}) == Path(".envs/lean/minif2f-lean4")


def _installation(tmp_path, mode):
    root = tmp_path / mode
    root.mkdir()
    (root / INSTALLED).write_text(json.dumps({"command": [sys.executable, str(STANDIN)], "cwd": ".", "env": {},
                                              "path": [], "versions": {}}))
    return Installation.read(root)


def test_a_server_that_exits_or_never_answers_stops_the_job(tmp_path, monkeypatch):
    monkeypatch.setenv("STANDIN_MODE", "exit")
    with pytest.raises(ServerStartError, match=r"exited with status 3 before answering(.|\n)*cannot find the REPL"):
        with ServerProcess(_installation(tmp_path, "exit"), log=tmp_path / "exit.log"):
            pass
    monkeypatch.setenv("STANDIN_MODE", "mute")
    mute = ServerProcess(_installation(tmp_path, "mute"), log=tmp_path / "mute.log", startup_timeout_s=2, poll_s=0.2)
    with pytest.raises(ServerStartError, match=r"did not answer http://127.0.0.1:\d+/health within 2 s"):
        with mute:
            pass
    assert mute.proc is None  # stopped
    monkeypatch.delenv("STANDIN_MODE")
    with pytest.raises(FileNotFoundError, match=r"no Lean server installation there .*install_lean_server"):
        Installation.read(tmp_path / "nowhere")


def test_no_proofs_no_server(tmp_path, monkeypatch):
    monkeypatch.setenv("STANDIN_MODE", "exit")  # a server that would fail if it were started
    checker = ManagedLeanServer(_installation(tmp_path, "exit").root, timeout_s=5, retries=0, repls=1)
    assert checker.check([]) == []  # a batch of sorries and changed statements starts nothing
    rows = verify_samples({"two_add": PROBLEM}, [{"id": "two_add", "completion": "  sorry"}],
                          VerifierSettings(checker="lean-server", lean_server={"variant": "exit", "prefix": str(tmp_path)}))
    assert rows[0]["reason"] == "unsound"
