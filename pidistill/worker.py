"""The warm worker: local runs start each rule script in a process that has already imported torch.

A heavy job's first seconds go to imports (torch, transformers, PEFT, TRL: 4.5-7.5 s on a 2-core
machine, bench/bench_startup.py), and the demo has some 150 such jobs. In a local run (``snakemake
--cores N``, not on a cluster) the Snakefile's ``onstart`` starts one server per run that imports
them once (``PRELOAD``) and waits on a Unix socket in a private directory. Snakemake still runs every
job as before (``python .snakemake/scripts/tmpXXXX.<script>.py``, same DAG, same job boxes, same
logs); that process, the *client*, reaches ``scripts/_repo.py`` first thing, which hands the job to
the server: the server forks, and the child runs the same file from its first line (Snakemake's
preamble included) with the client's command line, working directory, environment and standard
streams (passed over the socket). The client waits and exits with the child's status. The job's log
gets one line at its end saying it ran in the warm worker, with the child's peak memory and CPU
time, because Snakemake's ``benchmark:`` measures the client's process tree: its wall time ``s`` is
the job's, its memory and CPU columns are the client's (small) ones.

What keeps a job's result the same as in a fresh process (tests/test_pipeline_e2e.py rebuilds with
the worker off and compares every data file byte for byte):
- the server imports third-party packages only, never ``pidistill`` or a rule script, so a job runs
  the code on disk when it starts, as a fresh process would;
- the server runs no computation and has no Python threads, so the child starts with torch's thread
  pools unmade; every job seeds its own generators, and the child reseeds ``random`` and numpy's
  global generator from the OS as a fresh interpreter would;
- the server declines (the job then runs in its own process, as without a worker) a client of another
  interpreter (a rule in the vllm environment) or another user, or whose environment differs from
  the server's in anything but the variables Snakemake sets per job (thread counts, TMPDIR).

What keeps interruptions safe: the child is the leader of its own process group and dies with the
server (``PR_SET_PDEATHSIG``); when the client goes away before the child has finished (Snakemake
cancels the job, or it is killed with -9), the server kills the child's whole group at once, so no
output is written after Snakemake has marked the job failed. A client that cannot reach the server
(not started yet, or gone) runs the job itself.

Linux only (``os.pidfd_open``, ``SO_PEERCRED``, ``prctl``); elsewhere every job runs in its own process.
Config key ``warm_worker: false`` turns it off. Standard library only: the client side runs in every
rule script's first import.
"""

from __future__ import annotations

import argparse
import ctypes
import importlib
import json
import os
import selectors
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

SOCKET_ENV = "PIDISTILL_WARM_WORKER"  # the server's socket, in the driver's (so every local job's) environment
CHILD_ENV = "PIDISTILL_IN_WARM_WORKER"  # set in the child: its own _repo import must not hand the job on again

# Variables Snakemake sets for each job (snakemake/shell.py: the job's threads and tmpdir resource),
# which may differ from the server's; the worker's own; the shell's. Everything else must match (the
# child then runs with the client's environment).
PER_JOB_ENV = frozenset({
    "OMP_NUM_THREADS", "GOTO_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS", "TMPDIR", "TMP", "TEMPDIR", "TEMP",
    SOCKET_ENV, CHILD_ENV,
    "_", "SHLVL", "PWD", "OLDPWD",  # the shell's bookkeeping (Snakemake runs a job through bash)
})
# The server imports with BLAS and OpenMP at one thread, so it starts no pools of its own; a job sets
# torch's threads from its rule (torch.set_num_threads), as it does in a fresh process.
SERVER_THREAD_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")

# Imported once by the server: (module, attributes to touch), so that transformers' lazy attributes
# load their modules too. Third-party only: pidistill's own code is imported by each job from disk.
PRELOAD: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("numpy", ()),
    ("pandas", ()),
    ("yaml", ()),
    ("torch", ()),
    ("transformers", ("AutoConfig", "AutoTokenizer", "AutoModelForCausalLM", "AutoModelForSequenceClassification",
                      "PreTrainedTokenizerFast", "Trainer", "TrainingArguments", "Qwen3Config",
                      "Qwen3ForCausalLM", "Qwen3ForSequenceClassification", "GenerationConfig")),
    ("peft", ("LoraConfig", "PeftModel", "get_peft_model")),
    ("datasets", ("Dataset",)),
    ("trl", ("SFTConfig", "SFTTrainer", "RewardConfig", "RewardTrainer")),
    ("tokenizers", ()),
    ("tqdm", ()),
    ("snakemake.logging", ()),
    ("snakemake.iocontainers", ()),
)

