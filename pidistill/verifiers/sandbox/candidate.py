"""One candidate process (U): forked by the judge for one sample, shut in before any candidate code runs.

``Candidate(ctx, target, limits)`` forks U, which drops into the sandbox and then runs
``target(sock)``; the judge talks to it over ``sock`` and ends it with ``close()``.

In ``namespaces`` mode U is **pid 1 of a fresh pid namespace** below the zygote's (``kill(-1)``
reaches only what U started; killing U kills all of it, detached or not). U shares the zygote's
mount namespace, whose root is the minimal read-only tree of ``rootfs``, and its empty network
namespace; its working directory is the work tmpfs, emptied after each candidate. Before the
candidate's code runs, U gets its own session, stdin from /dev/null, stdout and stderr into
``.output`` (capped by RLIMIT_FSIZE), no other descriptors, the rlimits below, no capabilities (an
empty bounding set, then none at all), the candidate uid (as root: ``SANDBOX_UID_BASE`` + worker;
otherwise the invoking user's own uid, mapped to itself), ``no_new_privs``, not dumpable, and a
scrubbed environment and argv.

In ``rlimits`` mode (only when the config asks for it) U gets its own session, the same rlimits
and a private temporary directory on the host, and, as root, an unprivileged uid that is killed
whole afterwards. Nothing stops its network or its reads of world-readable host files, and
without root it can signal every process of the user.
"""

from __future__ import annotations

import math
import os
import resource
import select
import shutil
import signal
import socket
import sys
import tempfile
import time

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
        self.on_idle = None  # called once with the Candidate when it sits idle while the judge waits


class Candidate:
    """An isolated process running ``target(sock)``; the judge talks to it over ``sock``."""

    def __init__(self, ctx: Context, target, limits: dict):
        self.ctx = ctx
        if ctx.mode == "namespaces":
            self.workdir = ctx.workdir
        else:
            self.workdir = tempfile.mkdtemp(prefix="pidistill-sample-")
            if ctx.uid is not None:
                os.chown(self.workdir, ctx.uid, ctx.uid)
        parent_sock, child_sock = socket.socketpair()
        if ctx.mode == "namespaces":
            # the next child is pid 1 of a new pid namespace: point pid_for_children back at our
            # own namespace (where the previous candidate's was), then unshare a fresh one
            libc.setns(ctx.pidns_fd, libc.CLONE_NEWPID)
            libc.unshare(libc.CLONE_NEWPID)
        pid = os.fork()
        if pid == 0:  # U
            code = 1
            try:
                parent_sock.close()
                self._enter(child_sock, limits)
                target(child_sock)
                code = 0
            except BaseException:  # noqa: BLE001 - U's own failure ends U, nothing else
                code = 1
            finally:
                os._exit(code)
        child_sock.close()
        self.pid = pid
        self.sock = parent_sock
        self.status: int | None = None
        self._poll = select.poll()
        self._poll.register(parent_sock, select.POLLIN)

    def _enter(self, sock, limits: dict) -> None:
        """In U: drop into the sandbox. Everything here runs before any candidate code."""
        ctx = self.ctx
        os.setsid()
        libc.prctl(libc.PR_SET_PDEATHSIG, signal.SIGKILL)
        devnull = os.open("/dev/null", os.O_RDWR)
        out = os.open(os.path.join(self.workdir, ".output"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        if ctx.uid is not None:
            os.fchown(out, ctx.uid, ctx.uid)
        os.dup2(devnull, 0)
        os.dup2(out, 1)
        os.dup2(out, 2)
        os.chdir(self.workdir)
        keep = sock.fileno()
        os.closerange(3, keep)
        os.closerange(keep + 1, 1 << 16)
        mem = int(limits["memory_mb"]) * 1024 * 1024
        nproc = int(limits["nproc"])
        if ctx.mode == "rlimits" and ctx.uid is None and os.geteuid() != 0:
            nproc += count_processes(os.geteuid())  # RLIMIT_NPROC counts all of the user's processes
        else:
            nproc += ctx.nproc_offset
        for res, value in (
            (resource.RLIMIT_AS, mem), (resource.RLIMIT_DATA, mem), (resource.RLIMIT_CPU, max(1, int(limits["cpu_s"]))),
            (resource.RLIMIT_FSIZE, int(limits["output_kb"]) * 1024), (resource.RLIMIT_NOFILE, 64),
            (resource.RLIMIT_CORE, 0), (resource.RLIMIT_MEMLOCK, 0), (resource.RLIMIT_MSGQUEUE, 0),
            (resource.RLIMIT_NPROC, nproc),
        ):
            resource.setrlimit(res, (value, value))
        if ctx.mode == "namespaces":
            libc.drop_bounding_and_ambient_caps()
        if ctx.uid is not None:
            os.setgroups([])
            os.setresgid(ctx.uid, ctx.uid, ctx.uid)
            os.setresuid(ctx.uid, ctx.uid, ctx.uid)
        if ctx.mode == "namespaces":
            libc.clear_caps()  # without root U keeps the user's uid: its capabilities go here
        libc.prctl(libc.PR_SET_NO_NEW_PRIVS, 1)
        libc.prctl(libc.PR_SET_DUMPABLE, 0)
        os.environ.clear()
        os.environ.update({"PATH": "/usr/bin:/bin", "HOME": self.workdir, "LANG": "C.UTF-8", "TMPDIR": self.workdir})
        sys.argv = ["candidate"]
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGPIPE, signal.SIGXFSZ):
            signal.signal(sig, signal.SIG_DFL)

    def wait(self, deadline: float) -> bool:
        """Wait until U has sent something (True) or ``deadline`` (time.monotonic) passes (False).

        While U sits idle (a sleep, a wait on its children), the judge tells its pool once
        (``ctx.on_idle``), which then lets another sample use this worker's CPU."""
        seen = None
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            hook = self.ctx.on_idle
            step = left if hook is None else min(left, IDLE_TICK_S)
            if self._poll.poll(math.ceil(step * 1000)):
                return True
            if hook is None:
                continue
            cpu = self.cpu_time()
            if cpu is None:
                self.ctx.on_idle = None
            elif seen is not None and cpu - seen < IDLE_TICK_S * IDLE_SHARE:
                self.ctx.on_idle = None
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
        if self.status is None:
            if self.ctx.mode == "namespaces":
                _kill(self.pid)  # pid 1 dies -> the kernel kills its whole pid namespace
                self.status = _wait(self.pid)
            else:
                _kill(-self.pid)
                _kill(self.pid)
                if self.ctx.uid is not None:
                    kill_uid(self.ctx.uid)
                self.status = _wait(self.pid)
                if self.ctx.uid is not None:
                    kill_uid(self.ctx.uid)
        if self.ctx.mode == "namespaces":
            rootfs.wipe(self.workdir)
        else:
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
