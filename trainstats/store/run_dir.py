"""A run's small JSON files: ``run.json``, one record per attempt, one status per writer.

Every JSON file is written to a temporary name, fsynced and renamed, so a reader (or a process
killed mid-write) never sees half a file. Nothing here is shared between writers: each attempt and
each writer owns its own file, so several processes can write into one run without locks. Where
the files live is :mod:`trainstats.store.layout`'s business.
"""
from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import secrets
from pathlib import Path
from typing import Any, Mapping, Sequence

from trainstats.store.durable import write_json_atomic
from trainstats.store.errors import NotARunDirectory, UnsupportedSchemaVersion
from trainstats.store.layout import LEGACY_VERSION, RUN_FILE, Layout
from trainstats.store.schema import SCHEMA_VERSION, ValueColumn

__all__ = [
    "claim_attempt",
    "create_or_open_run",
    "monitor_dir",
    "files_dir",
    "load_run_json",
    "allocate_attempt",
    "list_attempts",
    "list_writer_status",
    "utc_now",
]

FORMAT = "trainstats-run"


def monitor_dir(run_dir: str | os.PathLike) -> Path:
    """The live memorization monitor's folder of a run (TensorBoard event files, ``signals.parquet``,
    ``onset.json``; see docs/monitor.md), inside the metadata folder where Parquet readers of the run
    directory do not look. Not created here."""
    return Layout(Path(run_dir)).monitor_dir


def files_dir(run_dir: str | os.PathLike) -> Path:
    """A folder for a recorder's own files about the run (e.g. the demo's ``vocab.json``), inside the
    metadata folder where Parquet readers of the run directory do not look. Not created here."""
    return Layout(Path(run_dir)).files_dir


def utc_now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="milliseconds")


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


def load_run_json(layout: Layout) -> dict[str, Any]:
    """Read and check the run's ``run.json``; raise ``NotARunDirectory`` / ``UnsupportedSchemaVersion``."""
    run_dir = layout.root
    expected = f"expected {Path('_trainstats') / RUN_FILE} and split=*/epoch=*/ row parts, written by trainstats.RunWriter"
    if not run_dir.is_dir():
        raise NotARunDirectory(
            f"{run_dir} is not a trainstats run directory: it does not exist or is not a folder ({expected})")
    path = layout.run_file
    try:
        meta = _read_json(path, RUN_FILE)
    except FileNotFoundError:
        found = sorted(p.name for p in run_dir.iterdir())[:8]
        raise NotARunDirectory(
            f"{run_dir} is not a trainstats run directory: no {RUN_FILE} (found: {found or 'nothing'}; {expected})"
        ) from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        got = meta.get("format") if isinstance(meta, dict) else type(meta).__name__
        raise NotARunDirectory(f"{path}: format is {got!r}; expected {FORMAT!r}")
    version = meta.get("schema_version")
    want = LEGACY_VERSION if layout.legacy else SCHEMA_VERSION
    if version != want:
        raise UnsupportedSchemaVersion(
            f"{path}: schema_version is {version!r}; this trainstats reads schema_version {SCHEMA_VERSION} "
            f"(and {LEGACY_VERSION}, the older layout with {RUN_FILE} at the top). Use the trainstats version "
            "that wrote the run, or upgrade."
        )
    return meta


def create_or_open_run(
    layout: Layout,
    columns: Sequence[ValueColumn],
    *,
    recorder: str,
    config: Mapping[str, Any] | None,
    noise_manifest: str | None,
    versions: Mapping[str, str] | None,
) -> tuple[dict[str, Any], bool]:
    """Create ``run.json`` (if absent) and return ``(metadata, created)``.

    A run that already exists must declare the same value columns."""
    layout.make_dirs()
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
    created = write_json_atomic(layout.run_file, meta, exclusive=True, what="run.json")
    if created:
        return meta, True
    existing = load_run_json(layout)
    declared = [ValueColumn.from_json(c) for c in existing.get("value_columns", [])]
    want = [(c.name, c.dtype) for c in columns]
    have = [(c.name, c.dtype) for c in declared]
    if want != have:
        raise ValueError(
            f"{layout.run_file} declares value columns {have}; this writer declares {want}. "
            "A resumed run must record the same columns; use a new run directory for a new layout."
        )
    return existing, False


def list_attempts(layout: Layout) -> list[dict[str, Any]]:
    """All attempt records, oldest first (a legacy run's, and those a halted migration copied)."""
    files = layout.attempt_files() + (layout.attempt_files(legacy=True) if layout.legacy else [])
    by_number = {}
    for p in files:
        rec = _read_json(p, "attempt record")
        by_number.setdefault(int(rec["attempt"]), rec)
    return [by_number[n] for n in sorted(by_number)]


def allocate_attempt(layout: Layout, attempt: int | None, *, noise_manifest: str | None) -> int:
    """Return the attempt number to write as: ``attempt`` (joined or created), or the next free one."""
    record = lambda n: {"attempt": n, "started_at": utc_now(), "pid": os.getpid(),
                        "host": platform.node(), "noise_manifest": noise_manifest}
    if attempt is not None:
        if isinstance(attempt, bool) or not isinstance(attempt, int) or attempt < 1:
            raise ValueError(f"attempt must be a positive int or None; received {attempt!r}")
        write_json_atomic(layout.attempt_file(attempt), record(attempt), exclusive=True, what="attempt")
        return attempt
    n = max(layout.attempt_numbers(), default=0) + 1
    while not write_json_atomic(layout.attempt_file(n), record(n), exclusive=True, what="attempt"):
        n += 1  # another process took it first
    return n


def claim_attempt(run_dir: str | os.PathLike, *, noise_manifest: Any = None) -> int:
    """Claim the next attempt number of a run directory (created or not) for a group of writers.

    For one job of several processes (the workers of a ``MultiWorkerMirroredStrategy``): one process
    claims the number and hands it to the others (the Keras capture does it with one all-reduce);
    each then opens ``RunWriter(run_dir, ..., attempt=n, writer_id=<its own>)``. The claim is a file
    created atomically under ``_trainstats/attempts/``, so two concurrent claims never get the same
    number; an attempt whose writers never write a row supersedes nothing.

    ``noise_manifest``: what the writers will be given (recorded in the attempt file: a path is
    resolved, a mapping or table is recorded as ``"<mapping>"`` / ``"<table>"``)."""
    layout = Layout(Path(run_dir))
    if layout.legacy:
        raise UnsupportedSchemaVersion(
            f"{run_dir} was written by an older trainstats (schema_version 1: run.json at the top). "
            f"Upgrade it in place with `trainstats migrate {run_dir}`, then resume.")
    layout.make_dirs()
    if noise_manifest is None or isinstance(noise_manifest, str) and not noise_manifest:
        described = None
    elif isinstance(noise_manifest, (str, os.PathLike)):
        described = str(Path(noise_manifest).resolve())
    else:
        described = "<mapping>" if isinstance(noise_manifest, Mapping) else "<table>"
    return allocate_attempt(layout, None, noise_manifest=described)


def list_writer_status(layout: Layout) -> list[dict[str, Any]]:
    files = layout.writer_files() + (layout.writer_files(legacy=True) if layout.legacy else [])
    by_name: dict[str, Any] = {}
    for p in files:
        by_name.setdefault(p.name, _read_json(p, "writer status"))
    return [by_name[n] for n in sorted(by_name)]
