"""Part files of one writer: per-partition buffers, row groups, temp-name-then-rename completion.

A part is written under ``_trainstats/tmp/`` and, once complete and fsynced, renamed into its
partition folder (:func:`trainstats.store.supersede.publish_part`). Its ``sample_id`` column is
built from the writer's :class:`~trainstats.store.sample_ids.IdTable` when the row group is
written, so a row is never visible without the id it refers to. Used only from the writer's
background thread (no locking here)."""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from trainstats.store import durable
from trainstats.store.batch import per_row
from trainstats.store.layout import Layout, PartName
from trainstats.store.sample_ids import IdTable
from trainstats.store.schema import ValueColumn, file_schema, write_options
from trainstats.store.supersede import publish_part

if TYPE_CHECKING:
    from trainstats.store.batch import Batch

__all__ = ["PartSet"]


@dataclass
class _Partition:
    split: str
    epoch: int
    chunks: list = field(default_factory=list)  # Batches not yet staged
    blocks: list = field(default_factory=list)  # staged: concatenated arrays, ids looked up
    buffered: int = 0
    writer: pq.ParquetWriter | None = None
    tmp_path: Path | None = None
    final_path: Path | None = None
    rows_in_part: int = 0
    opened_at: float = 0.0
    step_lo: int = 0
    step_hi: int = -1


