"""Newest attempt wins: which rows a later attempt supersedes, and moving them out of the dataset.

A row's position is ``(epoch, phase, step)``, phase 0 for ``split=train`` and 1 for held-out splits
(a held-out pass runs at the end of its epoch). An attempt's *start* is the smallest
``first_position`` of its writers (``_trainstats/writers/*.json``). A row written by attempt *a* is
superseded when a later attempt *b* started at or before the row's position: every row of a later
epoch, every held-out row of the start epoch, and — when *b* started in training — the start
epoch's training rows with ``step >= start.step``.

A writer applies the rule to the files when its attempt writes its first row, before any of its
rows is published: a part wholly superseded is moved to ``_superseded/`` (a folder Parquet readers
skip, under a name no ``*.parquet`` glob matches); a part that straddles the start is rewritten
with the rows before it (its original is moved to ``_superseded/`` first). Each move is one
atomic rename, so a reader never sees a row twice; a process killed halfway leaves some superseded
rows visible, which ``trainstats.read`` still hides (:func:`superseded_expression`) and the next
writer or ``trainstats migrate`` moves.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from trainstats.store import durable
from trainstats.store.layout import Layout, PartName
from trainstats.store.run_dir import _read_json
from trainstats.store.schema import ValueColumn, write_options

__all__ = ["KEEP", "DROP", "position", "attempt_starts", "superseded_expression", "verdict",
           "pending", "reconcile", "publish_part"]

KEEP, DROP = "keep", "drop"
_WRITER_FILE = re.compile(r"^a(\d{4,})-w.+\.json$")


def position(p: Mapping[str, Any]) -> tuple[int, int, int]:
    return (int(p["epoch"]), 0 if p["split"] == "train" else 1, int(p["step"]))


def attempt_starts(layout: Layout, *, newer_than: int = 0) -> dict[int, dict[str, Any]]:
    """``{attempt: start}`` of the attempts after ``newer_than`` that have written a row."""
    files = layout.writer_files() + (layout.writer_files(legacy=True) if layout.legacy else [])
    out: dict[int, dict[str, Any]] = {}
    for p in files:
        m = _WRITER_FILE.match(p.name)
        if not m or int(m.group(1)) <= newer_than:
            continue
        first = _read_json(p, "writer status").get("first_position")
        a = int(m.group(1))
        if first and (a not in out or position(first) < position(out[a])):
            out[a] = first
    return out


def superseded_expression(starts: Mapping[int, Mapping[str, Any]]) -> ds.Expression | None:
    """Expression true for the rows a later attempt replaced (``None`` when nothing can be)."""
    expr = None
    e, s, st = ds.field("epoch"), ds.field("split"), ds.field("step")
    for attempt, start in starts.items():
        epoch, phase, step = position(start)
        if phase == 0:
            at_or_after = (e > epoch) | ((e == epoch) & ((s != "train") | (st >= step)))
        else:
            at_or_after = (e > epoch) | ((e == epoch) & (s != "train"))
        this = (ds.field("attempt") < attempt) & at_or_after
        expr = this if expr is None else (expr | this)
    return expr


def verdict(split: str, epoch: int, attempt: int, starts: Mapping[int, Mapping[str, Any]],
            step_range: Callable[[], tuple[int, int]]) -> str | int:
    """``KEEP``, ``DROP`` or the step ``S`` below which a part's rows are kept (the part straddles)."""
    cut = None
    for b, start in starts.items():
        if b <= attempt:
            continue
        e, phase, s = position(start)
        if epoch > e:
            return DROP
        if epoch < e:
            continue
        if split != "train":
            return DROP
        if phase == 0:
            cut = s if cut is None else min(cut, s)
    if cut is None:
        return KEEP
    lo, hi = step_range()
    if hi < cut:
        return KEEP
    return DROP if lo >= cut else cut


