"""Process sandbox for untrusted code, with a pool of pre-imported zygote processes.

Layout (one line per process; "J" is trusted, "U" runs candidate code):

    verifier (main)  --pipes-->  zygote x workers  (fresh interpreter, stdlib pre-imported;
                                                    namespaces mode: own mount/net/ipc/uts ns
                                                    and a minimal read-only root on a tmpfs)
        zygote --fork--> J  (one per sample: the judge, runs the trusted test code)
            J --unshare(CLONE_NEWPID), fork--> I (pid 1 of a new pid namespace, a reaper)
                I --fork--> U (the candidate: new mount ns, chroot, rlimits, unprivileged uid)

Killing I tears the pid namespace down: every process U started dies with it, detached or not.

Isolation modes (``VerifierSettings.isolation``):
  * ``namespaces``: as above. Needs root (or CAP_SYS_ADMIN) and a kernel that allows it.
  * ``rlimits``: no namespaces. U gets its own session, rlimits and a private working directory;
    as root it also runs under an unprivileged uid (file permissions, RLIMIT_NPROC, cleanup by
    uid). Network access and reads of world-readable host files are NOT blocked.
  * ``auto``: namespaces when they work, else rlimits. The mode that ran is in every verdict.
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import queue
import resource
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 32, 4096, 16384, 1 << 18
MNT_DETACH = 2
PR_SET_PDEATHSIG, PR_SET_DUMPABLE, PR_SET_NO_NEW_PRIVS = 1, 4, 38

# The zygotes import their handler by name (``Pool(handler=...)``): the default judge runs in every
# code verification, so pidistill.codedeps follows it like an import.
__code_deps__ = ("pidistill.verifiers.code_runner",)

SANDBOX_UID_BASE = 1_990_000  # uid/gid of worker k's candidates: base + k (no such user exists)
PREIMPORT = (
    "array bisect cmath collections copy datetime decimal fractions functools hashlib heapq "
    "itertools json math operator random re statistics string textwrap typing unicodedata "
    "collections.abc dataclasses enum numbers struct traceback socket"
).split()

_libc = None


def _c():
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
    return _libc


def _check(ret: int, what: str) -> None:
    if ret != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def unshare(flags: int) -> None:
    _check(_c().unshare(ctypes.c_int(flags)), "unshare")


def mount(src: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    enc = lambda s: None if s is None else s.encode()
    _check(_c().mount(enc(src), enc(target), enc(fstype), ctypes.c_ulong(flags), enc(data)), f"mount {target}")


def prctl(option: int, arg: int) -> None:
    _check(_c().prctl(ctypes.c_int(option), ctypes.c_ulong(arg), ctypes.c_ulong(0), ctypes.c_ulong(0), ctypes.c_ulong(0)), "prctl")


# -- framing on the zygote pipes -----------------------------------------------------------------

def _write_frame(fd: int, obj) -> None:
    data = json.dumps(obj).encode()
    data = struct.pack(">I", len(data)) + data
    while data:
        data = data[os.write(fd, data):]


def _read_exact(fd: int, n: int) -> bytes | None:
    buf = b""
    while len(buf) < n:
        chunk = os.read(fd, n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return buf


def _read_frame(fd: int):
    head = _read_exact(fd, 4)
    if head is None:
        return None
    body = _read_exact(fd, struct.unpack(">I", head)[0])
    return None if body is None else json.loads(body)


# -- the zygote side -----------------------------------------------------------------------------

class Context:
    """What a judge process (J) needs to start candidates: mode, root, uid, limits."""

    def __init__(self, mode: str, root: str | None, uid: int | None, detail: str):
        self.mode = mode
        self.root = root
        self.uid = uid
        self.detail = detail
        self.counter = 0
        self.pidns_fd = os.open("/proc/self/ns/pid", os.O_RDONLY) if mode == "namespaces" else -1


def _ro_bind(src: str, target: str) -> None:
    mount(src, target, None, MS_BIND | MS_REC)
    mount(None, target, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV)


def _build_root(tmpfs_mb: int) -> str:
    """A minimal root for candidates: read-only binds of the system and Python, nothing else."""
    mount(None, "/", None, MS_REC | MS_PRIVATE)
    root = tempfile.mkdtemp(prefix="pidistill-root-")
    mount("pidistill", root, "tmpfs", MS_NOSUID | MS_NODEV, f"size={tmpfs_mb}m,nr_inodes=8192,mode=755")
    paths = {"/usr", sys.base_prefix, sys.prefix, os.path.dirname(os.path.realpath(sys.executable))}
    for top in ("/bin", "/sbin", "/lib", "/lib64", "/lib32"):
        if os.path.islink(top):
            os.symlink(os.readlink(top), root + top)
        elif os.path.isdir(top):
            paths.add(top)
    bound: list[str] = []
    for path in sorted({os.path.realpath(p) for p in paths}, key=len):
        if not os.path.isdir(path) or any(path.startswith(b.rstrip("/") + "/") for b in bound):
            continue  # missing, or already inside a bound directory
        os.makedirs(root + path, mode=0o755, exist_ok=True)
        _ro_bind(path, root + path)
        bound.append(path)
    os.makedirs(root + "/dev", mode=0o755)
    for dev in ("null", "zero", "urandom", "random"):
        open(root + "/dev/" + dev, "w").close()
        mount("/dev/" + dev, root + "/dev/" + dev, None, MS_BIND)
    # Each candidate's working directory is bound over /tmp. A bound prefix may already live under
    # /tmp (a checkout in /tmp/...): the bind hides it from the candidate, which needs only the
    # stdlib its zygote pre-imported. Failing here would silently drop to the weaker rlimits mode.
    os.makedirs(root + "/tmp", mode=0o755, exist_ok=True)
    os.makedirs(root + "/.work", mode=0o700)
    os.makedirs(root + "/proc", mode=0o555)  # left empty: no /proc inside
    return root


def setup_context(requested: str, index: int, tmpfs_mb: int) -> Context:
    is_root = os.geteuid() == 0
    uid = SANDBOX_UID_BASE + index if is_root else None
    if requested in ("auto", "namespaces"):
        try:
            if not is_root:
                raise PermissionError("namespaces mode needs root")
            unshare(CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS)
            root = _build_root(tmpfs_mb)
            return Context("namespaces", root, uid, "pid+mount+net+ipc+uts namespaces, chroot to a read-only minimal root, unprivileged uid, rlimits")
        except OSError as exc:
            if requested == "namespaces":
                raise
            detail = f"namespaces unavailable ({exc}); "
    elif requested == "rlimits":
        detail = ""
    else:
        raise ValueError(f"unknown isolation mode {requested!r}")
    detail += "rlimits, own session, private working directory" + (", unprivileged uid" if uid else "") + "; network NOT blocked"
    return Context("rlimits", None, uid, detail)


class Candidate:
    """An isolated process running ``target(sock)``; J talks to it over ``sock``."""

    def __init__(self, ctx: Context, target, limits: dict):
        import socket

        self.ctx = ctx
        ctx.counter += 1
        if ctx.mode == "namespaces":
            self.workdir = os.path.join(ctx.root, ".work", str(ctx.counter))
            os.mkdir(self.workdir, 0o700)
        else:
            self.workdir = tempfile.mkdtemp(prefix="pidistill-sample-")
        if ctx.uid is not None:
            os.chown(self.workdir, ctx.uid, ctx.uid)
        parent_sock, child_sock = socket.socketpair()
        if ctx.mode == "namespaces":
            # children go to a fresh pid namespace: reset pid_for_children to our own, then unshare
            _check(_c().setns(ctx.pidns_fd, CLONE_NEWPID), "setns")
            unshare(CLONE_NEWPID)
        pid = os.fork()
        if pid == 0:  # U: pid 1 of a fresh pid namespace (namespaces mode)
            code = 1
            try:
                parent_sock.close()
                self._enter(child_sock, limits)
                target(child_sock)
                code = 0
            except BaseException:
                code = 1
            finally:
                os._exit(code)
        child_sock.close()
        self.pid = pid
        self.sock = parent_sock
        self.status: int | None = None

    def _enter(self, sock, limits: dict) -> None:
        """In U: drop into the sandbox. Everything here runs before any candidate code."""
        ctx = self.ctx
        os.setsid()
        prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        devnull = os.open("/dev/null", os.O_RDWR)
        out = os.open(os.path.join(self.workdir, ".output"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        if ctx.uid is not None:
            os.fchown(out, ctx.uid, ctx.uid)
        os.dup2(devnull, 0)
        os.dup2(out, 1)
        os.dup2(out, 2)
        if ctx.mode == "namespaces":
            unshare(CLONE_NEWNS)
            mount(self.workdir, ctx.root + "/tmp", None, MS_BIND | MS_NOSUID | MS_NODEV)
            os.chroot(ctx.root)
            os.chdir("/tmp")
        else:
            os.chdir(self.workdir)
        keep = sock.fileno()
        os.closerange(3, keep)
        os.closerange(keep + 1, 1 << 16)
        mem = int(limits["memory_mb"]) * 1024 * 1024
        cpu = max(1, int(limits["cpu_s"]))
        fsize = int(limits["output_kb"]) * 1024
        for res, value in (
            (resource.RLIMIT_AS, mem), (resource.RLIMIT_DATA, mem), (resource.RLIMIT_CPU, cpu),
            (resource.RLIMIT_FSIZE, fsize), (resource.RLIMIT_NOFILE, 64), (resource.RLIMIT_CORE, 0),
            (resource.RLIMIT_MEMLOCK, 0), (resource.RLIMIT_MSGQUEUE, 0),
        ):
            resource.setrlimit(res, (value, value))
        if ctx.uid is not None:
            # RLIMIT_NPROC binds only non-root users: set it, then become the sandbox uid.
            resource.setrlimit(resource.RLIMIT_NPROC, (int(limits["nproc"]), int(limits["nproc"])))
            os.setgroups([])
            os.setresgid(ctx.uid, ctx.uid, ctx.uid)
            os.setresuid(ctx.uid, ctx.uid, ctx.uid)
        elif os.geteuid() != 0:
            n = int(limits["nproc"]) + _count_own_processes()
            resource.setrlimit(resource.RLIMIT_NPROC, (n, n))
        prctl(PR_SET_NO_NEW_PRIVS, 1)
        prctl(PR_SET_DUMPABLE, 0)
        os.environ.clear()
        os.environ.update({"PATH": "/usr/bin:/bin", "HOME": os.getcwd(), "LANG": "C.UTF-8", "TMPDIR": os.getcwd()})
        sys.argv = ["candidate"]
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGPIPE, signal.SIGXFSZ):
            signal.signal(sig, signal.SIG_DFL)

    def output_size(self) -> int:
        try:
            return os.path.getsize(os.path.join(self.workdir, ".output"))
        except OSError:
            return 0

    def close(self) -> int | None:
        """Kill the candidate and everything it started; remove its directory. Idempotent."""
        try:
            self.sock.close()
        except OSError:
            pass
        if self.status is None:
            if self.ctx.mode == "namespaces":
                _kill(self.pid)  # pid 1 dies -> the kernel kills the whole pid namespace
            else:
                _kill(-self.pid)
                _kill(self.pid)
                if self.ctx.uid is not None:
                    kill_uid(self.ctx.uid)
            self.status = _wait(self.pid)
            if self.ctx.mode != "namespaces" and self.ctx.uid is not None:
                kill_uid(self.ctx.uid)
        shutil.rmtree(self.workdir, ignore_errors=True)
        return self.status


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except OSError:
        pass


def _wait(pid: int) -> int | None:
    while True:
        try:
            return os.waitpid(pid, 0)[1]
        except InterruptedError:
            continue
        except ChildProcessError:
            return None


def _reap_until(pid: int) -> int:
    """pid 1 of the candidate's namespace: reap everything, exit when the candidate exits."""
    while True:
        try:
            done, status = os.waitpid(-1, 0)
        except ChildProcessError:
            return 1
        if done == pid:
            if os.WIFSIGNALED(status):
                return 128 + os.WTERMSIG(status)
            return os.WEXITSTATUS(status) if os.WIFEXITED(status) else 1


