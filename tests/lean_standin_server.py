"""A stand-in kimina-lean-server *program* (standard library only): what a verification job starts from
an installation (pidistill/verifiers/lean_process.py), for the tests. Like the real server it reads
LEAN_SERVER_HOST / LEAN_SERVER_PORT / LEAN_SERVER_MAX_REPLS / LEAN_SERVER_REPL_PATH /
LEAN_SERVER_PROJECT_DIR, answers GET /health and POST /api/check, and starts its "REPLs" in sessions
of their own (as the real one does with os.setsid). It judges a proof by its text: ``omega`` is a
valid proof with the standard axioms, anything else a Lean error.

STANDIN_MODE: ``serve`` (default), ``exit`` (fails at start-up), ``mute`` (listens, never healthy).
STANDIN_RECORD: a file to write the environment it saw and its REPLs' pids to.
"""

import json
import os
import subprocess
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

STD = "'two_add' depends on axioms: [propext]"
MODE = os.environ.get("STANDIN_MODE", "serve")


def judge(snippet):
    code, sid = snippet["code"], snippet["id"]
    if "omega" in code:
        return {"id": sid, "time": 0.1, "response": {"env": 0, "messages": [{"severity": "info", "data": STD}]}}
    return {"id": sid, "time": 0.1, "response": {"messages": [
        {"severity": "error", "pos": {"line": 6, "column": 2}, "data": "linarith failed"}]}}


class Handler(BaseHTTPRequestHandler):
    def log_message(self, fmt, *args):
        print("standin:", fmt % args, flush=True)

    def do_GET(self):
        if MODE == "mute":
            return self._send(503, {"detail": "starting"})
        self._send(200, {"status": "ok"})

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self._send(200, {"results": [judge(s) for s in body["snippets"]]})

    def _send(self, code, obj):
        data = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def main():
    print("standin: starting", flush=True)
    if MODE == "exit":
        print("standin: cannot find the REPL binary", flush=True)
        sys.exit(3)
    repls = [subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"], start_new_session=True)
             for _ in range(int(os.environ.get("LEAN_SERVER_MAX_REPLS", "1")))]
    if os.environ.get("STANDIN_RECORD"):
        with open(os.environ["STANDIN_RECORD"], "w") as fh:
            json.dump({"env": {k: v for k, v in os.environ.items() if k.startswith(("LEAN_SERVER_", "ELAN"))},
                       "path": os.environ["PATH"].split(os.pathsep), "cwd": os.getcwd(),
                       "repls": [p.pid for p in repls], "pid": os.getpid()}, fh)
    server = ThreadingHTTPServer((os.environ["LEAN_SERVER_HOST"], int(os.environ["LEAN_SERVER_PORT"])), Handler)
    server.serve_forever()


if __name__ == "__main__":
    main()
