"""A dataset's raw file from a pinned URL: downloaded once, checked against its sha256, written
atomically (an interrupted download leaves no file that looks complete).

For the datasets that no hub loader serves (miniF2F's Lean 4 files live in GitHub repositories),
the config gives ``source_url`` (pinned to a commit) and ``source_sha256``; rule
``download_raw_dataset`` fetches the file on the submit host, and ``prepare_dataset`` reads it like
any local source (its provenance records the path and the same sha256).
"""

from __future__ import annotations

import hashlib
import time
import urllib.error
import urllib.request
from pathlib import Path

from pidistill.io import atomic_path

CHUNK = 1 << 16


class DownloadError(RuntimeError):
    pass


def download(url: str, dest: str | Path, sha256: str, *, timeout_s: float = 60.0, retries: int = 3,
             backoff_s: float = 2.0) -> dict:
    """Fetch ``url`` to ``dest``; a file whose sha256 is not ``sha256`` is an error and is not kept.
    Transient failures (a connection error, HTTP 5xx) are retried ``retries`` times."""
    last = ""
    for attempt in range(retries + 1):
        if attempt:
            time.sleep(backoff_s * attempt)
        digest, size = hashlib.sha256(), 0
        try:
            with urllib.request.urlopen(url, timeout=timeout_s) as response, atomic_path(dest) as tmp:
                with open(tmp, "wb") as fh:
                    while chunk := response.read(CHUNK):
                        digest.update(chunk)
                        size += len(chunk)
                        fh.write(chunk)
                if digest.hexdigest() != sha256.lower():
                    raise DownloadError(f"{url}: sha256 {digest.hexdigest()} ({size} bytes), expected {sha256}: "
                                        "the file changed or the URL is not pinned to a commit; nothing written")
            return {"url": url, "path": str(dest), "sha256": digest.hexdigest(), "bytes": size}
        except urllib.error.HTTPError as exc:
            last = f"HTTP {exc.code}"
            if exc.code < 500:
                break
        except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
            last = str(getattr(exc, "reason", exc))
    raise DownloadError(f"{url}: download failed ({last}) after {attempt + 1} attempt(s); no file written")
