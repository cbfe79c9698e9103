"""Install a kimina-lean-server with the Lean toolchain, REPL and Mathlib of one miniF2F variant,
each at the version pinned in ``envs/lean-server.toml``, into a directory that verification jobs
start the server from (``pidistill.verifiers.lean_process``).

    python -m pidistill.verifiers.lean_install --variant minif2f-lean4 --prefix .envs/lean/minif2f-lean4

Steps, each skipped when a previous run finished it (the installation is resumable):

1. elan, the Lean toolchain manager, at its pinned release (the release archive itself, not
   ``elan-init.sh``, which always fetches the newest), into ``<prefix>/elan`` (``ELAN_HOME``);
2. Mathlib at its pinned commit or tag (``git fetch`` of exactly that revision), and the toolchain
   its ``lean-toolchain`` names: the statements were written against that Mathlib, so the
   toolchain follows it, not the other way round;
3. Mathlib's compiled library: ``lake exe cache get`` (Mathlib's prebuilt files; a fork without
   them, or a node without the network, leaves it to the build), then ``lake build``;
4. the REPL: its own checkout (whose ``lean-toolchain`` must be Mathlib's) built with ``lake build``,
   or, where the Mathlib project requires it as a Lake package (DeepSeek-Prover-V1.5's fork does),
   ``lake build repl`` inside Mathlib;
5. kimina-lean-server at its pinned commit, with a Python environment of its own (its
   ``requirements.txt``);
6. ``installed.json``, written last and atomically: how to start the server (command, working
   directory, environment) and every version installed, commits resolved.

``run`` and ``fetch_url`` are parameters so that the tests can drive the installer against local
repositories; a failing command stops the installation with its output (nothing is marked done).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tarfile
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

# the file verification jobs read (pidistill.verifiers.lean_process.INSTALLED; not imported from there,
# so that the installer's code is not the verifier's code and an edit of one does not rerun the other)
INSTALLED = "installed.json"
PINS = Path(__file__).resolve().parents[2] / "envs" / "lean-server.toml"
PACKAGED = "packaged"  # repl: the Mathlib project requires the REPL as a Lake package


class InstallError(RuntimeError):
    """A step failed (the message says which and shows the end of its output)."""


@dataclass(frozen=True)
class GitPin:
    repo: str
    rev: str  # a commit, or a release tag

    @classmethod
    def parse(cls, spec: dict, where: str) -> "GitPin":
        if not isinstance(spec, dict) or not spec.get("repo") or not (spec.get("commit") or spec.get("tag")):
            raise ValueError(f"{where}: needs repo and commit (or tag)")
        return cls(str(spec["repo"]), str(spec.get("commit") or spec["tag"]))


@dataclass(frozen=True)
class LeanPins:
    """One installation: the pins shared by every variant and the variant's Mathlib and REPL."""

    variant: str
    elan: str  # release tag of leanprover/elan
    elan_url: str  # where the release archive is, {version} and {target} filled in
    server: GitPin
    mathlib: GitPin
    repl: GitPin | None  # None: packaged with the Mathlib project
    extra: dict = field(default_factory=dict)

    @classmethod
    def load(cls, variant: str, path: str | Path = PINS) -> "LeanPins":
        import tomllib

        spec = tomllib.loads(Path(path).read_text())
        variants = spec.get("variants", {})
        if variant not in variants:
            raise ValueError(f"{path}: no variant {variant!r} (known: {', '.join(sorted(variants))})")
        v = variants[variant]
        repl = v.get("repl", PACKAGED)
        return cls(variant=variant, elan=str(spec["elan"]["version"]), elan_url=str(spec["elan"]["url"]),
                   server=GitPin.parse(spec["server"], f"{path}: server"),
                   mathlib=GitPin.parse(v.get("mathlib"), f"{path}: variants.{variant}.mathlib"),
                   repl=None if repl == PACKAGED else GitPin.parse(repl, f"{path}: variants.{variant}.repl"))


Run = Callable[..., subprocess.CompletedProcess]