class PartSet:
    def __init__(self, layout: Layout, columns: Sequence[ValueColumn], *, attempt: int, writer_id: str,
                 row_group_rows: int, max_part_seconds: float, ids: IdTable):
        self.layout = layout
        self.ids = ids
        self.columns = list(columns)
        self.schema = file_schema(columns)
        self.attempt = attempt
        self.writer_id = writer_id
        self.row_group_rows = row_group_rows
        self.max_part_seconds = max_part_seconds
        self.rows_completed = 0
        self._seq = 0
        self._partitions: dict[tuple[str, int], _Partition] = {}
        self._kinds: list[str] = []
        self._kind_code: dict[str, int] = {}
        self._lookup_map: tuple[object, np.ndarray] | None = None
        self._lookup = None
        self._write_options = write_options(columns)

    # ---------------------------------------------------------------- rows
    def add(self, chunk: Batch, noise_lookup) -> None:
        key = (chunk.split, chunk.epoch)
        part = self._partitions.get(key)
        if part is None:
            part = self._partitions[key] = _Partition(chunk.split, chunk.epoch, opened_at=time.monotonic())
        part.chunks.append(chunk)
        part.buffered += len(chunk.keys)
        self._lookup = noise_lookup
        if part.buffered >= self.row_group_rows:
            self._write_row_group(part)

    def _kind(self, name: str) -> int:
        code = self._kind_code.get(name)
        if code is None:
            code = self._kind_code[name] = len(self._kinds)
            self._kinds.append(name)
        return code

    def _noise(self, chunks: list, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``noise`` flags and ``noise_kind`` codes (-1: null) of some rows: the flags a chunk was
        written with, else the noise manifest's (one vectorised look-up for all of them)."""
        n = len(keys)
        flags = np.zeros(n, bool)
        codes = np.full(n, -1, np.int32)
        from_manifest = np.zeros(n, bool) if self._lookup is not None else None
        start = 0
        for c in chunks:
            m = len(c.keys)
            if c.noise is not None:
                flags[start:start + m] = c.noise
                if c.noise_kind is not None:
                    kinds = np.asarray(c.noise_kind, dtype=object)
                    hit = np.flatnonzero(c.noise & (kinds != None))  # noqa: E711 - elementwise
                    codes[start + hit] = [self._kind(str(k)) for k in kinds[hit]]
            elif from_manifest is not None:
                from_manifest[start:start + m] = True
            start += m
        if from_manifest is not None and from_manifest.any():
            lookup = self._lookup
            if self._lookup_map is None or self._lookup_map[0] is not lookup:
                self._lookup_map = (lookup, np.array([self._kind(k) for k in lookup.kinds] + [-1], np.int32))
            rows = np.flatnonzero(from_manifest)
            hit, kind = lookup.lookup(keys[rows])
            flags[rows] = hit
            codes[rows] = self._lookup_map[1][kind]  # -1 indexes the trailing -1
        return flags, codes

    def stage(self, min_rows: int = 0) -> None:
        """Concatenate buffered batches and look their ids and noise up now (the thread has nothing
        else to do), so that completing a part at ``flush`` is left with little but the encoding."""
        for part in self._partitions.values():
            if len(part.chunks) and sum(len(c.keys) for c in part.chunks) >= min_rows:
                part.blocks.append(self._block(part.chunks))
                part.chunks = []

    def _block(self, chunks: list) -> dict:
        keys = np.concatenate([c.keys for c in chunks])
        flags, codes = self._noise(chunks, keys)
        values = {}
        for col in self.columns:
            present = [c.values.get(col.name) for c in chunks]
            if all(p is None for p in present):
                values[col.name] = None
                continue
            dtype = col.arrow_type.to_pandas_dtype()
            data = np.concatenate([np.zeros(len(c.keys), dtype) if p is None else p[0] for c, p in zip(chunks, present)])
            mask = None
            if any(p is None or p[1] is not None for p in present):
                mask = np.concatenate([np.ones(len(c.keys), bool) if p is None else
                                       (np.zeros(len(c.keys), bool) if p[1] is None else p[1])
                                       for c, p in zip(chunks, present)])
            values[col.name] = (data, mask)
        return {"n": len(keys), "keys": keys, "pos": self.ids.positions(keys),
                "step": per_row(chunks, "step", np.int64), "batch": per_row(chunks, "batch", np.int32),
                "flags": flags, "codes": codes, "values": values}

    def _table(self, part: _Partition) -> pa.Table:
        if part.chunks:
            part.blocks.append(self._block(part.chunks))
            part.chunks = []
        blocks = part.blocks
        join = (lambda name: blocks[0][name]) if len(blocks) == 1 else (lambda name: np.concatenate([b[name] for b in blocks]))
        n = part.buffered
        cols: dict[str, pa.Array] = {}
        step = join("step")
        part.step_lo = min(part.step_lo, int(step.min())) if part.rows_in_part else int(step.min())
        part.step_hi = max(part.step_hi, int(step.max()))
        cols["step"] = pa.array(step, pa.int64())
        cols["batch"] = pa.array(join("batch"), pa.int32())
        cols["sample_id"], cols["sample_key"] = self.ids.column(join("keys"), join("pos"))
        codes = join("codes")
        cols["noise"] = pa.array(join("flags"), pa.bool_())
        cols["noise_kind"] = pa.DictionaryArray.from_arrays(
            pa.array(codes, pa.int32(), mask=codes < 0), pa.array(self._kinds, pa.string()))
        cols["attempt"] = pa.array(np.full(n, self.attempt, np.int32))
        for col in self.columns:
            parts = [b["values"][col.name] for b in blocks]
            if all(p is None for p in parts):
                cols[col.name] = pa.nulls(n, col.arrow_type)
                continue
            dtype = col.arrow_type.to_pandas_dtype()
            data = np.concatenate([np.zeros(b["n"], dtype) if p is None else p[0] for b, p in zip(blocks, parts)]) \
                if len(blocks) > 1 else parts[0][0]
            mask = None
            if any(p is None or p[1] is not None for p in parts):
                mask = np.concatenate([np.ones(b["n"], bool) if p is None else
                                       (np.zeros(b["n"], bool) if p[1] is None else p[1])
                                       for b, p in zip(blocks, parts)])
            if col.dtype.startswith("float"):
                nan = np.isnan(data)
                mask = nan if mask is None else (mask | nan)
            cols[col.name] = pa.array(data, col.arrow_type, mask=mask if mask is not None and mask.any() else None)
        return pa.Table.from_arrays([cols[f.name] for f in self.schema], schema=self.schema)

    def _open(self, part: _Partition) -> None:
        self._seq += 1
        name = PartName(self.attempt, self.writer_id, self._seq)
        part.final_path = self.layout.part_file(part.split, part.epoch, name)
        part.tmp_path = self.layout.tmp_part(name)
        part.writer = pq.ParquetWriter(part.tmp_path, self.schema, **self._write_options)
        part.rows_in_part = 0

    def _write_row_group(self, part: _Partition) -> None:
        if not part.buffered:
            return
        table = self._table(part)
        if part.writer is None:
            self._open(part)
        part.writer.write_table(table, row_group_size=len(table))
        part.rows_in_part += part.buffered
        part.chunks, part.blocks, part.buffered = [], [], 0

    def _complete(self, part: _Partition) -> None:
        self._write_row_group(part)
        if part.writer is None:
            return
        part.writer.close()
        part.writer = None
        durable.fsync_file(part.tmp_path)
        publish_part(self.layout, self.columns, part.tmp_path, part.final_path, split=part.split,
                     epoch=part.epoch, attempt=self.attempt, steps=(part.step_lo, part.step_hi))
        self.rows_completed += part.rows_in_part
        part.rows_in_part = 0

    def complete_all(self) -> None:
        for part in list(self._partitions.values()):
            self._complete(part)
        self._partitions.clear()

    def complete_old_parts(self) -> None:
        now = time.monotonic()
        for key, part in list(self._partitions.items()):
            if now - part.opened_at > self.max_part_seconds:
                self._complete(part)
                del self._partitions[key]

    def discard_pending(self) -> int:
        """Forget buffered rows and rows in open parts; return how many."""
        lost = 0
        for part in self._partitions.values():
            lost += part.buffered + part.rows_in_part
            part.chunks, part.blocks, part.buffered, part.rows_in_part = [], [], 0, 0
        return lost

    def abandon(self) -> None:
        """Close open parts without publishing them and remove their temp files."""
        for part in self._partitions.values():
            if part.writer is not None:
                try:
                    part.writer.close()
                except Exception:  # noqa: BLE001
                    pass
                try:
                    os.unlink(part.tmp_path)
                except OSError:
                    pass
                part.writer = None
        self._partitions.clear()
