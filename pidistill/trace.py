"""``pidistill trace KEY``: from a quoted number (or a CSV cell) back to the raw data, from Snakemake's own records.

KEY is a key of ``\\result{KEY}`` (it is defined in some study's ``numbers.json``) or a CSV cell
``PATH:ROW:COLUMN`` (PATH relative to the working directory or to the results directory; ROW the
value of the row's ``study``, ``method``, ``policy``, ``round``, ``level``, ``seed`` or
``dataset`` column, or ``col=value[,col=value]``). The trace prints the value, the file it was
read from, and every job that produced an ancestor of that file: its rule, its params, its inputs
with their sha256 (now, and as Snakemake recorded them when the job ran), down to the roots: the
code files, the raw dataset files, and the model's and the datasets' provenance records.

Nothing here keeps books of its own. The DAG, each output's status and plan come from
``snakemake --detailed-summary`` run with the options the build used (``--configfile``,
``--profile``); each job's params and recorded input checksums from Snakemake's metadata
(``snakemake.persistence``, ``.snakemake/metadata``). A link is up to date when Snakemake says so
(status ``ok``, plan ``no update``) and every input still has the checksum recorded for it.
"""

from __future__ import annotations

import csv
import difflib
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from pidistill.io import InputError

CODE_PREFIXES = ("pidistill/", "scripts/")
ROW_COLUMNS = ("study", "method", "policy", "round", "level", "seed", "dataset", "rule")
_RUN_SEGMENT = re.compile(r"^r\d+-([a-z0-9_]+)$")


@dataclass
class Job:
    rule: str
    outputs: list[str]
    inputs: list[str]
    log: str
    status: dict[str, tuple[str, str]] = field(default_factory=dict)  # output -> (status, plan)
    params: list[str] = field(default_factory=list)
    recorded: dict[str, str] = field(default_factory=dict)  # input -> checksum Snakemake recorded

    @property
    def up_to_date(self) -> bool:
        return all(s == "ok" and p == "no update" for s, p in self.status.values())


def snakemake_binary() -> str:
    local = Path(sys.executable).with_name("snakemake")
    return str(local) if local.exists() else (shutil.which("snakemake") or "snakemake")


