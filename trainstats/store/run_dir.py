"""Run-directory layout and its small JSON files (run, attempts, writers).

Every JSON file is written to a temporary name, fsynced and renamed, so a reader (or a process
killed mid-write) never sees half a file. Nothing here is shared between writers: each attempt and
each writer owns its own file, so several processes can write into one run without locks.
"""
from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import re
import secrets
from pathlib import Path
from typing import Any, Mapping, Sequence

from trainstats.store.errors import NotARunDirectory, UnsupportedSchemaVersion
from trainstats.store.schema import SCHEMA_VERSION, ValueColumn

__all__ = [
    "MONITOR_DIR",
    "RUN_FILE",
    "create_or_open_run",
    "monitor_dir",
    "load_run_json",
    "allocate_attempt",
    "list_attempts",
    "list_writer_status",
    "write_json_atomic",
    "utc_now",
]

RUN_FILE = "run.json"
MONITOR_DIR = "monitor"
FORMAT = "trainstats-run"
_ATTEMPT_FILE = re.compile(r"^attempt-(\d{4,})\.json$")


def monitor_dir(run_dir: str | os.PathLike) -> Path:
    """``RUN_DIR/monitor``: the live memorization monitor's folder (TensorBoard event files,
    ``signals.parquet``, ``onset.json``; see docs/monitor.md). Not created here."""
    return Path(run_dir) / MONITOR_DIR


def utc_now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="milliseconds")


def write_json_atomic(path: Path, obj: Any, *, exclusive: bool = False) -> bool:
    """Write ``obj`` as JSON to ``path`` atomically. With ``exclusive``, never replace an existing
    file and return False if one is there (a hard link is the atomic "create if absent")."""
    path = Path(path)
    tmp = path.with_name(f".tmp-{path.name}-{os.getpid()}-{secrets.token_hex(4)}")
    data = json.dumps(obj, indent=2, sort_keys=False, default=str).encode("utf-8")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    try:
        if exclusive:
            try:
                os.link(tmp, path)
            except FileExistsError:
                return False
        else:
            os.replace(tmp, path)
            tmp = None
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)
    return True


def _versions(extra: Mapping[str, str] | None) -> dict[str, str]:
    import numpy
    import pyarrow

    from trainstats import __version__

    out = {
        "trainstats": __version__,
        "python": platform.python_version(),
        "numpy": numpy.__version__,
        "pyarrow": pyarrow.__version__,
    }
    out.update(extra or {})
    return out


def _read_json(path: Path, what: str) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise NotARunDirectory(
            f"{path}:{e.lineno}:{e.colno}: {what} is not valid JSON ({e.msg})"
        ) from None


def load_run_json(run_dir: Path | str) -> dict[str, Any]:
    """Read and check ``run.json``; raise ``NotARunDirectory`` / ``UnsupportedSchemaVersion``."""
    run_dir = Path(run_dir)
    path = run_dir / RUN_FILE
    if not run_dir.is_dir():
        raise NotARunDirectory(
            f"{run_dir} is not a trainstats run directory: it does not exist or is not a folder "
            f"(expected a folder holding {RUN_FILE} and rows/, written by trainstats.RunWriter)"
        )
    try:
        meta = _read_json(path, RUN_FILE)
    except FileNotFoundError:
        found = sorted(p.name for p in run_dir.iterdir())[:8]
        raise NotARunDirectory(
            f"{run_dir} is not a trainstats run directory: no {RUN_FILE} (found: {found or 'nothing'}; "
            f"expected {RUN_FILE} and rows/, written by trainstats.RunWriter)"
        ) from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        got = meta.get("format") if isinstance(meta, dict) else type(meta).__name__
        raise NotARunDirectory(f"{path}: format is {got!r}; expected {FORMAT!r}")
    version = meta.get("schema_version")
    if version != SCHEMA_VERSION:
        raise UnsupportedSchemaVersion(
            f"{path}: schema_version is {version!r}; this trainstats reads schema_version "
            f"{SCHEMA_VERSION}. Use the trainstats version that wrote the run, or upgrade."
        )
    return meta


def create_or_open_run(
    run_dir: Path,
    columns: Sequence[ValueColumn],
    *,
    recorder: str,
    config: Mapping[str, Any] | None,
    noise_manifest: str | None,
    versions: Mapping[str, str] | None,
) -> tuple[dict[str, Any], bool]:
    """Create ``run.json`` (if absent) and return ``(metadata, created)``.

    A run that already exists must declare the same value columns."""
    run_dir.mkdir(parents=True, exist_ok=True)
    for sub in ("rows", "samples", "attempts", "writers"):
        (run_dir / sub).mkdir(exist_ok=True)
    meta = {
        "format": FORMAT,
        "schema_version": SCHEMA_VERSION,
        "run_id": secrets.token_hex(8),
        "created_at": utc_now(),
        "versions": _versions(versions),
        "recorder": recorder,
        "config": dict(config or {}),
        "value_columns": [c.to_json() for c in columns],
        "noise_manifest": noise_manifest,
    }
    try:
        json.dumps(meta["config"])
    except TypeError as e:
        raise TypeError(f"config must be JSON-serialisable: {e}") from None
    created = write_json_atomic(run_dir / RUN_FILE, meta, exclusive=True)
    if created:
        return meta, True
    existing = load_run_json(run_dir)
    declared = [ValueColumn.from_json(c) for c in existing.get("value_columns", [])]
    want = [(c.name, c.dtype) for c in columns]
    have = [(c.name, c.dtype) for c in declared]
    if want != have:
        raise ValueError(
            f"{run_dir / RUN_FILE} declares value columns {have}; this writer declares {want}. "
            "A resumed run must record the same columns; use a new run directory for a new layout."
        )
    return existing, False


def _attempt_path(run_dir: Path, attempt: int) -> Path:
    return run_dir / "attempts" / f"attempt-{attempt:04d}.json"


def list_attempts(run_dir: Path) -> list[dict[str, Any]]:
    """All attempt records, oldest first."""
    out = []
    adir = Path(run_dir) / "attempts"
    if not adir.is_dir():
        return out
    for p in sorted(adir.iterdir()):
        if _ATTEMPT_FILE.match(p.name):
            out.append(_read_json(p, "attempt record"))
    return sorted(out, key=lambda a: a["attempt"])


def allocate_attempt(run_dir: Path, attempt: int | None, *, noise_manifest: str | None) -> int:
    """Return the attempt number to write as: ``attempt`` (joined or created), or the next free one."""
    record = lambda n: {"attempt": n, "started_at": utc_now(), "pid": os.getpid(),
                        "host": platform.node(), "noise_manifest": noise_manifest}
    if attempt is not None:
        if not isinstance(attempt, int) or attempt < 1:
            raise ValueError(f"attempt must be a positive int or None; received {attempt!r}")
        write_json_atomic(_attempt_path(run_dir, attempt), record(attempt), exclusive=True)
        return attempt
    existing = [a["attempt"] for a in list_attempts(run_dir)]
    n = max(existing, default=0) + 1
    while not write_json_atomic(_attempt_path(run_dir, n), record(n), exclusive=True):
        n += 1  # another process took it first
    return n


def list_writer_status(run_dir: Path) -> list[dict[str, Any]]:
    wdir = Path(run_dir) / "writers"
    if not wdir.is_dir():
        return []
    return [_read_json(p, "writer status") for p in sorted(wdir.glob("a*-w*.json"))]
