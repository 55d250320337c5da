"""Crash-safe file operations: every change a reader can see is one atomic rename, link or unlink.

Each such change is a *publication point*. A process killed between two of them leaves the
directory as it was after the first: complete files under their final names, temporary files only
under names no reader opens. :func:`published` counts the points; the test suite sets
``TRAINSTATS_CRASH_TEST_KILL_AT=N`` to have the process SIGKILL itself right after the N-th one (and
``TRAINSTATS_CRASH_TEST_LOG=path`` to list them), which is how crash safety is checked at every point.

Several processes may write one run: :func:`run_lock` is an advisory ``flock`` on the run's lock file,
held while a part is published or superseded rows are archived (on platforms without ``fcntl`` it is
a no-op, and only one writing process per run is safe there).
"""
from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import threading
from pathlib import Path
from typing import Any, Iterator

__all__ = ["published", "fsync_file", "fsync_dir", "replace", "link", "unlink", "write_json_atomic", "run_lock"]

_lock = threading.Lock()
_count = 0
_kill_at: int | None = None
_log: str | None = None


def _configure() -> None:
    global _kill_at, _log
    if _kill_at is None:
        _kill_at = int(os.environ.get("TRAINSTATS_CRASH_TEST_KILL_AT", "0") or 0)
        _log = os.environ.get("TRAINSTATS_CRASH_TEST_LOG") or None


def published(what: str, path: Path | str) -> None:
    """Record one publication point (and, under the crash test, die right after the chosen one)."""
    global _count
    _configure()
    if not _kill_at and not _log:
        return
    with _lock:
        _count += 1
        n = _count
        if _log:
            with open(_log, "a", encoding="utf-8") as f:
                f.write(f"{n}\t{what}\t{path}\n")
        if n == _kill_at:
            os.kill(os.getpid(), signal.SIGKILL)


def fsync_file(path: Path | str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: Path | str) -> None:
    """Make a rename in ``path`` durable across power loss (a no-op where directories cannot be opened)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def replace(src: Path, dst: Path, what: str) -> None:
    """Atomically move ``src`` (complete and fsynced) to ``dst``, replacing what was there."""
    os.replace(src, dst)
    fsync_dir(dst.parent)
    published(what, dst)


def link(src: Path, dst: Path, what: str) -> bool:
    """Atomically create ``dst`` as a second name of ``src``; False when ``dst`` already exists.
    Falls back to copy-then-rename on file systems without hard links."""
    try:
        os.link(src, dst)
    except FileExistsError:
        return False
    except OSError:
        import shutil

        tmp = dst.with_name(f".tmp-{dst.name}-{secrets.token_hex(4)}")
        shutil.copyfile(src, tmp)
        fsync_file(tmp)
        if dst.exists():
            os.unlink(tmp)
            return False
        os.replace(tmp, dst)
    fsync_dir(dst.parent)
    published(what, dst)
    return True


def unlink(path: Path, what: str) -> None:
    os.unlink(path)
    fsync_dir(path.parent)
    published(what, path)


def write_json_atomic(path: Path, obj: Any, *, exclusive: bool = False, what: str = "json",
                      sync: bool = True) -> bool:
    """Write ``obj`` as JSON to ``path`` atomically (temp file, fsync, rename). With ``exclusive``,
    never replace an existing file and return False if one is there (a hard link is the atomic
    "create if absent"). ``sync=False`` skips the fsyncs: still atomic for readers and for a killed
    process, but a power loss may leave the previous version (for counters that are rewritten often)."""
    path = Path(path)
    tmp = path.with_name(f".tmp-{path.name}-{os.getpid()}-{secrets.token_hex(4)}")
    data = json.dumps(obj, indent=2, default=str).encode("utf-8")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        if sync:
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
    if sync:
        fsync_dir(path.parent)
    published(what, path)
    return True


@contextlib.contextmanager
def run_lock(lock_file: Path) -> Iterator[None]:
    """Exclusive advisory lock on ``lock_file`` (created when absent) for the ``with`` block."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    fd = os.open(lock_file, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        try:
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)
