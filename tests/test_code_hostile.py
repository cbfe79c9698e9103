"""Hostile programs: each must FAIL (never a false pass), be contained, and not hurt the verifier.

The whole battery runs twice: as whoever runs the tests (root here) and as an ordinary user (a
fresh uid whose own files sit under /tmp, through ``asuser.OrdinaryUser``), both in the default
isolation. After every test that user's canaries are checked: their files (in their own
directory and in /tmp) intact and nothing new written there, a process of theirs (and the
verifier run as them) still alive, and no process of theirs, or of the sandbox's uids, left
behind. Every program runs only inside the verifier's sandbox, never directly.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pytest
from asuser import OrdinaryUser, namespaces_unavailable, unavailable_reason

from pidistill.problems import Problem
from pidistill.verifiers import Verdict, VerifierSettings
from pidistill.verifiers.code import verify_batch
from pidistill.verifiers.sandbox.candidate import SANDBOX_UID_BASE

P = Problem(id="h", domain="code", prompt="", entry_point="f",
            tests=["assert f(2) == 5", "assert f(3) == 7"], public_tests=["assert f(2) == 5"])
HE = Problem(id="he", domain="code", prompt="", entry_point="f", code_prefix="def f(x):\n    \"\"\"2x+1\"\"\"\n",
             test_program="def check(candidate):\n    assert candidate(2) == 5\n    assert candidate(3) == 7\n")
GOOD = "def f(x):\n    return 2 * x + 1\n"


pytestmark = pytest.mark.skipif(namespaces_unavailable() is not None, reason="namespace isolation unavailable here")


class Invoker:
    """The verifier in this process, as whoever runs the tests; its own files in a 0700 dir."""

    name = "invoker"

    def __init__(self):
        self.uid = os.geteuid()
        self.home = Path(tempfile.mkdtemp(prefix="pidistill-invoker-"))
        self.python = sys.executable

    def verify(self, items, settings: dict) -> list[Verdict]:
        s = VerifierSettings(progress=False)
        for k, v in settings.items():
            setattr(s, k, v)
        return verify_batch(items, s)

    def spawn(self, argv):
        return subprocess.Popen(argv)

    def left_behind(self, keep: set[int]) -> set[int]:
        """Our children and sandbox-uid processes still alive (beyond ``keep``)."""
        out = set()
        for p in Path("/proc").iterdir():
            if not p.name.isdigit() or int(p.name) in keep:
                continue
            try:
                ppid = int((p / "stat").read_text().rsplit(")", 1)[1].split()[1])
                uid = p.stat().st_uid
            except (OSError, IndexError, ValueError):
                continue
            if ppid == os.getpid() or SANDBOX_UID_BASE <= uid < SANDBOX_UID_BASE + 1000:
                out.add(int(p.name))
        return out

    def close(self):
        import shutil

        shutil.rmtree(self.home, ignore_errors=True)


class User:
    """The verifier run by an ordinary user (``asuser.OrdinaryUser``)."""

    name = "ordinary-user"

    def __init__(self):
        self.user = OrdinaryUser()
        self.uid = self.user.uid
        self.home = self.user.home
        self.python = self.user.python

    def verify(self, items, settings: dict) -> list[Verdict]:
        known = {f.name for f in dataclasses.fields(Verdict)} - {"extra"}
        return [Verdict(**{k: d[k] for k in known if k in d}, extra={k: v for k, v in d.items() if k not in known})
                for d in self.user.verify(items, settings)]

    def spawn(self, argv):
        return self.user.spawn(argv)

    def left_behind(self, keep: set[int]) -> set[int]:
        return self.user.processes() - keep - {self.user.server.pid}

    def close(self):
        self.user.close()


class Canaries:
    """What a hostile program must not touch: the runner's files, a process of theirs, /tmp."""

    def __init__(self, runner):
        self.runner = runner
        tag = uuid.uuid4().hex[:8]
        self.private = runner.home / "canary.txt"  # the user's own file, in their own directory
        self.shared = Path(tempfile.gettempdir()) / f"pidistill-canary-{tag}.txt"  # theirs, in /tmp
        for path, mode in ((self.private, 0o600), (self.shared, 0o644)):
            path.write_text(f"canary {tag}")
            os.chmod(path, mode)
            os.chown(path, runner.uid, runner.uid)
        self.text = f"canary {tag}"
        self.home_listing = sorted(os.listdir(runner.home))
        self.tmp_owned = self._tmp_owned()
        self.process = runner.spawn(["sleep", "100000"])
        time.sleep(0.2)

    def _tmp_owned(self) -> set[str]:
        out = set()
        for entry in os.scandir(tempfile.gettempdir()):
            try:
                if entry.stat(follow_symlinks=False).st_uid == self.runner.uid:
                    out.add(entry.name)
            except OSError:
                pass
        return out

    def check(self) -> None:
        for path in (self.private, self.shared):
            assert path.read_text() == self.text, f"{path} was changed"
        assert sorted(os.listdir(self.runner.home)) == self.home_listing, "something was written in the user's own directory"
        if self.runner.uid != 0:  # (root's /tmp entries come and go with everything else root runs)
            assert self._tmp_owned() <= self.tmp_owned, "something of the user's was written in /tmp"
        assert self.process.poll() is None, "a process of the user was killed"
        if isinstance(self.runner, User):
            assert self.runner.user.server.poll() is None, "the verifier run by the user was killed"
        left: set[int] = set()
        for _ in range(50):
            left = self.runner.left_behind({self.process.pid})
            if not left:
                break
            time.sleep(0.1)
        assert not left, f"processes left behind: {sorted(left)}"

    def close(self) -> None:
        self.process.kill()
        self.process.wait()
        for path in (self.private, self.shared):
            path.unlink(missing_ok=True)


