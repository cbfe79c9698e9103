"""One candidate process (U) per sample, shut in before any candidate code runs.

The judge (J, the zygote) does not fork candidates itself: every page of its heap that it wrote
while a forked child still shared it would be copied, and it writes many. A spawner (T), forked
from the zygote once it is ready, forks them and otherwise sits still:
``Candidate(ctx, target, arg, limits)`` asks T for a U that runs ``target(sock, arg)`` (a
module-level function the zygote imported) and gets back U's pid and the other end of ``sock``;
``close()`` kills U, and T reaps it and empties its working directory.

In ``namespaces`` mode U is **pid 1 of a fresh pid namespace** below the zygote's (``kill(-1)``
reaches only what U started; killing U kills all of it, detached or not). U shares the zygote's
mount namespace, whose root is the minimal read-only tree of ``rootfs``, and its empty network
namespace; its working directory is the work tmpfs, emptied after each candidate. Before the
candidate's code runs U has, from T: stdin from /dev/null, stdout and stderr into ``.output``,
default signal handlers, ``no_new_privs``, not dumpable, a scrubbed environment and argv, and
rlimits on file size (``output_kb``), open files (64), processes (``nproc``), core dumps, locked
memory and message queues; and U itself takes its own session, closes every other descriptor,
sets its memory and CPU-time limits, and gives up every capability: as root by becoming the
candidate uid (``SANDBOX_UID_BASE`` + worker), otherwise (it keeps the user's own uid, mapped to
itself) through ``capset``.

In ``rlimits`` mode (only when the config asks for it) U gets its own session, the same rlimits
and a private temporary directory on the host, and, as root, an unprivileged uid that is killed
whole afterwards. Nothing stops its network or its reads of world-readable host files, and
without root it can signal every process of the user.
"""

from __future__ import annotations

import gc
import math
import os
import resource
import select
import signal
import socket
import sys
import time

from pidistill.verifiers import code_wire as wire
from pidistill.verifiers.sandbox import libc, rootfs

SANDBOX_UID_BASE = 1_990_000  # root runs: worker k's candidates run as uid/gid base + k (no such user)
IDLE_TICK_S = 0.1  # how often a waiting judge looks at its candidate's CPU use
IDLE_SHARE = 0.2  # below this share of a CPU over a tick the candidate counts as idle


class Context:
    """What a zygote's judge needs to start candidates: mode, uid, working directory, limits."""

    def __init__(self, mode: str, detail: str, uid: int | None, workdir: str | None = None,
                 nproc_offset: int = 0, pidns_fd: int = -1):
        self.mode = mode  # "namespaces" | "rlimits"
        self.detail = detail
        self.uid = uid  # the uid U switches to (root runs); None: U keeps the zygote's uid
        self.workdir = workdir  # namespaces: the work tmpfs; rlimits: None (a temporary dir each)
        self.nproc_offset = nproc_offset  # processes that already count against U's RLIMIT_NPROC
        self.pidns_fd = pidns_fd  # the zygote's own pid namespace (namespaces mode)
        self.spawner: socket.socket | None = None  # J's end of the channel to T
        self.cpu: int | None = None  # the CPU the current sample runs on (None: any)
        self.on_park = None  # called once with the Candidate when its sample should give its CPU away
        self.park_at = math.inf  # (time.monotonic) past this a sample still running is likely a timeout


# ==== T: the spawner ============================================================================

def start_spawner(ctx: Context) -> int:
    """Fork T (call it once the zygote is ready: its heap is what every U starts from)."""
    mine, theirs = socket.socketpair()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            mine.close()
            libc.prctl(libc.PR_SET_PDEATHSIG, signal.SIGKILL)
            _spawner_loop(ctx, theirs)
            code = 0
        finally:
            os._exit(code)
    theirs.close()
    ctx.spawner = mine
    return pid


def _candidate_env(workdir: str) -> dict:
    return {"PATH": "/usr/bin:/bin", "HOME": workdir, "LANG": "C.UTF-8", "TMPDIR": workdir}