def _step_range(path: Path) -> tuple[int, int]:
    meta = pq.ParquetFile(path).metadata
    idx = meta.schema.names.index("step")
    lo, hi = None, None
    for g in range(meta.num_row_groups):
        stats = meta.row_group(g).column(idx).statistics
        if stats is None or not stats.has_min_max:
            col = pq.read_table(path, columns=["step"]).column("step")
            return int(pc.min(col).as_py()), int(pc.max(col).as_py())
        lo = stats.min if lo is None else min(lo, stats.min)
        hi = stats.max if hi is None else max(hi, stats.max)
    return (0, -1) if lo is None else (int(lo), int(hi))


def pending(layout: Layout, starts: Mapping[int, Mapping[str, Any]]) -> bool:
    """True when a visible part still holds rows the rule supersedes (a move was interrupted)."""
    if not starts:
        return False
    newest = max(starts)
    for split, epoch, path in layout.visible_parts():
        name = PartName.parse(path.name)
        if name.attempt < newest and verdict(split, epoch, name.attempt, starts, lambda: _step_range(path)) != KEEP:
            return True
    return False


def _trimmed(src: Path, dst_tmp: Path, cut: int, columns: Sequence[ValueColumn]) -> None:
    table = pq.read_table(src)
    table = table.filter(pc.less(table.column("step"), cut))
    pq.write_table(table, dst_tmp, **write_options(columns))
    durable.fsync_file(dst_tmp)


def _archive(layout: Layout, part: Path, *, what: str) -> None:
    """Take a visible part out of the dataset, keeping its rows under ``_superseded/``."""
    target = layout.superseded_file(part)
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists():  # the original of a part trimmed before: it already holds these rows
        durable.unlink(part, what)
    else:
        durable.replace(part, target, what)
    try:
        part.parent.rmdir()  # an emptied partition folder (writers create theirs under the same lock)
    except OSError:
        pass


def reconcile(layout: Layout, columns: Sequence[ValueColumn], starts: Mapping[int, Mapping[str, Any]]) -> int:
    """Move every visible row the rule supersedes out of the dataset; return how many parts changed.
    Idempotent; safe to interrupt at any point (the run lock must not be held by the caller)."""
    if not starts:
        return 0
    changed = 0
    newest = max(starts)
    with durable.run_lock(layout.lock_file):
        for leftover in layout.tmp_dir.glob("*.trim.tmp"):  # of a reconcile killed halfway
            leftover.unlink(missing_ok=True)
        for split, epoch, path in layout.parts():
            name = PartName.parse(path.name)
            if name.attempt >= newest:
                continue
            v = verdict(split, epoch, name.attempt, starts, lambda: _step_range(path))
            if v == KEEP:
                continue
            changed += 1
            if v == DROP:
                _archive(layout, path, what="supersede part")
                continue
            tmp = layout.tmp_dir / f"{path.name}.trim.tmp"
            _trimmed(path, tmp, v, columns)
            target = layout.superseded_file(path)
            target.parent.mkdir(parents=True, exist_ok=True)
            durable.link(path, target, "supersede original")
            durable.replace(tmp, path, "supersede trimmed part")
    return changed


def publish_part(layout: Layout, columns: Sequence[ValueColumn], tmp: Path, final: Path, *, split: str,
                 epoch: int, attempt: int, steps: tuple[int, int]) -> str | int:
    """Give a completed, fsynced part (``tmp``) its final name — or, if an attempt newer than its own
    has started before its rows (another process resumed the run meanwhile), archive what it supersedes."""
    with durable.run_lock(layout.lock_file):
        newer = attempt_starts(layout, newer_than=attempt) if max(layout.attempt_numbers(), default=0) > attempt else {}
        v = verdict(split, epoch, attempt, newer, lambda: steps)
        final.parent.mkdir(parents=True, exist_ok=True)
        if v == KEEP:
            durable.replace(tmp, final, "publish part")
            return v
        target = layout.superseded_file(final)
        target.parent.mkdir(parents=True, exist_ok=True)
        if v != DROP:
            trimmed = layout.tmp_dir / f"{final.name}.trim.tmp"
            _trimmed(tmp, trimmed, v, columns)
            durable.replace(trimmed, final, "publish trimmed part")
        durable.replace(tmp, target, "publish superseded part")
        return v