@pytest.fixture(scope="module", params=["invoker", "ordinary-user"])
def runner(request):
    if request.param == "ordinary-user" and unavailable_reason():
        pytest.skip(unavailable_reason())
    r = Invoker() if request.param == "invoker" else User()
    yield r
    r.close()


@pytest.fixture(scope="module")
def canaries(runner):
    c = Canaries(runner)
    yield c
    c.close()


RUNNER = {}


@pytest.fixture(autouse=True)
def _guarded(runner, canaries):
    RUNNER["now"] = runner
    yield
    canaries.check()


def settings(**kw) -> dict:
    return {"workers": 1, "timeout_s": 3.0, "memory_mb": 256, **kw}


def run(code, problem=P, **kw) -> Verdict:
    return RUNNER["now"].verify([(problem, code)], settings(**kw))[0]


def assert_fails(code, problem=P, **kw):
    v = run(code, problem, **kw)
    assert v.passed is False, (v.reason, v.feedback)
    assert v.score == 0.0
    return v


def test_control_good_program_passes():
    v = run(GOOD)
    assert v.passed and v.reason == "ok" and v.test_results == [True, True]
    assert v.extra["isolation"] == "namespaces"
    assert run(GOOD, HE).passed


@pytest.mark.parametrize("exit_code", [
    "import sys\nsys.exit(0)", "exit()", "quit()", "raise SystemExit(0)", "import os\nos._exit(0)",
])
def test_exit_at_load(exit_code):
    assert_fails(exit_code + "\n" + GOOD)
    assert_fails(exit_code + "\n" + GOOD, HE)


@pytest.mark.parametrize("exit_code", ["import sys; sys.exit(0)", "raise SystemExit", "import os; os._exit(0)"])
def test_exit_inside_call(exit_code):
    assert_fails(f"def f(x):\n    {exit_code}\n")
    assert_fails(f"def f(x):\n    {exit_code}\n", HE)


def test_execv_replaces_process():
    assert_fails("import os\ndef f(x):\n    os.execv('/bin/true', ['true'])\n")