def detailed_summary(directory: Path, args: list[str]) -> list[dict]:
    """The rows of ``snakemake --detailed-summary`` (one per output file of the DAG)."""
    cmd = [snakemake_binary(), "--detailed-summary", *args]
    proc = subprocess.run(cmd, cwd=directory, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = " ".join((proc.stderr or proc.stdout).strip().splitlines()[-3:])
        raise InputError(f"snakemake --detailed-summary failed in {directory}: {tail}")
    lines = [ln for ln in proc.stdout.splitlines() if ln.count("\t") >= 7]
    if not lines or not lines[0].startswith("output_file\t"):
        raise InputError(f"snakemake --detailed-summary in {directory} printed no summary table")
    header = lines[0].split("\t")
    return [dict(zip(header, ln.split("\t"))) for ln in lines[1:]]


def jobs_from_summary(rows: list[dict]) -> dict[str, Job]:
    """Output file -> the job that made it (outputs of one job share its log file)."""
    by_log: dict[str, Job] = {}
    out: dict[str, Job] = {}
    for row in rows:
        log = row["log-file(s)"]
        key = log if log != "-" else row["output_file"]
        job = by_log.get(key)
        if job is None:
            inputs = [] if row["input-file(s)"] == "-" else row["input-file(s)"].split(",")
            job = by_log[key] = Job(row["rule"], [], inputs, log)
        job.outputs.append(row["output_file"])
        job.status[row["output_file"]] = (row["status"], row["plan"])
        out[row["output_file"]] = job
    return out


def load_metadata(directory: Path, jobs: dict[str, Job]) -> None:
    """Each job's params and recorded input checksums, from Snakemake's persistence records."""
    meta = directory / ".snakemake" / "metadata"
    if not meta.is_dir():
        return
    from snakemake.persistence.file import FilePersistence

    store = FilePersistence(nolock=True, path=directory / ".snakemake")
    for job in {id(j): j for j in jobs.values()}.values():
        record = next((r for o in job.outputs if (r := store._read_record(o)) is not None), None)
        if record is not None:
            job.params = list(record.params or [])
            job.recorded = dict(record.input_checksums or {})


@lru_cache(maxsize=None)
def sha256_of(path: Path) -> str | None:
    """sha256 of a file, or of a directory's files (relative path and content, sorted); None if missing."""
    if path.is_file():
        files = [(None, path)]
    elif path.is_dir():
        files = sorted((p.relative_to(path).as_posix(), p) for p in path.rglob("*") if p.is_file())
    else:
        return None
    h = hashlib.sha256()
    for rel, p in files:
        if rel is not None:
            h.update(rel.encode() + b"\0")
        with open(p, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


# ---- finding the value ---------------------------------------------------------------------------


def find_number(key: str, outputs: list[str], directory: Path) -> tuple[str, str]:
    """(value, numbers.json path) of a ``\\result`` key."""
    candidates = sorted(o for o in outputs if o.endswith("/numbers.json") and "/studies/" in o)
    every: list[str] = []
    for path in candidates:
        file = directory / path
        if not file.is_file():
            continue
        values = json.loads(file.read_text())
        if key in values:
            return values[key], path
        every += list(values)
    close = difflib.get_close_matches(key, every, n=3)
    hint = f" (did you mean {', '.join(close)}?)" if close else ""
    raise InputError(f"no quoted number {key!r} in the {len(candidates)} numbers.json files of this build{hint}")


def _select(rows: list[dict], selector: str, path: str) -> dict:
    if "=" in selector:
        wanted = dict(part.split("=", 1) for part in selector.split(","))
        match = [r for r in rows if all(r.get(k) == v for k, v in wanted.items())]
    else:
        match = [r for r in rows if any(r.get(c) == selector for c in ROW_COLUMNS)]
    if len(match) != 1:
        what = "no row" if not match else f"{len(match)} rows"
        raise InputError(f"{path}: {what} match {selector!r} (a row is named by its {'/'.join(ROW_COLUMNS)} value, "
                         "or by col=value[,col=value])")
    return match[0]


def find_cell(spec: str, outputs: list[str], directory: Path) -> tuple[str, str, dict]:
    """(value, csv path, row) of ``PATH:ROW:COLUMN``."""
    try:
        path, selector, column = spec.rsplit(":", 2)
    except ValueError:
        raise InputError(f"{spec!r}: a CSV cell is PATH:ROW:COLUMN") from None
    matches = [o for o in outputs if o == path or o.endswith("/" + path)]
    if not matches:
        raise InputError(f"{path}: not a file this build makes (give it relative to the working directory or the "
                         "results directory)")
    if len(matches) > 1:
        raise InputError(f"{path}: ambiguous, the build makes {', '.join(sorted(matches))}")
    path = matches[0]
    with open(directory / path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    row = _select(rows, selector, path)
    if column not in row:
        raise InputError(f"{path}: no column {column!r} (columns: {', '.join(row)})")
    return row[column], path, row


# ---- walking the DAG -----------------------------------------------------------------------------


def run_methods(path: str) -> list[str] | None:
    """The methods of a run path's policy (``.../base/r1-gold/...`` -> ['gold']), None if not a run path."""
    parts = path.split("/")
    if "base" not in parts or "runs" not in parts:
        return None
    methods = []
    for part in parts[parts.index("base") + 1:]:
        m = _RUN_SEGMENT.match(part)
        if m:
            methods.append(m.group(1))
    return methods


def ancestors(start: str, jobs: dict[str, Job], method: str | None = None) -> list[Job]:
    """Every job that produced ``start`` or one of its ancestors, nearest first. With ``method``,
    only the runs of that method (and their base) are followed where a job reads several runs."""
    order: list[Job] = []
    seen: set[int] = set()
    todo = [start]
    while todo:
        path = todo.pop(0)
        job = jobs.get(path)
        if job is None or id(job) in seen:
            continue
        seen.add(id(job))
        order.append(job)
        for inp in job.inputs:
            if method is not None and run_methods(inp) not in (None, []) and set(run_methods(inp)) != {method}:
                continue
            todo.append(inp)
    return order


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def describe_model(path: Path, directory: Path) -> tuple[str, bool]:
    """What the model record says, and whether the local model's files still hash to it."""
    rec = _read_json(path) or {}
    if rec.get("source") == "hub":
        return f"hub model {rec.get('id')} at {rec.get('revision')} = commit {rec.get('commit')}", True
    now = sha256_of(directory / rec["path"]) if rec.get("path") else None
    same = now == rec.get("sha256")
    return (f"{rec.get('source', '?')} model {rec.get('path', '')}, files sha256 {rec.get('sha256')} "
            f"({'matches the files' if same else 'the files now hash to ' + str(now)})"), same


def describe_dataset(path: Path, directory: Path) -> list[tuple[str, bool]]:
    """Per split: where its problems came from, and whether the split's file still has the recorded sha256."""
    rec = _read_json(path) or {}
    out = []
    for split, entry in sorted(rec.get("splits", {}).items()):
        now = sha256_of(path.parent / f"{split}.jsonl")
        same = now == entry.get("sha256")
        if entry.get("origin") == "file":
            raw = sha256_of(directory / entry["source"])
            where = f"raw file {entry['source']} sha256 {entry['source_sha256']}"
            if raw != entry["source_sha256"]:
                where += f" (the file now hashes to {raw})"
                same = False
        elif entry.get("origin") == "hub":
            where = "; ".join(f"hub dataset {h['repo']}{':' + h['config'] if h.get('config') else ''} commit {h['commit']}"
                              for h in entry.get("hub", []))
        else:
            where = f"generated by loader {entry.get('loader')} with options {json.dumps(entry.get('options', {}), sort_keys=True)}"
        out.append((f"{split}: {entry.get('problems')} problems from {where}; records sha256 {entry.get('sha256')} "
                    f"({'matches ' + split + '.jsonl' if same else split + '.jsonl now hashes to ' + str(now)})", same))
    return out


@dataclass
class Trace:
    key: str
    value: str
    file: str
    method: str | None
    jobs: list[Job]
    directory: Path
    lines: list[str] = field(default_factory=list)
    stale: list[str] = field(default_factory=list)

    def render(self) -> str:
        return "\n".join(self.lines) + "\n"


def build_trace(key: str, directory: Path, snakemake_args: list[str], follow_all: bool = False) -> Trace:
    directory = Path(directory)
    rows = detailed_summary(directory, snakemake_args)
    jobs = jobs_from_summary(rows)
    outputs = list(jobs)
    method = None
    if re.match(r"^[^:]+\.csv:", key):
        value, file, row = find_cell(key, outputs, directory)
        method = row.get("method") if row.get("method") not in (None, "", "base") else None
    else:
        value, file = find_number(key, outputs, directory)
        parts = key.split("/")
        method = parts[1] if len(parts) > 2 else None
    load_metadata(directory, jobs)
    chain = ancestors(file, jobs, None if follow_all else method)
    if method is not None and not any(run_methods(i) == [method] for j in chain for i in j.inputs):
        method = None  # the key's second part is no method of these runs: follow everything
        chain = ancestors(file, jobs)
    trace = Trace(key, value, file, method, chain, directory)
    _render(trace, jobs)
    return trace


def _status_text(job: Job, changed: list[str]) -> str:
    """'up to date', or what is not: Snakemake's status and plan, then inputs whose checksum changed."""
    bad = sorted({f"snakemake status '{s}', plan '{p}'" for s, p in job.status.values()
                  if not (s == "ok" and p == "no update")})
    if changed:
        bad.append("input changed since the job ran: " + ", ".join(changed))
    return "up to date" if not bad else "STALE (" + "; ".join(bad) + ")"


def _render(trace: Trace, jobs: dict[str, Job]) -> None:
    d = trace.directory
    out = trace.lines
    out.append(f"{trace.key} = {trace.value}")
    out.append(f"  read from {trace.file}")
    if trace.method:
        out.append(f"  following the runs of method {trace.method!r} and their base policy (--all: every input)")
    out.append("")
    out.append(f"Chain: {len(trace.jobs)} jobs, nearest first (from Snakemake's metadata and --detailed-summary)")
    roots: dict[str, tuple[str | None, set[str]]] = {}
    models, datasets = set(), set()
    for n, job in enumerate(trace.jobs, start=1):
        changed = []
        data_inputs = []
        for inp in job.inputs:
            now = sha256_of(d / inp)
            rec = job.recorded.get(inp)
            rec = rec.split(":", 1)[1] if rec and ":" in rec else rec
            if rec is not None and now != rec:
                changed.append(inp)
            if inp not in jobs:
                roots.setdefault(inp, (now, set()))[1].add(job.rule)
            if not inp.startswith(CODE_PREFIXES):
                data_inputs.append((inp, now, rec))
        status = _status_text(job, changed)
        if status != "up to date":
            trace.stale.append(f"{job.rule} -> {', '.join(job.outputs)}: {status}")
        out.append(f"[{n}] rule {job.rule}: {status}")
        for o in job.outputs:
            out.append(f"    output {o}")
        if job.params:
            out.append("    params " + "; ".join(p for p in job.params if p != "'main'"))
        for inp, now, rec in data_inputs:
            made = f"made by {jobs[inp].rule}" if inp in jobs else "a root"
            tag = "" if rec is None else (" (as recorded)" if rec == now else f" (recorded {rec[:12]}, CHANGED)")
            out.append(f"    input {inp} sha256 {now[:12] if now else 'MISSING'}{tag}; {made}")
        n_code = sum(i.startswith(CODE_PREFIXES) for i in job.inputs)
        if n_code:
            out.append(f"    code: {n_code} files (hashes below)")
        for o in job.outputs:
            if o.endswith(".provenance.json") and "/models/" in o:
                models.add(o)
            if o.endswith("/provenance.json") and "/data/" in o:
                datasets.add(o)
        if job.rule == "prepare_dataset":
            datasets.update(o for o in job.outputs if o.endswith("provenance.json"))
        if job.rule == "resolve_model":
            models.update(job.outputs)
    out.append("")
    out.append("Roots (inputs no rule makes):")
    for path in sorted(roots):
        now, rules = roots[path]
        kind = "code" if path.startswith(CODE_PREFIXES) else "file"
        out.append(f"  {kind} {path} sha256 {now or 'MISSING'} (read by {', '.join(sorted(rules))})")
    for m in sorted(models):
        text, same = describe_model(d / m, d)
        out.append(f"  model record {m}: {text}")
        if not same:
            trace.stale.append(f"{m}: the model's files no longer hash to the recorded sha256")
    for ds in sorted(datasets):
        for text, same in describe_dataset(d / ds, d):
            out.append(f"  dataset record {ds}: {text}")
            if not same:
                trace.stale.append(f"{ds}: a split's raw file or records no longer hash to the recorded sha256")
    out.append("")
    if trace.stale:
        out.append(f"NOT up to date: {len(trace.stale)} stale link(s) among {len(trace.jobs)} jobs:")
        out.extend(f"  {s}" for s in trace.stale)
    else:
        out.append(f"Every link is up to date ({len(trace.jobs)} jobs).")


def snakemake_options(configfiles: list[str] | None, profile: str | None, snakefile: str | None) -> list[str]:
    args: list[str] = []
    if snakefile:
        args += ["--snakefile", snakefile]
    if profile:
        args += ["--profile", profile]
    if configfiles:
        args += ["--configfile", *configfiles]
    return args


def main_trace(key: str, directory: str | os.PathLike = ".", configfiles=None, profile=None, snakefile=None,
               follow_all: bool = False) -> tuple[str, bool]:
    """The rendered trace and whether every link is up to date."""
    trace = build_trace(key, Path(directory), snakemake_options(configfiles, profile, snakefile), follow_all)
    return trace.render(), not trace.stale
