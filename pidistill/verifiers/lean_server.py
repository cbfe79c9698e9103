"""A thin client of kimina-lean-server (project-numina/kimina-lean-server, API 2.x), the Lean 4 +
Mathlib checker the paper's formal study runs on the cluster.

One request checks a batch: ``POST {url}/api/check`` with ``{"snippets": [{"id", "code"}],
"timeout": s, "reuse": true}`` (and ``Authorization: Bearer <key>`` when the server has an API
key: the environment's ``LEAN_SERVER_API_KEY``, as the server's own client reads it). Each result
carries ``id``, ``time`` and either ``error`` (a string: ``... timed out ...`` is a timeout,
anything else the server's failure) or ``response``, the Lean REPL's answer: ``messages``
(``severity`` error / warning / info / trace), ``sorries``, or a bare ``message`` when the REPL
itself failed. Statuses: ``valid`` (no error message, no sorry), ``sorry``, ``error``,
``timeout``, ``repl_error``, ``server_error``.

Failures of the transport are retried a bounded number of times with a growing pause (HTTP 429
"No available REPLs", 5xx, a dropped connection, a reply that does not come within the request
timeout, a reply that is not the API's JSON); when the retries are spent every snippet of the
batch is a ``server_error``, and the formal verifier stops (``CheckerUnavailable``) rather than
count unjudged proofs as failures. A refused request (401 wrong key,
422 a request the server does not accept, 404 no such server) is not retried: it is the
config's error and stops the job with a message naming the URL.

The official ``kimina-client`` package is not used: it fails to import on Python 3.11.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import time
import urllib.error
import urllib.request
from typing import Sequence

from pidistill.verifiers.formal import CheckResult

API_KEY_ENV = "LEAN_SERVER_API_KEY"
RETRY_STATUS = {429, 500, 502, 503, 504}
REQUEST_SLACK_S = 90.0  # beyond the Lean timeout: the server may wait up to 60 s for a free REPL


class LeanServerError(ValueError):
    """The server refused the request (not a transient failure): a config error (the CLI prints it on one line)."""


class LeanServer:
    name = "lean-server"
    language = "lean4"

    def __init__(self, url: str, *, timeout_s: float = 60.0, retries: int = 3, backoff_s: float = 1.0,
                 request_timeout_s: float | None = None, api_key: str | None = None, batch_size: int = 64):
        self.url = url.rstrip("/")
        self.timeout_s = timeout_s
        self.retries = retries
        self.backoff_s = backoff_s
        self.request_timeout_s = request_timeout_s if request_timeout_s is not None else timeout_s + REQUEST_SLACK_S
        self.api_key = api_key if api_key is not None else os.environ.get(API_KEY_ENV)
        self.batch_size = batch_size
        self.requests = 0  # HTTP requests sent (retries included)

    def _post(self, path: str, body: dict) -> dict:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        req = urllib.request.Request(self.url + path, data=json.dumps(body).encode(), headers=headers, method="POST")
        self.requests += 1
        with urllib.request.urlopen(req, timeout=self.request_timeout_s) as resp:
            return json.loads(resp.read().decode())

    def health(self) -> bool:
        try:
            with urllib.request.urlopen(self.url + "/health", timeout=10) as resp:
                return json.loads(resp.read().decode()).get("status") == "ok"
        except (OSError, ValueError, http.client.HTTPException):
            return False

    def check(self, snippets: Sequence[tuple[str, str]]) -> list[CheckResult]:
        out: list[CheckResult] = []
        for start in range(0, len(snippets), self.batch_size):
            out += self._check_batch(snippets[start:start + self.batch_size])
        return out

    def _check_batch(self, snippets: Sequence[tuple[str, str]]) -> list[CheckResult]:
        body = {"snippets": [{"id": sid, "code": code} for sid, code in snippets],
                "timeout": max(1, int(round(self.timeout_s))), "reuse": True}
        failure = ""
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(self.backoff_s * 2 ** (attempt - 1))
            try:
                reply = self._post("/api/check", body)
                return parse_results(reply, [sid for sid, _ in snippets])
            except urllib.error.HTTPError as exc:
                detail = _detail(exc)
                if exc.code not in RETRY_STATUS:
                    raise LeanServerError(f"{self.url}/api/check refused the request: HTTP {exc.code} {detail} "
                                          "(check verifier.server_url and LEAN_SERVER_API_KEY)") from None
                failure = f"HTTP {exc.code} {detail}"
            except (urllib.error.URLError, socket.timeout, TimeoutError, ConnectionError,
                    http.client.HTTPException) as exc:
                failure = f"{type(exc).__name__}: {getattr(exc, 'reason', exc)}"
            except ValueError as exc:  # not JSON, or not the API's JSON
                failure = f"bad reply: {exc}"
        detail = f"{self.url} failed {self.retries + 1} times, last: {failure}"[:300]
        return [CheckResult("server_error", detail=detail) for _ in snippets]


def _detail(exc: urllib.error.HTTPError) -> str:
    try:
        return str(json.loads(exc.read().decode()).get("detail", ""))[:200]
    except (ValueError, AttributeError, OSError):
        return ""


def classify(result: dict) -> CheckResult:
    """One ``/api/check`` result as a CheckResult (the statuses of the module docstring)."""
    took = result.get("time")
    took = float(took) if isinstance(took, (int, float)) else None
    if result.get("error") is not None:
        error = str(result["error"])
        return CheckResult("timeout" if "timed out" in error else "server_error", time_s=took, detail=error[:300])
    response = result.get("response")
    if not isinstance(response, dict):
        raise ValueError(f"result {result.get('id')!r} has neither error nor response")
    messages = response.get("messages") or []
    if "message" in response and not messages and "env" not in response:
        return CheckResult("repl_error", time_s=took, detail=str(response["message"])[:300])
    if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
        raise ValueError(f"result {result.get('id')!r}: messages is not a list of objects")
    if any(m.get("severity") == "error" for m in messages):
        return CheckResult("error", messages, took)
    if response.get("sorries"):
        return CheckResult("sorry", messages, took)
    return CheckResult("valid", messages, took)


def parse_results(reply: dict, ids: Sequence[str]) -> list[CheckResult]:
    """The results of a reply, in the order of ``ids``; a reply missing one is not the API's."""
    results = reply.get("results") if isinstance(reply, dict) else None
    if not isinstance(results, list):
        raise ValueError("no 'results' list")
    by_id = {str(r.get("id")): r for r in results if isinstance(r, dict)}
    missing = [i for i in ids if i not in by_id]
    if missing:
        raise ValueError(f"no result for snippet(s) {missing[:3]}")
    return [classify(by_id[i]) for i in ids]