def test_atexit_and_excepthook():
    code = ("import atexit, sys, os\natexit.register(lambda: os._exit(0))\n"
            "sys.excepthook = lambda *a: None\ndef f(x):\n    raise ValueError('x')\n")
    assert_fails(code)
    assert_fails(code, HE)


def test_kill_parent_and_group():
    # kill(-1) as the user would reach every process of theirs (the canary's sleep, the verifier)
    code = ("import os, signal\n"
            "for target in (os.getppid(), 0, -1, 1):\n"
            "    try: os.kill(target, signal.SIGKILL)\n"
            "    except Exception: pass\n"
            "try: os.killpg(os.getpgid(0), signal.SIGKILL)\nexcept Exception: pass\n"
            "def f(x): return 0\n")
    assert_fails(code)
    code = "import os, signal\ndef f(x):\n    os.kill(-1, signal.SIGKILL)\n    return 2 * x + 1\n"
    assert_fails(code)
    assert run(GOOD).passed  # the verifier survived (the guard checks the user's other process)


def test_signal_processes_by_number():
    # the user's processes are invisible to the candidate: pids mean nothing in its namespace
    code = ("import os, signal\ndef f(x):\n    hit = 0\n    for pid in range(2, 40000):\n"
            "        try:\n            os.kill(pid, signal.SIGKILL)\n            hit += 1\n"
            "        except OSError:\n            pass\n    return 2 * x + 1 if hit == 0 else -hit\n")
    v = run(code, timeout_s=5.0)
    assert v.passed, (v.reason, v.feedback)  # it reached no process at all


@pytest.mark.parametrize("cls", ["object", "int", "float", "str", "tuple"])
def test_always_equal_objects(cls):
    code = (f"class E({cls}):\n    def __eq__(self, o): return True\n    def __ne__(self, o): return False\n"
            "    __hash__ = object.__hash__\n    def __bool__(self): return True\n"
            f"def f(x):\n    return E({'' if cls == 'object' else '0'})\n")
    assert_fails(code)
    assert_fails(code, HE)


def test_patch_builtins_and_assertion():
    code = ("import builtins\nbuiltins.AssertionError = type('A', (BaseException,), {})\n"
            "builtins.isinstance = lambda *a: True\nbuiltins.print = lambda *a, **k: None\n"
            "def f(x): return -1\n")
    assert_fails(code)
    assert_fails(code, HE)


def test_patch_harness_via_frames_and_gc():
    code = ("import sys, gc\n"
            "for o in gc.get_objects():\n"
            "    if isinstance(o, dict) and 'check' in o: o['check'] = lambda c: None\n"
            "def f(x):\n    fr = sys._getframe()\n    while fr:\n"
            "        fr.f_globals['check'] = lambda c: None\n        fr = fr.f_back\n    return -1\n")
    assert_fails(code)
    assert_fails(code, HE)


def test_print_success_markers():
    code = ("import sys\nfor m in ('PASSED', 'OK', 'All tests passed', '{\"passed\": true}', '[[true, \"\"]]'):\n"
            "    print(m); sys.stderr.write(m + '\\n')\n"
            "def f(x):\n    print('\\x00' * 10 + '[[true, \"\"], [true, \"\"]]')\n    return -1\n")
    assert_fails(code)


def test_read_marker_from_env_argv_stdin_proc():
    code = ("import os, sys\nenv = dict(os.environ)\nargv = list(sys.argv)\n"
            "try: data = sys.stdin.read()\nexcept Exception: data = ''\n"
            "try: cmd = open('/proc/self/cmdline','rb').read() + open('/proc/1/environ','rb').read()\n"
            "except Exception: cmd = b''\n"
            "def f(x):\n    return [env, argv, data, cmd]\n")
    v = assert_fails(code)
    assert v.reason == "wrong_answer"


