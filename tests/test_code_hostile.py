"""Hostile programs: each must FAIL (never a false pass), be contained, and not hurt the verifier.

Every program runs only inside the verifier's sandbox (never directly), with a process-count
limit set before any candidate code runs.
"""

from __future__ import annotations

import os
import socket
import time

import pytest

from pidistill.problems import Problem
from pidistill.verifiers import VerifierSettings
from pidistill.verifiers.code import verify_batch

P = Problem(id="h", domain="code", prompt="", entry_point="f",
            tests=["assert f(2) == 5", "assert f(3) == 7"], public_tests=["assert f(2) == 5"])
HE = Problem(id="he", domain="code", prompt="", entry_point="f", code_prefix="def f(x):\n    \"\"\"2x+1\"\"\"\n",
             test_program="def check(candidate):\n    assert candidate(2) == 5\n    assert candidate(3) == 7\n")
GOOD = "def f(x):\n    return 2 * x + 1\n"
SECRET = "/root/pidistill-hostile-secret.txt"


def settings(**kw):
    s = VerifierSettings(workers=1, timeout_s=kw.pop("timeout_s", 3.0), memory_mb=256, progress=False)
    for k, v in kw.items():
        setattr(s, k, v)
    return s


def run(code, problem=P, **kw):
    return verify_batch([(problem, code)], settings(**kw))[0]


def assert_fails(code, problem=P, **kw):
    v = run(code, problem, **kw)
    assert v.passed is False, (v.reason, v.feedback)
    assert v.score == 0.0
    return v


def _namespaces() -> bool:
    return run(GOOD).extra["isolation"] == "namespaces"


ns_only = pytest.mark.skipif(not _namespaces(), reason="namespace isolation unavailable here")


def test_control_good_program_passes():
    v = run(GOOD)
    assert v.passed and v.reason == "ok" and v.test_results == [True, True]
    assert run(GOOD, HE).passed


@pytest.mark.parametrize("exit_code", [
    "import sys\nsys.exit(0)", "exit()", "quit()", "raise SystemExit(0)", "import os\nos._exit(0)",
])
def test_exit_at_load(exit_code):
    assert_fails(exit_code + "\n" + GOOD)
    assert_fails(exit_code + "\n" + GOOD, HE)


@pytest.mark.parametrize("exit_code", ["import sys; sys.exit(0)", "raise SystemExit", "import os; os._exit(0)"])
def test_exit_inside_call(exit_code):
    v = assert_fails(f"def f(x):\n    {exit_code}\n")
    assert assert_fails(f"def f(x):\n    {exit_code}\n", HE)


def test_execv_replaces_process():
    assert_fails("import os\ndef f(x):\n    os.execv('/bin/true', ['true'])\n")


def test_atexit_and_excepthook():
    code = ("import atexit, sys, os\natexit.register(lambda: os._exit(0))\n"
            "sys.excepthook = lambda *a: None\ndef f(x):\n    raise ValueError('x')\n")
    assert_fails(code)
    assert_fails(code, HE)


def test_kill_parent_and_group():
    code = ("import os, signal\n"
            "for target in (os.getppid(), 0, -1, 1):\n"
            "    try: os.kill(target, signal.SIGKILL)\n"
            "    except Exception: pass\n"
            "try: os.killpg(os.getpgid(0), signal.SIGKILL)\nexcept Exception: pass\n"
            "def f(x): return 0\n")
    assert_fails(code)
    assert run(GOOD).passed  # the verifier survived


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
    v = assert_fails("def f(x):\n    open('big', 'wb').write(b'x' * (8 << 20))\n    return 2 * x + 1\n")


def test_write_outside_workdir():
    target = "/tmp/pidistill-hostile-written"
    if os.path.exists(target):
        os.remove(target)
    code = (f"def f(x):\n    for p in ({target!r}, '/work/pidistill-hostile', '/root/pidistill-hostile'):\n"
            "        try: open(p, 'w').write('pwned')\n        except OSError: pass\n    return -1\n")
    assert_fails(code)
    assert not os.path.exists(target)
    assert not os.path.exists("/work/pidistill-hostile") and not os.path.exists("/root/pidistill-hostile")


def test_read_secrets_is_blocked():
    if os.geteuid() != 0:
        pytest.skip("needs root to plant a root-only secret")
    with open(SECRET, "w") as fh:
        fh.write("s3cret")
    os.chmod(SECRET, 0o600)
    try:
        # the function returns 2x+1 only if it could read the secret: a pass means a leak
        code = (f"def f(x):\n    try:\n        data = open({SECRET!r}).read()\n    except OSError:\n        return -1\n"
                "    return 2 * x + 1 if data == 's3cret' else -2\n")
        v = run(code)
        assert v.passed is False
    finally:
        os.remove(SECRET)


@ns_only
def test_host_files_invisible_in_namespaces_mode():
    # the sandbox root holds only read-only system/Python dirs: no repo, no home, no /proc, no /etc
    code = ("import os\ndef f(x):\n    seen = [p for p in ('/work/main/pidistill', '/home', '/proc/1', '/etc/passwd', '/root/.bashrc')"
            " if os.path.exists(p)]\n    return 2 * x + 1 if seen else -1\n")
    v = run(code)
    assert v.passed is False and v.reason == "wrong_answer"


@ns_only
def test_network_is_blocked():
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    port = srv.getsockname()[1]
    try:
        code = (f"import socket\ndef f(x):\n    try:\n        socket.create_connection(('127.0.0.1', {port}), timeout=1)\n"
                "        return 2 * x + 1\n    except OSError:\n        return -1\n")
        v = run(code)
        assert v.passed is False and v.reason == "wrong_answer"
    finally:
        srv.close()


def test_detached_children_are_killed():
    marker = "/tmp/pidistill-hostile-child-alive"
    if os.path.exists(marker):
        os.remove(marker)
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
    s = settings(timeout_s=1.5)
    s.workers = 2
    vs = verify_batch(items, s)
    assert [v.passed for v in vs] == [False, True, False, True]
    assert time.monotonic() - t0 < 15
