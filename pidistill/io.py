"""Atomic, deterministic file I/O shared by every stage.

Every writer goes to a temporary file beside the target and is renamed into place only when
complete, so an interrupted job never leaves a half-written output that looks finished. JSON is
written with sorted keys and no timestamps so a rebuild is byte-identical.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import re
import tempfile
import zlib
from pathlib import Path
from typing import Any, Iterable, Iterator


class InputError(ValueError):
    """Bad input: the message names the file (and line, record or field) that is wrong and what was
    expected. The command line prints it as one ``error:`` line (no traceback)."""


def current_umask() -> int:
    """The process's umask, read without changing it where the kernel shows it (Linux)."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def honour_umask(directory: str | os.PathLike) -> None:
    """Give every file under ``directory`` the mode a new file of the user gets (0666 less the
    umask). For files that other libraries write (safetensors saves with mkstemp's 0600)."""
    mode = 0o666 & ~current_umask()
    for path in sorted(Path(directory).rglob("*")):
        if path.is_file() and not path.is_symlink():
            os.chmod(path, mode)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` only on success.

    The file gets the mode any other tool's new file would (0666 less the umask), not the 0600
    that ``mkstemp`` gives, so results on a lab's shared filesystem are as readable as the user
    chose."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.fchmod(fd, 0o666 & ~current_umask())
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _utf8_json(text: str) -> str:
    """JSON text that UTF-8 can hold. A string with a lone surrogate (a completion read from JSON
    that had ``"\\udcff"``, which other tools write for undecodable bytes) cannot be encoded as
    UTF-8; in JSON text (``ensure_ascii=False``) such a character only occurs inside a string, so it
    is written as the same ``\\udcXX`` escape and the row reads back as it was."""
    if _LONE_SURROGATE.search(text) is None:
        return text
    return _LONE_SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def dumps(obj: Any) -> str:
    return _utf8_json(json.dumps(obj, sort_keys=True, ensure_ascii=False))


def write_json(path: str | os.PathLike, obj: Any) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(_utf8_json(json.dumps(obj, sort_keys=True, indent=2, ensure_ascii=False)) + "\n", encoding="utf-8")


def _open_input(path: Path):
    """``path`` opened for binary reading; a missing, unreadable or non-regular file is an InputError."""
    try:
        return open(path, "rb")
    except FileNotFoundError:
        raise InputError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise InputError(f"{path}: is a directory, expected a file") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot be read ({exc.strerror or exc})") from None


def _json_error(where: str, exc: json.JSONDecodeError, truncated: bool = False) -> InputError:
    hint = " (the file ends without a newline in this record: it looks truncated)" if truncated else ""
    return InputError(f"{where}: invalid JSON: {exc.msg} (column {exc.colno}){hint}")


def _loads(where: str, text: str, truncated: bool = False) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise _json_error(where, exc, truncated) from None
    except RecursionError:
        raise InputError(f"{where}: invalid JSON: nested too deeply") from None


def read_json(path: str | os.PathLike) -> Any:
    path = Path(path)
    with _open_input(path) as fh:
        data = fh.read()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise InputError(f"{path}:{line}: not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}:{exc.lineno}: invalid JSON: {exc.msg} (column {exc.colno})") from None
    except RecursionError:
        raise InputError(f"{path}: invalid JSON: nested too deeply") from None


def write_jsonl(path: str | os.PathLike, rows: Iterable[Any]) -> int:
    n = 0
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as fh:
            for row in rows:
                fh.write(dumps(row) + "\n")
                n += 1
    return n


GZIP_MAGIC = b"\x1f\x8b"


def iter_jsonl_lines(path: str | os.PathLike, *, errors: str = "strict") -> Iterator[tuple[int, dict]]:
    """``(line number, object)`` for every non-blank line of a JSON Lines file.

    ``errors="surrogateescape"`` reads bytes that are not UTF-8 inside a string as lone surrogates
    (U+DC80..U+DCFF) instead of stopping: for model output, where one odd byte is the sample's
    problem, not the file's. Anything else wrong (not JSON, not an object) is an InputError naming
    the file and line.
    """
    path = Path(path)
    with _open_input(path) as fh:
        for lineno, raw in enumerate(fh, start=1):
            if lineno == 1 and raw.startswith(GZIP_MAGIC):
                raise InputError(f"{path}: is gzip-compressed; expected plain JSON Lines (decompress it first)")
            try:
                line = raw.decode("utf-8-sig" if lineno == 1 else "utf-8", errors)
            except UnicodeDecodeError as exc:
                raise InputError(f"{path}:{lineno}: not UTF-8 text (byte 0x{raw[exc.start]:02x} at column {exc.start + 1})") from None
            if not line.strip():
                continue
            row = _loads(f"{path}:{lineno}", line, truncated=not raw.endswith(b"\n"))
            if not isinstance(row, dict):
                raise InputError(f"{path}:{lineno}: expected a JSON object, got {_json_type(row)}")
            yield lineno, row


def iter_jsonl(path: str | os.PathLike, *, errors: str = "strict") -> Iterator[dict]:
    for _, row in iter_jsonl_lines(path, errors=errors):
        yield row


def read_jsonl(path: str | os.PathLike, *, errors: str = "strict") -> list[dict]:
    return list(iter_jsonl(path, errors=errors))


def _json_type(value: Any) -> str:
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean", type(None): "null",
            int: "a number", float: "a number"}.get(type(value), type(value).__name__)


def read_text(path: str | os.PathLike) -> str:
    """The text of a UTF-8 file, decompressed when it is gzip (by its content; a name ending in
    ``.gz`` must hold gzip). Missing, truncated, corrupt or non-UTF-8 files are InputErrors."""
    path = Path(path)
    with _open_input(path) as fh:
        data = fh.read()
    if data.startswith(GZIP_MAGIC):
        try:
            data = gzip.decompress(data)
        except EOFError:
            raise InputError(f"{path}: truncated gzip file (the compressed data ends before its end marker)") from None
        except (gzip.BadGzipFile, zlib.error) as exc:
            raise InputError(f"{path}: corrupt gzip file ({exc})") from None
    elif path.suffix == ".gz":
        raise InputError(f"{path}: not a gzip file (its name ends in .gz but it does not start with the gzip magic bytes)")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise InputError(f"{path}:{line}: not UTF-8 text (byte 0x{data[exc.start]:02x})") from None


def read_records(path: str | os.PathLike) -> list[tuple[str, dict]]:
    """The records of a data file in one of the layouts datasets are published in: JSON Lines, or a
    single JSON array of objects (either gzip-compressed or not). Each record comes with where it
    is, for messages: ``"file:LINE"`` (JSON Lines) or ``"file: record N"`` (array)."""
    path = Path(path)
    text = read_text(path)
    if text.lstrip().startswith("["):
        try:
            rows = json.loads(text)
        except json.JSONDecodeError as exc:
            at_end = exc.pos >= len(text.rstrip()) or exc.msg.startswith("Unterminated string")  # runs to the end
            cut = " (the array ends before it is closed: the file looks truncated)" if at_end else ""
            raise InputError(f"{path}:{exc.lineno}: invalid JSON: {exc.msg} (column {exc.colno}){cut}") from None
        except RecursionError:
            raise InputError(f"{path}: invalid JSON: nested too deeply") from None
        out = []
        for n, row in enumerate(rows, start=1):
            if not isinstance(row, dict):
                raise InputError(f"{path}: record {n}: expected a JSON object, got {_json_type(row)}")
            out.append((f"{path}: record {n}", row))
        return out
    lines = text.split("\n")
    out = []
    for lineno, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"{path}:{lineno}"
        try:
            row = _loads(where, line, truncated=lineno == len(lines) and not text.endswith("\n"))
        except InputError as exc:
            if out:
                raise
            raise InputError(f"{exc} (expected JSON Lines, one object per line, or one JSON array of objects)") from None
        if not isinstance(row, dict):
            raise InputError(f"{where}: expected a JSON object, got {_json_type(row)}")
        out.append((where, row))
    return out


def write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