def test_fake_protocol_reply():
    # write a made-up 'success' reply on every inherited descriptor, then die quietly
    code = ("import os, json, struct\n"
            "msg = json.dumps({'ok': 5}).encode()\n"
            "for fd in range(3, 64):\n"
            "    try: os.write(fd, struct.pack('>I', len(msg)) + msg)\n"
            "    except OSError: pass\n"
            "def f(x):\n    os._exit(0)\n")
    assert_fails(code)


def test_fork_bomb_is_contained():
    t0 = time.monotonic()
    code = ("import os\ndef f(x):\n    while True:\n        try: os.fork()\n        except OSError: pass\n")
    v = assert_fails(code, timeout_s=2.0)
    assert v.reason in ("timeout", "crashed", "resource_limit")
    assert time.monotonic() - t0 < 20
    assert run(GOOD).passed


def test_process_limit_holds():
    # nproc (default 8) processes at once, the candidate included
    code = ("import os, time\ndef f(x):\n    n = 0\n    for _ in range(30):\n        try:\n"
            "            if os.fork() == 0:\n                time.sleep(5)\n                os._exit(0)\n"
            "            n += 1\n        except OSError:\n            break\n    return n\n")
    p = Problem(id="n", domain="code", prompt="", entry_point="f", tests=["assert f(0) == 7"], public_tests=["assert f(0) == 7"])
    v = run(code, p)
    assert v.passed, v.feedback  # 7 children, then EAGAIN: the limit is the candidate's own, exactly


def test_memory_bomb():
    v = assert_fails("def f(x):\n    a = []\n    while True: a.append(bytearray(50 * 2**20))\n")
    assert v.reason in ("memory_limit", "runtime_error", "crashed", "resource_limit")


def test_infinite_loop_at_load_and_in_call():
    t0 = time.monotonic()
    assert assert_fails("while True: pass\n" + GOOD, timeout_s=1.0).reason == "timeout"
    assert assert_fails("def f(x):\n    while True: pass\n", timeout_s=1.0).reason == "timeout"
    assert time.monotonic() - t0 < 10


def test_ignores_sigterm_and_sleeps():
    code = ("import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
            "signal.signal(signal.SIGINT, signal.SIG_IGN)\ndef f(x):\n    time.sleep(60)\n")
    t0 = time.monotonic()
    assert assert_fails(code, timeout_s=1.0).reason == "timeout"
    assert time.monotonic() - t0 < 10


def test_huge_output():
    v = assert_fails("import sys\ndef f(x):\n    while True: sys.stdout.write('x' * 65536)\n", timeout_s=3.0)
    assert v.reason in ("output_limit", "runtime_error", "timeout")


def test_file_size_limit():
    assert_fails("def f(x):\n    open('big', 'wb').write(b'x' * (8 << 20))\n    return 2 * x + 1\n")


def _targets(canaries) -> list[str]:
    home = str(canaries.runner.home)
    return [f"/tmp/pidistill-hostile-{uuid.uuid4().hex[:6]}", "/work/pidistill-hostile", "/root/pidistill-hostile",
            home + "/pidistill-hostile", str(Path.cwd() / "pidistill-hostile")]


def test_write_outside_workdir(canaries):
    targets = _targets(canaries)
    # a pass would need one of these writes to succeed (the candidate's own /tmp is its working
    # directory, so a write there is allowed: it must not reach the host's /tmp)
    code = (f"def f(x):\n    ok = 0\n    for p in {targets!r}:\n"
            "        try:\n            open(p, 'w').write('pwned')\n            ok += not p.startswith('/tmp/')\n"
            "        except OSError:\n            pass\n    return 2 * x + 1 if ok else -1\n")
    assert assert_fails(code).reason == "wrong_answer"
    assert not [t for t in targets if os.path.exists(t)]