class Installer:
    def __init__(self, pins: LeanPins, prefix: str | Path, *, run: Run = subprocess.run,
                 fetch_url: Callable[[str, Path], None] | None = None, python: str = sys.executable,
                 log: Callable[[str], None] = print):
        self.pins = pins
        self.prefix = Path(prefix).resolve()
        self.run_cmd = run
        self.fetch_url = fetch_url or _download
        self.python = python
        self.log = log
        self.elan_home = self.prefix / "elan"
        self.mathlib = self.prefix / "mathlib4"
        self.repl_dir = self.prefix / "repl"
        self.server = self.prefix / "kimina-lean-server"
        self.venv = self.prefix / "server-venv"

    # ---- helpers ---------------------------------------------------------------------------

    def env(self) -> dict[str, str]:
        return {**os.environ, "ELAN_HOME": str(self.elan_home),
                "PATH": os.pathsep.join([str(self.elan_home / "bin"), os.environ.get("PATH", os.defpath)])}

    def run(self, argv: list[str], cwd: Path | None = None, check: bool = True) -> subprocess.CompletedProcess:
        self.log(f"$ {' '.join(argv)}" + (f"   (in {cwd})" if cwd else ""))
        done = self.run_cmd(argv, cwd=cwd, env=self.env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
        if done.stdout:
            self.log(done.stdout.rstrip())
        if check and done.returncode != 0:
            tail = "\n".join((done.stdout or "").splitlines()[-20:])
            raise InstallError(f"`{' '.join(argv)}` failed with status {done.returncode}:\n{tail}")
        return done

    def marker(self, name: str) -> Path:
        return self.prefix / ".done" / name

    def done(self, name: str, value: str = "") -> bool:
        m = self.marker(name)
        return m.exists() and m.read_text() == value

    def mark(self, name: str, value: str = "") -> None:
        m = self.marker(name)
        m.parent.mkdir(parents=True, exist_ok=True)
        m.write_text(value)

    def checkout(self, pin: GitPin, dest: Path) -> str:
        """``dest`` at exactly ``pin.rev`` (a fetch of that revision alone); returns the commit."""
        if not (dest / ".git").exists():
            dest.mkdir(parents=True, exist_ok=True)
            self.run(["git", "init", "-q"], cwd=dest)
            self.run(["git", "remote", "add", "origin", pin.repo], cwd=dest)
        if not self.done(f"checkout-{dest.name}", f"{pin.repo} {pin.rev}"):
            self.run(["git", "fetch", "-q", "--depth", "1", "origin", pin.rev], cwd=dest)
            self.run(["git", "checkout", "-q", "--detach", "FETCH_HEAD"], cwd=dest)
            self.mark(f"checkout-{dest.name}", f"{pin.repo} {pin.rev}")
        return self.run(["git", "rev-parse", "HEAD"], cwd=dest).stdout.strip()

    # ---- the steps -------------------------------------------------------------------------

    def install_elan(self) -> None:
        if self.done("elan", self.pins.elan) and (self.elan_home / "bin" / "elan").exists():
            return
        target = f"{platform.machine()}-unknown-linux-gnu"
        url = self.pins.elan_url.format(version=self.pins.elan, target=target)
        work = self.prefix / "elan-download"
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        archive = work / "elan.tar.gz"
        self.log(f"downloading {url}")
        self.fetch_url(url, archive)
        with tarfile.open(archive) as tar:
            _safe_extract(tar, work, url)
        init = work / "elan-init"
        if not init.exists():
            raise InstallError(f"{url}: the archive has no elan-init")
        init.chmod(0o755)
        self.run([str(init), "-y", "--no-modify-path", "--default-toolchain", "none"])
        shutil.rmtree(work, ignore_errors=True)
        self.mark("elan", self.pins.elan)

    def toolchain(self, project: Path) -> str:
        path = project / "lean-toolchain"
        if not path.exists():
            raise InstallError(f"{path}: missing (a Lean project names its toolchain there)")
        return path.read_text().strip()

    def install_mathlib(self) -> tuple[str, str]:
        commit = self.checkout(self.pins.mathlib, self.mathlib)
        toolchain = self.toolchain(self.mathlib)
        if not self.done("toolchain", toolchain):
            self.run(["elan", "toolchain", "install", toolchain])
            self.mark("toolchain", toolchain)
        if not self.done("mathlib-build", commit):
            got = self.run(["lake", "exe", "cache", "get"], cwd=self.mathlib, check=False)
            if got.returncode != 0:
                self.log("no prebuilt Mathlib for this revision (or no network here): lake build compiles it")
            self.run(["lake", "build"], cwd=self.mathlib)
            self.mark("mathlib-build", commit)
        return commit, toolchain

    def install_repl(self, toolchain: str) -> tuple[Path, str]:
        """The REPL binary and the REPL's commit."""
        if self.pins.repl is None:
            if not self.done("repl-build", toolchain):
                self.run(["lake", "build", "repl"], cwd=self.mathlib)
                self.mark("repl-build", toolchain)
            binary = self.mathlib / ".lake" / "packages" / "REPL" / ".lake" / "build" / "bin" / "repl"
            manifest = json.loads((self.mathlib / "lake-manifest.json").read_text())
            revs = [p.get("rev", "") for p in manifest.get("packages", []) if p.get("name") == "REPL"]
            commit = revs[0] if revs else "?"
        else:
            commit = self.checkout(self.pins.repl, self.repl_dir)
            own = self.toolchain(self.repl_dir)
            if own != toolchain:
                raise InstallError(f"the REPL at {self.pins.repl.rev} is for {own}, Mathlib's toolchain is {toolchain}: "
                                   f"pin the REPL release of that toolchain in {PINS.name}")
            if not self.done("repl-build", commit):
                self.run(["lake", "build"], cwd=self.repl_dir)
                self.mark("repl-build", commit)
            binary = self.repl_dir / ".lake" / "build" / "bin" / "repl"
        if not binary.exists():
            raise InstallError(f"the REPL build left no binary at {binary}")
        return binary, commit

    def install_server(self) -> str:
        commit = self.checkout(self.pins.server, self.server)
        if not self.done("server-venv", commit):
            if not (self.venv / "bin" / "python").exists():
                self.run([self.python, "-m", "venv", str(self.venv)])
            self.run([str(self.venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "-r",
                      str(self.server / "requirements.txt")])
            self.mark("server-venv", commit)
        return commit

    def install(self) -> dict:
        self.prefix.mkdir(parents=True, exist_ok=True)
        self.install_elan()
        mathlib, toolchain = self.install_mathlib()
        repl, repl_commit = self.install_repl(toolchain)
        server = self.install_server()
        rel = lambda p: os.path.relpath(p, self.prefix)  # noqa: E731
        spec = {
            "command": [rel(self.venv / "bin" / "python"), "-m", "server"],
            "cwd": rel(self.server),
            "env": {"ELAN_HOME": rel(self.elan_home), "LEAN_SERVER_REPL_PATH": rel(repl),
                    "LEAN_SERVER_PROJECT_DIR": rel(self.mathlib), "LEAN_SERVER_LEAN_VERSION": toolchain.split(":")[-1]},
            "path": [rel(self.elan_home / "bin")],
            "versions": {"variant": self.pins.variant, "elan": self.pins.elan, "toolchain": toolchain,
                         "mathlib": {"repo": self.pins.mathlib.repo, "rev": self.pins.mathlib.rev, "commit": mathlib},
                         "repl": ({"packaged_with": "mathlib", "commit": repl_commit} if self.pins.repl is None else
                                  {"repo": self.pins.repl.repo, "rev": self.pins.repl.rev, "commit": repl_commit}),
                         "server": {"repo": self.pins.server.repo, "rev": self.pins.server.rev, "commit": server}},
        }
        tmp = self.prefix / f".{INSTALLED}.tmp"
        tmp.write_text(json.dumps(spec, indent=2, sort_keys=True) + "\n")
        os.replace(tmp, self.prefix / INSTALLED)
        self.log(f"installed: {self.prefix / INSTALLED}")
        return spec


def _safe_extract(tar: tarfile.TarFile, dest: Path, url: str) -> None:
    """Extract regular files and directories that stay inside ``dest`` (tarfile's ``filter="data"``
    is not in every 3.11 release)."""
    root = dest.resolve()
    for member in tar.getmembers():
        target = (root / member.name).resolve()
        if not (member.isfile() or member.isdir()) or (target != root and root not in target.parents):
            raise InstallError(f"{url}: unexpected archive member {member.name!r}")
    tar.extractall(root)


def _download(url: str, dest: Path) -> None:
    with urllib.request.urlopen(url, timeout=300) as resp, open(dest, "wb") as out:
        shutil.copyfileobj(resp, out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variant", required=True, help="a variant of envs/lean-server.toml")
    parser.add_argument("--prefix", required=True, help="the installation directory (on the shared filesystem)")
    parser.add_argument("--pins", default=str(PINS))
    args = parser.parse_args(argv)
    try:
        Installer(LeanPins.load(args.variant, args.pins), args.prefix).install()
    except (InstallError, ValueError, OSError) as exc:
        print(f"lean_install: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
