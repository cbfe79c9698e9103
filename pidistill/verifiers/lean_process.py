"""A kimina-lean-server that a verification job starts and stops itself (``verifier.lean_server``).

Instead of ``verifier.server_url`` (a server someone keeps running), the config may name an
installation that rule ``install_lean_server`` made (``pidistill.verifiers.lean_install``: a
kimina-lean-server checkout with its own Python environment, the Lean toolchain, the REPL and the
Mathlib of one miniF2F variant, all at pinned commits). Its ``installed.json`` says how to start the
server: the command, its working directory and the environment (the REPL binary and the Mathlib
project, the toolchain's ``bin`` on the PATH), with paths relative to the installation.

Each verification job then runs its own server on its node, for as long as its batch takes: on a
free port of 127.0.0.1, with as many REPLs as the job has threads (``verifier.workers``), its
output appended to ``server.log`` beside the job's log. The job waits until ``/health`` answers
(importing Mathlib into the first REPLs takes a while: ``startup_timeout_s``), checks its proofs
through the same client as a remote server (``pidistill.verifiers.lean_server``), and stops the
server's whole process group when the batch is done or fails. A server that exits or never answers
stops the job with an error and the end of the server's log; no proof is judged without it.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

INSTALLED = "installed.json"
STARTUP_TIMEOUT_S = 900.0  # a cold REPL imports Mathlib before the server answers


def installation_dir(spec: dict) -> Path:
    """Where the installation of ``verifier.lean_server`` (``{variant, prefix}``) is:
    ``<prefix>/<variant>``, the prefix relative to the working directory (the checkout)."""
    return Path(str(spec.get("prefix", ".envs/lean"))) / str(spec["variant"])


class ServerStartError(RuntimeError):
    """The server did not come up (the message carries the end of its log)."""


@dataclass(frozen=True)
class Installation:
    """What ``installed.json`` of an installation says, with its paths made absolute."""

    root: Path
    command: tuple[str, ...]
    cwd: Path
    env: dict[str, str]
    path: tuple[str, ...]  # directories put in front of PATH (the toolchain's bin)
    versions: dict

    @classmethod
    def read(cls, root: str | Path) -> "Installation":
        root = Path(root).resolve()
        where = root / INSTALLED
        try:
            spec = json.loads(where.read_text())
        except FileNotFoundError:
            raise FileNotFoundError(f"{where}: no Lean server installation there (rule install_lean_server "
                                    "makes one; config key verifier.lean_server names it)") from None
        except ValueError as exc:
            raise ValueError(f"{where}: not JSON ({exc})") from None
        missing = [k for k in ("command", "cwd", "env", "path", "versions") if k not in spec]
        if missing:
            raise ValueError(f"{where}: missing field(s) {', '.join(missing)}")

        def absolute(p: str) -> str:
            return str(p if os.path.isabs(p) else root / p)

        return cls(root=root, command=tuple(absolute(c) if "/" in c else c for c in spec["command"]),
                   cwd=Path(absolute(spec["cwd"])),
                   env={k: absolute(v) if k.endswith(("_PATH", "_DIR", "_HOME")) else str(v) for k, v in spec["env"].items()},
                   path=tuple(absolute(p) for p in spec["path"]), versions=dict(spec["versions"]))


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _healthy(url: str) -> bool:
    import urllib.request

    try:
        with urllib.request.urlopen(url + "/health", timeout=5) as resp:
            return json.loads(resp.read().decode()).get("status") == "ok"
    except Exception:  # not up yet: refused, reset, not JSON...
        return False


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


class ServerProcess:
    """``with ServerProcess(installation, repls=4, log=path) as url:`` a running server at ``url``."""

    def __init__(self, installation: Installation, *, repls: int = 1, repl_mem: str = "12G",
                 startup_timeout_s: float = STARTUP_TIMEOUT_S, log: str | Path = "server.log", poll_s: float = 0.5):
        self.installation = installation
        self.repls = max(1, int(repls))
        self.repl_mem = repl_mem
        self.startup_timeout_s = startup_timeout_s
        self.log = Path(log)
        self.poll_s = poll_s
        self.proc: subprocess.Popen | None = None
        self.url = ""

    def environment(self, port: int) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("LEAN_SERVER_")}
        env.update(self.installation.env)
        env.update(LEAN_SERVER_HOST="127.0.0.1", LEAN_SERVER_PORT=str(port), LEAN_SERVER_MAX_REPLS=str(self.repls),
                   LEAN_SERVER_MAX_REPL_MEM=self.repl_mem, LEAN_SERVER_LOG_LEVEL="INFO")
        if os.environ.get("LEAN_SERVER_API_KEY"):  # the client sends it; the server must expect it
            env["LEAN_SERVER_API_KEY"] = os.environ["LEAN_SERVER_API_KEY"]
        env["PATH"] = os.pathsep.join([*self.installation.path, env.get("PATH", os.defpath)])
        return env

    def __enter__(self) -> str:
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as log:
            log.write(f"--- starting {' '.join(self.installation.command)} on {self.url}\n".encode())
            log.flush()
            self.proc = subprocess.Popen(list(self.installation.command), cwd=self.installation.cwd,
                                         env=self.environment(port), stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + self.startup_timeout_s
        while not _healthy(self.url):
            code = self.proc.poll()
            if code is not None:
                self.proc = None
                raise ServerStartError(f"the Lean server of {self.installation.root} exited with status {code} "
                                       f"before answering; the end of {self.log}:\n{_tail(self.log)}")
            if time.monotonic() > deadline:
                self.stop()
                raise ServerStartError(f"the Lean server of {self.installation.root} did not answer {self.url}/health "
                                       f"within {self.startup_timeout_s:.0f} s; the end of {self.log}:\n{_tail(self.log)}")
            time.sleep(self.poll_s)
        return self.url

    def stop(self, grace_s: float = 10.0) -> None:
        """Stop the server and every process under it: SIGTERM to the server's group (the server closes
        its REPLs), then SIGKILL to whatever is left, REPLs included (each REPL runs in a session of
        its own, out of the server's process group)."""
        import psutil

        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        try:
            below = psutil.Process(proc.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            below = []
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=grace_s)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        for child in below:
            try:
                child.kill()
            except psutil.NoSuchProcess:
                pass
        psutil.wait_procs(below, timeout=5)

    def __exit__(self, *exc) -> None:
        self.stop()


class ManagedLeanServer:
    """The formal verifier's checker for ``verifier.lean_server``: one server per batch, started for
    it and stopped after it, checked through the kimina-lean-server client."""

    name = "lean-server"
    language = "lean4"

    def __init__(self, installation: str | Path, *, timeout_s: float, retries: int, repls: int,
                 log: str | Path | None = None, startup_timeout_s: float = STARTUP_TIMEOUT_S):
        self.installation = Installation.read(installation)
        self.timeout_s, self.retries, self.repls = timeout_s, retries, repls
        self.log = Path(log) if log else Path(os.environ.get("PIDISTILL_LEAN_SERVER_LOG", "lean-server.log"))
        self.startup_timeout_s = startup_timeout_s

    def check(self, snippets):
        from pidistill.verifiers.lean_server import LeanServer

        if not snippets:
            return []
        with ServerProcess(self.installation, repls=self.repls, log=self.log,
                           startup_timeout_s=self.startup_timeout_s) as url:
            return LeanServer(url, timeout_s=self.timeout_s, retries=self.retries).check(snippets)