def test_delete_or_change_the_users_files(canaries):
    paths = [str(canaries.private), str(canaries.shared), str(canaries.runner.home)]
    code = (f"import os, shutil\ndef f(x):\n    done = 0\n    for p in {paths!r}:\n"
            "        for act in (lambda: open(p, 'w').write('x'), lambda: os.remove(p), lambda: shutil.rmtree(p),\n"
            "                    lambda: os.chmod(p, 0o777), lambda: os.rename(p, p + '.moved')):\n"
            "            try:\n                act()\n                done += 1\n            except OSError:\n                pass\n"
            "    return 2 * x + 1\n")
    assert run(code).passed  # whatever it managed in its own view (its /tmp is its own) ...
    canaries.check()  # ... the user's files are as they were


def test_read_private_files_is_blocked(canaries):
    secret = canaries.runner.home / "secret.txt"
    secret.write_text("s3cret")
    os.chmod(secret, 0o600)
    os.chown(secret, canaries.runner.uid, canaries.runner.uid)
    paths = [str(secret), str(canaries.private), str(canaries.shared)]
    try:
        # the function returns 2x+1 only if it could read one of them: a pass means a leak
        code = (f"def f(x):\n    for p in {paths!r}:\n        try:\n            open(p).read()\n"
                "            return 2 * x + 1\n        except OSError:\n            pass\n    return -1\n")
        assert assert_fails(code).reason == "wrong_answer"
    finally:
        secret.unlink()
        canaries.home_listing = sorted(os.listdir(canaries.runner.home))


def test_host_files_invisible(canaries):
    # the sandbox root holds only read-only system/Python dirs: no repo, no home, no /proc, no /etc
    paths = ["/work/main/pidistill", "/home", "/proc/1", "/etc/passwd", "/root/.bashrc", str(canaries.runner.home),
             str(canaries.shared), str(Path(__file__).resolve())]
    code = (f"import os\ndef f(x):\n    seen = [p for p in {paths!r} if os.path.exists(p)]\n"
            "    return 2 * x + 1 if seen else -1\n")
    assert assert_fails(code).reason == "wrong_answer"


def test_network_is_blocked():
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(4)
    srv.setblocking(False)
    port = srv.getsockname()[1]
    name = f"pidistill-probe-{uuid.uuid4().hex[:8]}"
    unix = socket.socket(socket.AF_UNIX)
    unix.bind("\0" + name)  # an abstract unix socket: reachable from any process in this network namespace
    unix.listen(4)
    unix.setblocking(False)
    try:
        code = (f"import socket\ndef f(x):\n    for family, addr in ((socket.AF_INET, ('127.0.0.1', {port})), (socket.AF_UNIX, '\\0{name}')):\n"
                "        try:\n            s = socket.socket(family)\n            s.settimeout(1)\n            s.connect(addr)\n"
                "            s.sendall(b'hello')\n            return 2 * x + 1\n        except OSError:\n            pass\n    return -1\n")
        assert assert_fails(code).reason == "wrong_answer"
        for listener in (srv, unix):
            with pytest.raises(BlockingIOError):
                listener.accept()  # nobody connected
    finally:
        srv.close()
        unix.close()


def test_detached_children_are_killed():
    marker = f"/tmp/pidistill-hostile-child-alive-{uuid.uuid4().hex[:6]}"
    code = ("import os, time\nif os.fork() == 0:\n    os.setsid()\n    if os.fork() == 0:\n"
            "        time.sleep(1.5)\n"
            f"        open({marker!r}, 'w').write('alive')\n"
            "    os._exit(0)\ndef f(x): return 2 * x + 1\n")
    v = run(code)
    time.sleep(2.5)
    assert not os.path.exists(marker)
    assert v.passed  # the program itself is correct; its detached child must not survive


def test_threads_cannot_outlive_or_fake():
    code = ("import threading, os, time\n"
            "threading.Thread(target=lambda: (time.sleep(0.2), os._exit(0)), daemon=True).start()\n"
            "def f(x):\n    time.sleep(5)\n")
    assert_fails(code, timeout_s=2.0)