_HEADER = struct.Struct("!I")
PR_SET_PDEATHSIG = 1


def available() -> bool:
    """Whether this platform can run the worker (Linux: pidfds, peer credentials, prctl)."""
    return sys.platform == "linux" and hasattr(os, "pidfd_open") and hasattr(socket, "SO_PEERCRED")


def _send(sock: socket.socket, message: dict, fds: list[int] | None = None) -> None:
    data = json.dumps(message).encode()
    payload = _HEADER.pack(len(data)) + data
    if fds:
        sent = socket.send_fds(sock, [payload], fds)
        payload = payload[sent:]
    if payload:  # (sendall sends once even when empty: EPIPE if the server has already answered)
        sock.sendall(payload)


class Channel:
    """Length-prefixed JSON messages over a stream socket, read with a buffer of their own: the
    server's two answers (accepted, then the exit status of a quick job) can arrive in one read."""

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.buf = b""

    def recv(self, maxfds: int = 0) -> tuple[dict | None, list[int]]:
        """The next message (None at end of stream) and the file descriptors that came with it."""
        fds: list[int] = []
        while True:
            if len(self.buf) >= _HEADER.size:
                end = _HEADER.size + _HEADER.unpack_from(self.buf)[0]
                if len(self.buf) >= end:
                    message, self.buf = json.loads(self.buf[_HEADER.size:end]), self.buf[end:]
                    return message, fds
            if maxfds and not fds:
                chunk, got, _, _ = socket.recv_fds(self.sock, 1 << 16, maxfds)
                fds.extend(got)
            else:
                chunk = self.sock.recv(1 << 16)
            if not chunk:
                for fd in fds:
                    os.close(fd)
                return None, []
            self.buf += chunk


def environment_mismatch(client: dict[str, str], server: dict[str, str]) -> list[str]:
    """The variables (names only) in which a client's environment differs from the server's."""
    keys = (set(client) | set(server)) - PER_JOB_ENV
    return sorted(k for k in keys if client.get(k) != server.get(k))


# ----------------------------------------------------------------------------------------------------
# client