def _spawner_loop(ctx: Context, sock: socket.socket) -> None:
    """T: one candidate at a time. What every candidate inherits is set up here once; after a
    fork T does almost nothing until the candidate is dead (its writes would be copies)."""
    all_cpus = os.sched_getaffinity(0)
    pinned = all_cpus
    os.dup2(os.open("/dev/null", os.O_RDONLY), 0)
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGPIPE, signal.SIGXFSZ):
        signal.signal(sig, signal.SIG_DFL)
    sys.argv = ["candidate"]
    if ctx.mode == "namespaces":
        os.chdir(ctx.workdir)
        os.environ.clear()
        os.environ.update(_candidate_env(ctx.workdir))
    libc.prctl(libc.PR_SET_NO_NEW_PRIVS, 1)  # T never execs; candidates inherit both
    libc.prctl(libc.PR_SET_DUMPABLE, 0)
    shared_limits = None
    while True:
        try:
            req = wire.recv_msg(sock)
        except (EOFError, OSError, wire.WireError):
            return
        if req.get("op") != "start":
            return
        want = {req["cpu"]} if req.get("cpu") in all_cpus else all_cpus
        if want != pinned:
            os.sched_setaffinity(0, want)  # U inherits it
            pinned = want
        limits = req["limits"]
        if limits != shared_limits:
            _set_shared_limits(ctx, limits)
            shared_limits = limits
        module, name = req["target"].split(":")
        try:
            target = getattr(sys.modules[module], name)  # the zygote imported it before forking T
            pid, theirs, workdir = _fork_candidate(ctx, target, req["arg"], limits)
        except (OSError, KeyError, AttributeError) as exc:
            socket.send_fds(sock, [b"E"], [])
            wire.send_msg(sock, {"error": f"{type(exc).__name__}: {exc}"[:300]})
            continue
        socket.send_fds(sock, [b"U"], [theirs.fileno()])
        theirs.close()
        wire.send_msg(sock, {"pid": pid, "workdir": workdir})
        _wait(pid, reap=False)  # until the judge kills U (or U dies); the pid stays U's
        try:
            req = wire.recv_msg(sock)
        except (EOFError, OSError, wire.WireError):
            req = {}
        status = _end(ctx, pid, workdir)
        if req.get("op") != "close":
            return
        wire.send_msg(sock, {"status": status})


def _set_shared_limits(ctx: Context, limits: dict) -> None:
    """The rlimits T can hold itself (candidates inherit them); U sets memory and CPU time."""
    shared = [
        (resource.RLIMIT_FSIZE, int(limits["output_kb"]) * 1024), (resource.RLIMIT_NOFILE, 64),
        (resource.RLIMIT_CORE, 0), (resource.RLIMIT_MEMLOCK, 0), (resource.RLIMIT_MSGQUEUE, 0),
    ]
    if ctx.mode == "namespaces" or ctx.uid is not None:  # (else U counts the user's processes)
        shared.append((resource.RLIMIT_NPROC, int(limits["nproc"]) + ctx.nproc_offset))
    for res, value in shared:
        resource.setrlimit(res, (value, value))


def _fork_candidate(ctx: Context, target, arg, limits: dict):
    if ctx.mode == "namespaces":
        workdir = ctx.workdir
    else:
        import tempfile

        workdir = tempfile.mkdtemp(prefix="pidistill-sample-")
        if ctx.uid is not None:
            os.chown(workdir, ctx.uid, ctx.uid)
    out = os.open(os.path.join(workdir, ".output"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    if ctx.uid is not None:
        os.fchown(out, ctx.uid, ctx.uid)
    os.dup2(out, 1)  # T's own stdout and stderr: U inherits them
    os.dup2(out, 2)
    os.close(out)
    ours, child = socket.socketpair()
    gc.freeze()  # what T allocated since: U's garbage collections need not look at it
    if ctx.mode == "namespaces":
        # the next child is pid 1 of a new pid namespace: point pid_for_children back at our
        # own namespace (where the previous candidate's was), then unshare a fresh one
        libc.setns(ctx.pidns_fd, libc.CLONE_NEWPID)
        libc.unshare(libc.CLONE_NEWPID)
    pid = os.fork()
    if pid == 0:  # U
        code = 1
        try:
            ours.close()
            _enter(ctx, workdir, child, limits)
            target(child, arg)
            code = 0
        except BaseException:  # noqa: BLE001 - U's own failure ends U, nothing else
            code = 1
        finally:
            os._exit(code)
    child.close()
    return pid, ours, workdir


def _enter(ctx: Context, workdir: str, sock, limits: dict) -> None:
    """In U: the rest of the sandbox (T set up what U inherits). Runs before any candidate code."""
    os.setsid()
    if ctx.mode == "rlimits":
        libc.prctl(libc.PR_SET_PDEATHSIG, signal.SIGKILL)  # (namespaces: T's death ends the zygote)
        os.chdir(workdir)
        os.environ.clear()
        os.environ.update(_candidate_env(workdir))
    keep = sock.fileno()
    os.closerange(3, keep)
    os.closerange(keep + 1, 1 << 16)
    mem = int(limits["memory_mb"]) * 1024 * 1024
    cpu = max(1, int(limits["cpu_s"]))
    resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
    resource.setrlimit(resource.RLIMIT_DATA, (mem, mem))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu))
    if ctx.mode == "rlimits" and ctx.uid is None and os.geteuid() != 0:
        n = int(limits["nproc"]) + count_processes(os.geteuid())  # every process of the user counts
        resource.setrlimit(resource.RLIMIT_NPROC, (n, n))
    if ctx.uid is not None:  # root runs: the candidate uid (which clears every capability)
        os.setgroups([])
        os.setresgid(ctx.uid, ctx.uid, ctx.uid)
        os.setresuid(ctx.uid, ctx.uid, ctx.uid)
    elif ctx.mode == "namespaces":
        libc.clear_caps()  # U keeps the user's uid: give up the user namespace's capabilities