def test_no_capabilities_left():
    # a candidate that could mount, or chroot, or change its uid could undo the sandbox
    code = ("import ctypes, os\nlibc = ctypes.CDLL(None, use_errno=True)\ndef f(x):\n    ok = []\n"
            "    ok.append(libc.mount(b'none', b'/tmp', b'tmpfs', 0, None) == 0)\n"
            "    ok.append(libc.umount2(b'/usr', 2) == 0)\n"
            "    try:\n        os.chroot('/tmp')\n        ok.append(True)\n    except OSError:\n        pass\n"
            "    try:\n        os.setuid(0)\n        ok.append(True)\n    except OSError:\n        pass\n"
            "    return 2 * x + 1 if any(ok) else -1\n")
    assert assert_fails(code).reason == "wrong_answer"


def test_recursion_and_deep_values():
    assert_fails("def f(x):\n    return f(x)\n")
    assert_fails("def f(x):\n    a = []\n    for _ in range(100000): a = [a]\n    return a\n")
    assert_fails("def f(x):\n    a = []\n    a.append(a)\n    return a\n")


def test_hidden_tests_not_leaked():
    code = "def f(x):\n    raise ValueError('input was %r' % (x,))\n"
    problem = Problem(id="s", domain="code", prompt="", entry_point="f",
                      tests=["assert f(2) == 5", "assert f(987654) == 1975309"], public_tests=["assert f(2) == 5"])
    v = run("def f(x):\n    if x == 2: return 5\n    raise ValueError('input was %r' % (x,))\n", problem)
    assert v.passed is False and v.test_results == [True, False]
    assert "987654" not in v.feedback and "1975309" not in v.feedback
    assert "Hidden test 2" in v.feedback and "ValueError" in v.feedback
    v2 = run(code, problem)
    assert "assert f(2) == 5" in v2.feedback  # public tests may be quoted


def test_many_hostile_in_parallel_do_not_hang():
    items = [(P, "def f(x):\n    while True: pass\n"), (P, GOOD), (P, "import os\nos._exit(0)"), (P, GOOD)]
    t0 = time.monotonic()
    vs = RUNNER["now"].verify(items, settings(timeout_s=1.5, workers=2))
    assert [v.passed for v in vs] == [False, True, False, True]
    assert time.monotonic() - t0 < 15


def test_sleepers_do_not_hold_the_pool():
    # one worker, three samples that sleep to their deadline: each gives its CPU to the next
    sleeper = "import time\ndef f(x):\n    time.sleep(60)\n"
    items = [(P, sleeper)] * 3 + [(P, GOOD)] * 3
    t0 = time.monotonic()
    vs = RUNNER["now"].verify(items, settings(timeout_s=2.0, workers=1))
    assert [v.passed for v in vs] == [False] * 3 + [True] * 3
    assert [v.reason for v in vs[:3]] == ["timeout"] * 3
    assert time.monotonic() - t0 < 2.0 * 3  # serialized, they would take 6 s at least


def test_sigkill_of_the_verifier_leaves_nothing(canaries):
    script = ("import sys; sys.path.insert(0, %r)\n"
              "from pidistill.problems import Problem\nfrom pidistill.verifiers import VerifierSettings\n"
              "from pidistill.verifiers.code import verify_batch\n"
              "P = Problem(id='h', domain='code', prompt='', entry_point='f', tests=['assert f(1) == 1'])\n"
              "verify_batch([(P, 'import time\\ndef f(x):\\n    time.sleep(60)\\n')] * 4, VerifierSettings(workers=2, timeout_s=30, progress=False))\n"
              % str(Path(__file__).resolve().parents[1]))
    proc = canaries.runner.spawn([canaries.runner.python, "-c", script])  # a verifier run by that user
    time.sleep(3)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    # its zygotes read the end of their input, their pid namespaces take the candidates with them
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and canaries.runner.left_behind({canaries.process.pid}):
        time.sleep(0.2)
    assert not canaries.runner.left_behind({canaries.process.pid})