def kill_uid(uid: int) -> None:
    """Kill every process running as ``uid`` (from a helper that becomes that uid)."""
    for _ in range(1):
        pid = os.fork()
        if pid == 0:
            try:
                os.setresgid(uid, uid, uid)
                os.setresuid(uid, uid, uid)
                os.kill(-1, signal.SIGKILL)
            except BaseException:
                pass
            os._exit(0)
        _wait(pid)


def _close_fds(keep) -> None:
    try:
        fds = [int(x) for x in os.listdir("/proc/self/fd")]
    except OSError:
        fds = list(range(3, 1024))
    for fd in fds:
        if fd not in keep:
            try:
                os.close(fd)
            except OSError:
                pass


def _count_own_processes() -> int:
    uid = os.getuid()
    n = 0
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                if os.stat(f"/proc/{name}").st_uid == uid:
                    n += 1
            except OSError:
                pass
    return n


def zygote_main() -> None:
    """Entry point of a zygote process: read jobs on stdin, answer on stdout."""
    import importlib

    rfd, wfd = 0, os.dup(1)
    os.dup2(os.open(os.devnull, os.O_WRONLY), 1)  # stray prints must not corrupt the frames
    cfg = _read_frame(rfd)
    for name in PREIMPORT + list(cfg.get("preimport", [])):
        try:
            importlib.import_module(name)
        except ImportError:
            pass
    try:
        ctx = setup_context(cfg["isolation"], int(cfg["index"]), int(cfg.get("tmpfs_mb", 256)))
    except Exception as exc:  # noqa: BLE001 - reported to the parent, which raises
        _write_frame(wfd, {"error": f"{type(exc).__name__}: {exc}"})
        return
    import gc

    gc.collect()
    gc.freeze()  # keep the pre-imported heap shared (fewer copy-on-write faults per fork)
    handler = cfg["handler"]
    module_name, fn_name = handler.split(":")
    judge = getattr(importlib.import_module(module_name), fn_name)
    _write_frame(wfd, {"isolation": ctx.mode, "detail": ctx.detail})
    while True:
        job = _read_frame(rfd)
        if job is None:
            break
        _write_frame(wfd, _run_job(ctx, judge, job, rfd, wfd))
    if ctx.root:
        try:
            _c().umount2(ctx.root.encode(), MNT_DETACH)
            os.rmdir(ctx.root)
        except OSError:
            pass


