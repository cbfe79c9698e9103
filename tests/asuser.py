"""Run the code verifier as an ordinary user, the way it runs on a cluster node (tests and the bench).

``OrdinaryUser()`` (needs root) picks a uid and gid that no account, group or process uses, gives
them a home of their own under /tmp (the user's files: 0700, owned by them), and starts this file
as a small server under ``setpriv --reuid --regid --clear-groups``: it reads jobs as JSON lines and
answers with the verdicts of ``pidistill.verifiers.code.verify_batch``. The interpreter is this
one where that user may run it, else the system's python3 of the same version, with this checkout
and this environment's site-packages on ``PYTHONPATH`` (both must be readable by everyone).
"""

from __future__ import annotations

import grp
import json
import os
import pwd
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _free_id() -> int:
    used = {int(p.stat().st_uid) for p in Path("/proc").iterdir() if p.name.isdigit() and p.exists()}
    for n in range(61000, 62000):
        try:
            pwd.getpwuid(n)
            continue
        except KeyError:
            pass
        try:
            grp.getgrgid(n)
            continue
        except KeyError:
            pass
        if n not in used:
            return n
    raise RuntimeError("no free uid in 61000-61999")


def unavailable_reason() -> str | None:
    if os.geteuid() != 0:
        return "making an ordinary user needs root"
    if shutil.which("setpriv") is None:
        return "setpriv (util-linux) is not installed"
    return None


def _closed_ancestor(path: str) -> str | None:
    """The highest directory on ``path`` that others may not enter (/root for a pyenv under it)."""
    parts = Path(path).parts
    for i in range(2, len(parts)):
        d = os.path.join(*parts[:i])
        if not os.stat(d).st_mode & 0o001:
            return d
    return None


class OrdinaryUser:
    """``same_python=True``: this very interpreter and environment, where others cannot reach them
    (a pyenv under /root): the user's commands then run in a private mount namespace in which the
    closed directory is an empty tmpfs holding only a read-only bind of the installation."""

    def __init__(self, same_python: bool = False):
        self.uid = self.gid = _free_id()
        self.reveal: list[str] = []
        if same_python:
            closed = _closed_ancestor(os.path.realpath(sys.base_prefix))
            if closed is not None:
                top = os.path.join(closed, Path(os.path.realpath(sys.base_prefix)).relative_to(closed).parts[0])
                self.reveal = [closed, top]
        self.base = Path(tempfile.mkdtemp(prefix=f"pidistill-user{self.uid}-"))
        os.chmod(self.base, 0o755)
        self.home = self.base / "home"  # the user's own files: only theirs
        self.home.mkdir(mode=0o700)
        os.chown(self.home, self.uid, self.gid)
        site = sorted({sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]})
        self.env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": str(self.home), "TMPDIR": str(self.home),
                    "PYTHONPATH": os.pathsep.join([str(REPO), *site]), "PYTHONDONTWRITEBYTECODE": "1"}
        self.python = self._python(same_python)
        self._server: subprocess.Popen | None = None

    @property
    def server(self) -> subprocess.Popen:
        """The verifier run by this user (started on first use)."""
        if self._server is None:
            self._server = self.spawn([self.python, str(Path(__file__).resolve())], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        return self._server

    def _runs(self, python: str) -> bool:
        # the probe starts the interpreter again from inside, as the verifier starts its zygotes
        # (setpriv's own exec may still reach files the user cannot)
        code = ("import subprocess, sys, tqdm, pidistill.verifiers.code; "
                "subprocess.run([sys.executable, '-S', '-c', 'import encodings'], check=True)")
        probe = self.command([python, "-c", code])
        return subprocess.run(probe, env=self.env, cwd=self.home, capture_output=True).returncode == 0

    def _python(self, same: bool) -> str:
        version = f"python{sys.version_info.major}.{sys.version_info.minor}"
        choices = [sys.executable] if same else [sys.executable, f"/usr/bin/{version}", f"/usr/local/bin/{version}"]
        for python in choices:
            if os.path.exists(python) and self._runs(python):
                return python
        raise RuntimeError(f"uid {self.uid} can run none of {choices} with this checkout")

    def command(self, argv: list[str]) -> list[str]:
        drop = ["setpriv", f"--reuid={self.uid}", f"--regid={self.gid}", "--clear-groups", "--"]
        if not self.reveal:
            return [*drop, *argv]
        closed, top = self.reveal
        keep = str(self.base / "keep")
        steps = (f"mkdir -p {keep} && mount --bind {top} {keep} && mount -o remount,bind,ro {keep} && "
                 f"mount -t tmpfs -o mode=755 pidistill {closed} && mkdir -p {top} && mount --move {keep} {top} && "
                 'exec "$@"')
        return ["unshare", "--mount", "--propagation", "private", "sh", "-c", steps, "sh", *drop, *argv]

    def spawn(self, argv: list[str], **kw) -> subprocess.Popen:
        return subprocess.Popen(self.command(argv), env=self.env, cwd=self.home, **kw)

    def verify(self, items, settings: dict) -> list[dict]:
        """Verdict dicts (``Verdict.to_dict()``) for (Problem, completion) pairs."""
        line = json.dumps({"items": [[p.to_dict(), c] for p, c in items], "settings": settings})
        self.server.stdin.write(line.encode() + b"\n")
        self.server.stdin.flush()
        answer = json.loads(self.server.stdout.readline() or "null")
        if not isinstance(answer, dict) or "verdicts" not in answer:
            raise RuntimeError(f"the verifier run as uid {self.uid} failed: {answer}")
        return answer["verdicts"]

    def processes(self) -> set[int]:
        """Pids of every process that runs as this user."""
        pids = set()
        for p in Path("/proc").iterdir():
            if p.name.isdigit():
                try:
                    if p.stat().st_uid == self.uid:
                        pids.add(int(p.name))
                except OSError:
                    pass
        return pids

    def close(self) -> None:
        if self._server is not None and self._server.poll() is None:
            self._server.stdin.close()
            try:
                self._server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._server.kill()
        for pid in self.processes():
            try:
                os.kill(pid, 9)
            except OSError:
                pass
        shutil.rmtree(self.base, ignore_errors=True)


def _serve() -> None:
    """As the user: one JSON line of jobs in, one line of verdicts out, until stdin closes."""
    from pidistill.problems import Problem
    from pidistill.verifiers import VerifierSettings
    from pidistill.verifiers.code import verify_batch

    for line in sys.stdin:
        try:
            job = json.loads(line)
            settings = VerifierSettings(progress=False)
            for k, v in job["settings"].items():
                setattr(settings, k, v)
            items = [(Problem.from_dict(p), c) for p, c in job["items"]]
            answer = {"verdicts": [v.to_dict() for v in verify_batch(items, settings)]}
        except Exception as exc:  # noqa: BLE001 - the test side raises it
            answer = {"error": f"{type(exc).__name__}: {exc}"}
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    _serve()


def namespaces_unavailable() -> str | None:
    """Why the sandbox's namespaces mode cannot start here (None where it can)."""
    from pidistill.verifiers.sandbox import IsolationUnavailable, Pool

    try:
        Pool(1).close()
    except IsolationUnavailable as exc:
        return str(exc)
    return None
