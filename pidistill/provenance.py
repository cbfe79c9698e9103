"""Provenance: which exact model weights and dataset files a result came from.

Hub names move (``main`` gets new commits), so the pipeline resolves every hub model and dataset to
a commit once, loads it at that commit, and writes the commit into the outputs:

* ``resolve_model`` writes ``models/<model>.provenance.json``; every generation and training job
  loads the base model at the commit recorded there, so all jobs of a run use the same weights even
  if the hub repository changes while the run is under way.
* ``prepare_dataset`` writes ``data/<dataset>/provenance.json``: per split, the loader, its options,
  each hub dataset loaded (repository, configuration, commit) or the local source file's sha256, and
  the sha256 of the problem records written.

Local files (the demo's pretrained model, local models and datasets) are identified by content hash.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import re
from pathlib import Path

from pidistill.io import read_json

COMMIT = re.compile(r"^[0-9a-f]{40}$")
_HUB_LOADS: contextvars.ContextVar[list | None] = contextvars.ContextVar("hub_loads", default=None)


class RevisionError(RuntimeError):
    pass


def resolve_hub_revision(repo_id: str, repo_type: str = "model", revision: str | None = None,
                         cache_dir: str | Path | None = None) -> str:
    """The commit that ``revision`` (default ``main``) of a hub repository names.

    Asks the hub; offline (or when the hub is unreachable) reads the reference from the local
    Hugging Face cache, where an earlier download left it. A 40-hex revision is already a commit.
    """
    rev = revision or "main"
    if COMMIT.match(rev):
        return rev
    from huggingface_hub import HfApi, constants
    from huggingface_hub.file_download import repo_folder_name

    online_error = None
    if not constants.HF_HUB_OFFLINE:
        try:
            sha = HfApi().repo_info(repo_id, repo_type=repo_type, revision=rev).sha
            if sha:
                return sha
        except Exception as exc:  # noqa: BLE001 - unreachable hub, missing repo: try the cache, then report both
            online_error = exc
    cache = Path(cache_dir or constants.HF_HUB_CACHE)
    ref = cache / repo_folder_name(repo_id=repo_id, repo_type=repo_type) / "refs" / rev
    if ref.is_file():
        sha = ref.read_text().strip()
        if COMMIT.match(sha):
            return sha
    why = f"hub: {online_error}" if online_error else "HF_HUB_OFFLINE is set"
    raise RevisionError(f"cannot resolve {repo_type} {repo_id!r} at revision {rev!r}: {why}; "
                        f"and no reference {ref} in the local cache")


def sha256_path(path: str | Path) -> str:
    """sha256 of a file, or of a directory's files (relative paths and contents, in sorted order)."""
    path = Path(path)
    h = hashlib.sha256()
    if path.is_file():
        files = [(path.name, path)]
    elif path.is_dir():
        files = sorted((p.relative_to(path).as_posix(), p) for p in path.rglob("*") if p.is_file())
    else:
        raise FileNotFoundError(f"{path}: no such file or directory")
    for rel, p in files:
        if path.is_dir():
            h.update(rel.encode() + b"\0")
        with open(p, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


def model_provenance(spec: dict, path: str | Path) -> dict:
    """What ``resolve_model`` records for one configured model."""
    source = spec["source"]
    if source == "hub":
        return {"source": "hub", "id": spec["id"], "revision": spec.get("revision") or "main",
                "commit": resolve_hub_revision(spec["id"], "model", spec.get("revision"))}
    return {"source": source, "path": str(path), "sha256": sha256_path(path)}


def pinned_revision(provenance_file: str | Path) -> str | None:
    """The commit a job must load its hub model at (None for local models)."""
    return read_json(provenance_file).get("commit")


# ---- datasets -------------------------------------------------------------------------------


def hub_dataset_revision(repo_id: str, config: str | None = None, revision: str | None = None) -> str:
    """Resolve a hub dataset's commit for loading, and note the load for ``collect_hub_loads``."""
    sha = resolve_hub_revision(repo_id, "dataset", revision)
    loads = _HUB_LOADS.get()
    if loads is not None:
        entry = {"repo": repo_id, "config": config, "revision": revision or "main", "commit": sha}
        if entry not in loads:
            loads.append(entry)
    return sha


@contextlib.contextmanager
def collect_hub_loads():
    """Within the block, every hub dataset a loader loads is appended to the yielded list."""
    loads: list[dict] = []
    token = _HUB_LOADS.set(loads)
    try:
        yield loads
    finally:
        _HUB_LOADS.reset(token)