def _end(ctx: Context, pid: int, workdir: str) -> int | None:
    """Kill U and everything it started, reap it, empty its working directory."""
    if ctx.mode == "namespaces":
        _kill(pid)  # pid 1 dies -> the kernel kills its whole pid namespace
        status = _wait(pid)
        rootfs.wipe(workdir)
        return status
    _kill(-pid)
    _kill(pid)
    if ctx.uid is not None:
        kill_uid(ctx.uid)
    status = _wait(pid)
    if ctx.uid is not None:
        kill_uid(ctx.uid)
    import shutil

    shutil.rmtree(workdir, ignore_errors=True)
    return status


# ==== J: the judge's handle on its candidate ====================================================

class Candidate:
    """U running ``target(sock, arg)``; the judge talks to it over ``self.sock``."""

    def __init__(self, ctx: Context, target, arg, limits: dict):
        self.ctx = ctx
        req = {"op": "start", "target": f"{target.__module__}:{target.__name__}", "arg": arg, "limits": limits, "cpu": ctx.cpu}
        reply, fds = _ask(ctx, req, with_fd=True)
        if "error" in reply:
            raise OSError(f"starting the candidate: {reply['error']}")
        self.sock = socket.socket(fileno=fds[0])
        self.pid = reply["pid"]
        self.workdir = reply["workdir"]
        self.status: int | None = None
        self.closed = False
        self._poll = select.poll()
        self._poll.register(self.sock, select.POLLIN)

    def wait(self, deadline: float) -> bool:
        """Wait until U has sent something (True) or ``deadline`` (time.monotonic) passes (False).

        While U sits idle (a sleep, a wait on its children), or keeps computing past
        ``ctx.park_at``, the judge tells its pool once (``ctx.on_park``), which then gives this
        worker's CPU to another sample: the deadline stays, the sample no longer holds the pool up."""
        seen = None
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            hook = self.ctx.on_park
            step = left if hook is None else min(left, IDLE_TICK_S)
            if self._poll.poll(math.ceil(step * 1000)):
                return True
            if hook is None:
                continue
            cpu = self.cpu_time()
            idle = cpu is not None and seen is not None and cpu - seen < IDLE_TICK_S * IDLE_SHARE
            if idle or time.monotonic() >= self.ctx.park_at:
                self.ctx.on_park = None
                hook(self)
            seen = cpu

    def cpu_time(self) -> float | None:
        """CPU seconds U itself has used so far (its process CPU clock), None if unreadable."""
        try:
            return time.clock_gettime(((~self.pid) << 3) | 2)  # CPUCLOCK_SCHED of the process
        except OSError:
            return None

    def output_size(self) -> int:
        try:
            return os.lstat(os.path.join(self.workdir, ".output")).st_size
        except OSError:
            return 0

    def close(self) -> int | None:
        """Kill the candidate and everything it started; empty its directory. Idempotent."""
        try:
            self.sock.close()
        except OSError:
            pass
        if not self.closed:
            self.closed = True
            _kill(self.pid)  # T waits for U's death, then reaps it and empties its directory
            self.status = _ask(self.ctx, {"op": "close"})[0]["status"]
        return self.status


def _ask(ctx: Context, req: dict, with_fd: bool = False) -> tuple[dict, list[int]]:
    """One request to T and its answer. Anything that cuts the exchange short (the judge's hard
    deadline, T gone) leaves the channel out of step: ``ctx.spawner`` becomes None and the zygote
    ends after this job (its pool starts a new one)."""
    if ctx.spawner is None:
        raise OSError("the candidate spawner is gone")
    try:
        wire.send_msg(ctx.spawner, req)
        fds: list[int] = []
        if with_fd:
            _, fds, _, _ = socket.recv_fds(ctx.spawner, 1, 1)
        return wire.recv_msg(ctx.spawner), fds
    except BaseException:
        ctx.spawner.close()
        ctx.spawner = None
        raise


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except OSError:
        pass


def _wait(pid: int, reap: bool = True) -> int | None:
    """``pid``'s wait status; with ``reap=False`` only wait for it to end (the pid stays taken)."""
    while True:
        try:
            if not reap:
                os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)
                return None
            return os.waitpid(pid, 0)[1]
        except InterruptedError:
            continue
        except ChildProcessError:
            return None


def kill_uid(uid: int) -> None:
    """Kill every process running as ``uid`` (rlimits mode as root), from a helper that becomes it."""
    pid = os.fork()
    if pid == 0:
        try:
            os.setresgid(uid, uid, uid)
            os.setresuid(uid, uid, uid)
            os.kill(-1, signal.SIGKILL)
        except BaseException:  # noqa: BLE001
            pass
        os._exit(0)
    _wait(pid)


def count_processes(uid: int, proc: str = "/proc") -> int:
    n = 0
    for name in os.listdir(proc):
        if name.isdigit():
            try:
                if os.stat(f"{proc}/{name}").st_uid == uid:
                    n += 1
            except OSError:
                pass
    return n