def _connect(path: str) -> socket.socket | None:
    """A connection to the server at ``path``; None while it is still importing (a job that starts
    then runs itself: waiting would cost the run more than the imports) or when it is gone."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(path)
        return sock
    except OSError:
        sock.close()
        return None


def delegate(main) -> None:
    """Run this Snakemake job in the warm worker and exit with its status; return (and let the job run
    in this process) when there is no worker to take it. Called by scripts/_repo.py."""
    path = os.environ.get(SOCKET_ENV)
    script = getattr(main, "__real_file__", None)  # the file Snakemake runs (preamble + script)
    if not path or os.environ.get(CHILD_ENV) or not script or not available():
        return
    sock = _connect(path)
    if sock is None:  # not up yet, or gone: this process runs the job
        return
    request = {"argv": sys.argv, "cwd": os.getcwd(), "env": dict(os.environ), "script": script,
               "executable": os.path.realpath(sys.executable), "prefix": os.path.realpath(sys.prefix)}
    sys.stdout.flush()
    sys.stderr.flush()
    channel = Channel(sock)
    try:
        _send(sock, request, [0, 1, 2])
        reply, _ = channel.recv()
    except (OSError, ValueError):
        reply = None
    if reply is None or not reply.get("accepted"):
        why = "no answer" if reply is None else reply.get("why", "declined")
        print(f"pidistill: the warm worker did not take this job ({why}); running it in this process",
              file=sys.stderr, flush=True)
        sock.close()
        return
    try:
        result, _ = channel.recv()
    except (OSError, ValueError):
        result = None
    if result is None:
        print("pidistill: the warm worker went away before the job finished", file=sys.stderr, flush=True)
        os._exit(1)
    note = (f"pidistill: this job ran in the warm worker (child pid {reply['pid']}): exit {result['exit']}, "
            f"peak memory {result['maxrss_kib'] / 1024:.0f} MiB, CPU {result['cpu_s']:.1f} s\n")
    logs = list(getattr(getattr(main, "snakemake", None), "log", None) or [])
    if logs:
        try:
            with open(logs[0], "a") as f:
                f.write(note)
        except OSError:
            pass
    os._exit(result["exit"])


# ----------------------------------------------------------------------------------------------------
# server


@dataclass
class _Job:
    pid: int
    pidfd: int
    conn: socket.socket
    client_gone: bool = False


@dataclass
class Server:
    socket_path: str
    driver_pid: int | None = None
    preload: tuple = PRELOAD
    jobs: dict[int, _Job] = field(default_factory=dict)  # by pidfd

    def serve(self) -> None:
        started = time.monotonic()
        self.env = dict(os.environ)  # as launched: what a client's must match
        for module, names in self.preload:
            mod = importlib.import_module(module)
            for name in names:
                getattr(mod, name)
        import gc

        gc.collect()
        gc.freeze()  # the children share the imported heap instead of touching it (copy-on-write)
        # what the imports put in the environment (TORCHINDUCTOR_CACHE_DIR, ...): a job that imported them
        # itself would have it too, so the child gets it on top of the client's environment
        self.added_env = {k: v for k, v in os.environ.items() if self.env.get(k) != v}
        self.executable = os.path.realpath(sys.executable)
        self.prefix = os.path.realpath(sys.prefix)
        self.uid = os.getuid()
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        partial = self.socket_path + ".binding"
        listener.bind(partial)
        listener.listen(64)
        os.rename(partial, self.socket_path)  # clients see the socket only once it accepts
        print(f"pidistill warm worker: pid {os.getpid()}, {len(self.preload)} packages imported in "
              f"{time.monotonic() - started:.1f} s, listening on {self.socket_path}", file=sys.stderr, flush=True)
        self.listener = listener
        sel = self.selector = selectors.DefaultSelector()
        sel.register(listener, selectors.EVENT_READ, "accept")
        if self.driver_pid:
            try:
                sel.register(os.pidfd_open(self.driver_pid), selectors.EVENT_READ, "driver")
            except ProcessLookupError:
                return
        while True:
            for key, _ in sel.select():
                kind = key.data
                if kind == "accept":
                    self._accept()
                elif kind == "driver":  # the Snakemake run that started this server is over
                    self._shutdown()
                    return
                elif kind[0] == "exit":
                    self._reap(self.jobs[kind[1]])
                elif kind[0] == "client":
                    self._client_event(self.jobs[kind[1]])

    def _accept(self) -> None:
        conn, _ = self.listener.accept()
        conn.settimeout(10)
        fds: list[int] = []
        try:  # the client's streams are the child's once forked: the server closes its copies in any case
            _, uid, _ = struct.unpack("3i", conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))
            request, fds = Channel(conn).recv(maxfds=3)
            why = self._decline_reason(request, uid, fds)
            if why:
                _send(conn, {"accepted": False, "why": why})
                conn.close()
                return
            child = self._fork(request, fds, conn)
        except (OSError, ValueError) as e:
            print(f"pidistill warm worker: a client failed: {e}", file=sys.stderr, flush=True)
            conn.close()
            return
        finally:
            for fd in fds:
                os.close(fd)
        pidfd = os.pidfd_open(child)
        job = self.jobs[pidfd] = _Job(child, pidfd, conn)
        self.selector.register(pidfd, selectors.EVENT_READ, ("exit", pidfd))
        self.selector.register(conn, selectors.EVENT_READ, ("client", pidfd))
        try:
            _send(conn, {"accepted": True, "pid": child})
        except OSError:
            self._client_event(job, gone=True)

    def _decline_reason(self, request: dict | None, uid: int, fds: list[int]) -> str | None:
        if request is None or len(fds) != 3:
            return "an incomplete request"
        if uid != self.uid:
            return f"it runs as uid {uid}, the worker as uid {self.uid}"
        if request.get("executable") != self.executable or request.get("prefix") != self.prefix:
            return f"another interpreter ({request.get('executable')}; the worker runs {self.executable})"
        differ = environment_mismatch(request.get("env", {}), self.env)
        if differ:
            return "its environment differs in " + ", ".join(differ[:8]) + (" ..." if len(differ) > 8 else "")
        return None

    def _fork(self, request: dict, fds: list[int], conn: socket.socket) -> int:
        pid = os.fork()
        if pid:
            try:
                os.setpgid(pid, pid)  # also here: a kill right after the fork must reach the group
            except OSError:
                pass
            return pid
        # the child: never returns
        code = 1
        try:
            request["env"] = {**request["env"], **self.added_env}
            _become_job(request, fds, close=[self.listener, self.selector, conn, *[j.conn for j in self.jobs.values()]],
                        pidfds=[j.pidfd for j in self.jobs.values()])
            code = _run_job(request["script"])
        except BaseException:
            import traceback

            traceback.print_exc()
        finally:
            try:
                sys.stdout.flush()
                sys.stderr.flush()
            finally:
                os._exit(code)

    def _client_event(self, job: _Job, gone: bool = False) -> None:
        if not gone:
            try:
                gone = job.conn.recv(1, socket.MSG_PEEK) == b""
            except OSError:
                gone = True
        if gone and not job.client_gone:
            job.client_gone = True
            self.selector.unregister(job.conn)
            _kill(job.pid)  # its subprocesses too: nothing is written after this

    def _reap(self, job: _Job) -> None:
        _, status, usage = os.wait4(job.pid, 0)
        self.selector.unregister(job.pidfd)
        os.close(job.pidfd)
        del self.jobs[job.pidfd]
        if not job.client_gone:
            self.selector.unregister(job.conn)
            try:
                _send(job.conn, {"exit": _exit_code(status), "maxrss_kib": usage.ru_maxrss,
                                 "cpu_s": usage.ru_utime + usage.ru_stime})
            except OSError:
                pass
        job.conn.close()

    def _shutdown(self) -> None:
        for job in list(self.jobs.values()):
            _kill(job.pid)
        self.listener.close()


def _kill(pid: int) -> None:
    """SIGKILL the job's process group (it leads one), or the job alone where it has none yet."""
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _exit_code(status: int) -> int:
    code = os.waitstatus_to_exitcode(status)
    return 128 - code if code < 0 else code  # killed by signal N: 128 + N, as a shell reports it


