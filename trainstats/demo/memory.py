"""Peak resident memory of the demo: this process and its worker processes together.

``getrusage`` tells one process's peak; the demo trains runs in worker processes side by side, so its
real footprint is the *sum* of the resident sets alive at the same moment. :class:`TreeMemory` samples
that sum (``VmRSS`` of this process and all its descendants, from ``/proc``) on a background thread
and keeps the maximum, in MiB (2^20 bytes).
Sampling every ``interval_s`` seconds can miss a peak shorter than that; the per-process peaks of
``getrusage`` bound it from below and are recorded too.
"""
from __future__ import annotations

import os
import threading
from pathlib import Path

__all__ = ["TreeMemory", "process_peak_rss_mb", "tree_rss_mb", "release_memory"]

_PROC = Path("/proc")


def process_peak_rss_mb() -> float | None:
    """Peak resident memory of this process so far, in MiB (None where the OS does not say)."""
    try:
        import resource
    except ImportError:  # Windows
        return None
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)  # Linux: KiB


def _children(pid: int) -> list[int]:
    kids: list[int] = []
    try:
        for task in (_PROC / str(pid) / "task").iterdir():
            kids += [int(c) for c in (task / "children").read_text().split()]
    except OSError:
        pass
    return kids


def _rss_kib(pid: int) -> int:
    try:
        for line in (_PROC / str(pid) / "status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


def tree_rss_mb(pid: int | None = None) -> float:
    """Resident memory of ``pid`` (default: this process) and all its descendants now, in MiB."""
    todo, total = [pid or os.getpid()], 0
    while todo:
        p = todo.pop()
        total += _rss_kib(p)
        todo += _children(p)
    return total / 1024


class TreeMemory:
    """``with TreeMemory() as mem: ...`` then ``mem.peak_mb``: the largest sampled sum of the resident
    memory of this process and its descendants (MiB), or None where ``/proc`` is missing."""

    def __init__(self, interval_s: float = 0.5):
        self.interval_s = interval_s
        self.peak_mb: float | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, name="trainstats-tree-memory", daemon=True)

    def _sample(self) -> None:
        while True:
            now = tree_rss_mb()
            self.peak_mb = max(self.peak_mb or 0.0, now)
            if self._stop.wait(self.interval_s):
                return

    def __enter__(self) -> "TreeMemory":
        if (_PROC / "self" / "status").exists():
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        if self._thread.is_alive():
            self._stop.set()
            self._thread.join()
            self.peak_mb = round(max(self.peak_mb or 0.0, tree_rss_mb()), 1)


def release_memory() -> None:
    """Collect garbage and hand freed heap pages back to the OS (glibc ``malloc_trim``; a no-op elsewhere)."""
    import ctypes
    import gc

    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass
