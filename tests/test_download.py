"""download_raw_dataset's fetch: a pinned file, checked by sha256, against a local HTTP server."""

from __future__ import annotations

import hashlib
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from pidistill.download import DownloadError, download

BODY = b'{"name": "mathd_algebra_1", "split": "test"}\n' * 2000


@pytest.fixture
def server():
    state = {"fail_first": 0, "calls": 0}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            state["calls"] += 1
            if self.path == "/missing.jsonl":
                self.send_error(404)
                return
            if state["fail_first"] > 0:
                state["fail_first"] -= 1
                self.send_error(503)
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(BODY)))
            self.end_headers()
            self.wfile.write(BODY)

        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", state
    httpd.shutdown()


SHA = hashlib.sha256(BODY).hexdigest()


def test_a_pinned_file_is_downloaded_and_checked(server, tmp_path):
    url, state = server
    dest = tmp_path / "raw" / "minif2f.jsonl"
    got = download(f"{url}/minif2f.jsonl", dest, SHA, backoff_s=0)
    assert dest.read_bytes() == BODY and got["sha256"] == SHA and got["bytes"] == len(BODY)
    assert [p.name for p in dest.parent.iterdir()] == ["minif2f.jsonl"]  # no temporary file left


def test_a_changed_file_is_an_error_and_nothing_is_written(server, tmp_path):
    url, _ = server
    dest = tmp_path / "minif2f.jsonl"
    with pytest.raises(DownloadError, match="expected 0{64}.*not pinned"):
        download(f"{url}/minif2f.jsonl", dest, "0" * 64, backoff_s=0)
    assert list(tmp_path.iterdir()) == []


def test_server_errors_are_retried_and_a_missing_file_is_not(server, tmp_path):
    url, state = server
    state["fail_first"] = 2
    download(f"{url}/minif2f.jsonl", tmp_path / "a.jsonl", SHA, retries=3, backoff_s=0)
    assert state["calls"] == 3
    state["calls"] = 0
    with pytest.raises(DownloadError, match="HTTP 404.*after 1 attempt"):
        download(f"{url}/missing.jsonl", tmp_path / "b.jsonl", SHA, retries=3, backoff_s=0)
    assert state["calls"] == 1 and not (tmp_path / "b.jsonl").exists()
    state["fail_first"] = 10
    with pytest.raises(DownloadError, match="HTTP 503.*after 3 attempt"):
        download(f"{url}/minif2f.jsonl", tmp_path / "c.jsonl", SHA, retries=2, backoff_s=0)


def test_an_unreachable_host_is_an_error(tmp_path):
    with pytest.raises(DownloadError, match="download failed"):
        download("http://127.0.0.1:9/minif2f.jsonl", tmp_path / "x", SHA, retries=0, timeout_s=2)
