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


class OrdinaryUser:
    def __init__(self):
        self.uid = self.gid = _free_id()
        self.base = Path(tempfile.mkdtemp(prefix=f"pidistill-user{self.uid}-"))
        os.chmod(self.base, 0o755)
        self.home = self.base / "home"  # the user's own files: only theirs
        self.home.mkdir(mode=0o700)
        os.chown(self.home, self.uid, self.gid)
        site = sorted({sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]})
        self.env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": str(self.home), "TMPDIR": str(self.home),
                    "PYTHONPATH": os.pathsep.join([str(REPO), *site]), "PYTHONDONTWRITEBYTECODE": "1"}
        self.python = self._python()
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

    def _python(self) -> str:
        version = f"python{sys.version_info.major}.{sys.version_info.minor}"
        for python in (sys.executable, f"/usr/bin/{version}", f"/usr/local/bin/{version}"):
            if os.path.exists(python) and self._runs(python):
                return python
        raise RuntimeError(f"uid {self.uid} can run neither {sys.executable} nor a system {version} with this checkout")

    def command(self, argv: list[str]) -> list[str]:
        return ["setpriv", f"--reuid={self.uid}", f"--regid={self.gid}", "--clear-groups", "--", *argv]

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