def _become_job(request: dict, fds: list[int], close: list, pidfds: list[int]) -> None:
    """Turn the forked child into the client's job: its streams, directory, environment, command line."""
    os.setpgid(0, 0)
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        pass
    for thing in close:
        thing.close()
    for fd in pidfds:
        os.close(fd)
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
    for fd in fds:
        if fd > 2:
            os.close(fd)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    os.environ[CHILD_ENV] = "1"
    tempfile.tempdir = None  # the job's TMPDIR, not the server's
    import random

    random.seed()
    if "numpy" in sys.modules:
        sys.modules["numpy"].random.seed()
    sys.argv = list(request["argv"])
    sys.path[0] = os.path.dirname(os.path.abspath(request["script"]))  # as `python <script>` sets it


def _run_job(script: str) -> int:
    """Run ``script`` as ``__main__`` the way the interpreter would; its exit status."""
    import runpy
    import threading
    import traceback

    code = 0
    try:
        runpy.run_path(script, run_name="__main__")
    except SystemExit as e:
        if e.code is None:
            code = 0
        elif isinstance(e.code, int):
            code = e.code
        else:
            print(e.code, file=sys.stderr)
            code = 1
    except BaseException:
        traceback.print_exc()
        code = 1
    try:
        threading._shutdown()  # join non-daemon threads, as interpreter exit does
    except Exception:
        pass
    import atexit

    atexit._run_exitfuncs()
    return code


# ----------------------------------------------------------------------------------------------------
# the driver's side: start and stop (the Snakefile's onstart / onsuccess / onerror)


@dataclass
class Handle:
    process: subprocess.Popen
    directory: str  # private (0700), holds the socket


_handle: Handle | None = None


def start(log_path: str | os.PathLike, root: str | os.PathLike) -> Handle | None:
    """Start a server for this Snakemake run (the calling process), and advertise it to the run's
    jobs through the environment they inherit. Returns immediately; jobs that start before the
    server is ready run in their own processes."""
    global _handle
    if not available() or _handle is not None:
        return _handle
    directory = tempfile.mkdtemp(prefix="pidistill-worker-")  # 0700: no other user reaches the socket
    path = os.path.join(directory, "socket")
    env = dict(os.environ)
    env.pop(SOCKET_ENV, None)
    env.update({name: "1" for name in SERVER_THREAD_ENV})
    Path(log_path).parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "w") as log:
        process = subprocess.Popen([sys.executable, "-m", "pidistill.worker", "--socket", path,
                                    "--driver", str(os.getpid())], cwd=str(root), env=env,
                                   stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    os.environ[SOCKET_ENV] = path
    _handle = Handle(process, directory)
    return _handle


def stop() -> None:
    """Stop this run's server (if any) and remove its socket."""
    global _handle
    handle, _handle = _handle, None
    os.environ.pop(SOCKET_ENV, None)
    if handle is None:
        return
    handle.process.terminate()
    try:
        handle.process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        handle.process.kill()
        handle.process.wait()
    shutil.rmtree(handle.directory, ignore_errors=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="pidistill's warm worker (started by the Snakefile's onstart)")
    parser.add_argument("--socket", required=True)
    parser.add_argument("--driver", type=int, help="exit when this process (the Snakemake run) exits")
    parser.add_argument("--preload", action="append", metavar="MODULE",
                        help="import these modules instead of PRELOAD (repeatable; for tests)")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    preload = tuple((m, ()) for m in args.preload) if args.preload else PRELOAD
    try:
        Server(args.socket, args.driver, preload).serve()
    finally:
        try:
            os.unlink(args.socket)
        except OSError:
            pass


if __name__ == "__main__":
    main()