class JudgeOverrun(BaseException):
    """Raised in the judge when a sample overruns its hard deadline."""


def _alarm(signum, frame):
    raise JudgeOverrun("the judge overran its hard deadline")


def _run_job(ctx: Context, judge, job: dict, rfd: int, wfd: int) -> dict:
    """Judge one job in the zygote itself (the judge runs only trusted code and plain data)."""
    t0 = time.monotonic()
    hard = float(job.get("timeout_s", 5.0)) * 2 + 5.0
    signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, hard)
    try:
        result = judge(ctx, job)
    except BaseException as exc:  # noqa: BLE001 - a verdict with a reason, never a crash
        result = {"error": f"judge failed: {type(exc).__name__}: {exc}"[:500]}
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    result.setdefault("isolation", ctx.mode)
    result["wall_s"] = round(time.monotonic() - t0, 4)
    return result


# -- the verifier side ---------------------------------------------------------------------------

class Zygote:
    def __init__(self, index: int, isolation: str, handler: str, tmpfs_mb: int = 256):
        root = str(Path(__file__).resolve().parents[2])
        code = f"import sys; sys.path.insert(0, {root!r}); from pidistill.verifiers.sandbox import zygote_main; zygote_main()"
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8", "PYTHONDONTWRITEBYTECODE": "1"}
        self.proc = subprocess.Popen(
            [sys.executable, "-s", "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL, env=env, start_new_session=True, cwd="/",
        )
        self.index = index
        _write_frame(self.proc.stdin.fileno(), {"isolation": isolation, "index": index, "handler": handler, "tmpfs_mb": tmpfs_mb})
        hello = _read_frame(self.proc.stdout.fileno())
        if hello is None or "error" in hello:
            self.close()
            raise RuntimeError(f"sandbox zygote failed to start: {(hello or {}).get('error', 'no answer')}")
        self.isolation = hello["isolation"]
        self.detail = hello["detail"]

    def run(self, job: dict) -> dict | None:
        try:
            _write_frame(self.proc.stdin.fileno(), job)
            return _read_frame(self.proc.stdout.fileno())
        except (OSError, ValueError):
            return None

    def close(self) -> None:
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        try:
            self.proc.stdout.close()
        except OSError:
            pass


class Pool:
    """``workers`` zygotes; ``map(jobs)`` runs jobs in parallel and returns results in order."""

    def __init__(self, workers: int, isolation: str = "auto", handler: str = "pidistill.verifiers.code_runner:judge", tmpfs_mb: int = 256):
        self.isolation_requested = isolation
        self.handler = handler
        self.tmpfs_mb = tmpfs_mb
        self.zygotes = [Zygote(i, isolation, handler, tmpfs_mb) for i in range(max(1, workers))]
        self.isolation = self.zygotes[0].isolation
        self.detail = self.zygotes[0].detail

    def _respawn(self, k: int) -> None:
        self.zygotes[k].close()
        self.zygotes[k] = Zygote(self.zygotes[k].index, self.isolation_requested, self.handler, self.tmpfs_mb)

    def map(self, jobs: list[dict], progress=None) -> list[dict]:
        results: list[dict | None] = [None] * len(jobs)
        todo: queue.Queue = queue.Queue()
        for i in range(len(jobs)):
            todo.put(i)

        def worker(k: int) -> None:
            while True:
                try:
                    i = todo.get_nowait()
                except queue.Empty:
                    return
                res = self.zygotes[k].run(jobs[i])
                if res is None:  # the zygote itself died: restart it and retry once
                    try:
                        self._respawn(k)
                        res = self.zygotes[k].run(jobs[i])
                    except RuntimeError:
                        res = None
                    if res is None:
                        res = {"error": "sandbox worker died"}
                results[i] = res
                if progress is not None:
                    progress(1)

        threads = [threading.Thread(target=worker, args=(k,), daemon=True) for k in range(len(self.zygotes))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return results  # type: ignore[return-value]

    def close(self) -> None:
        for z in self.zygotes:
            z.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
