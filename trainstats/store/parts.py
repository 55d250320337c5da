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
    chunks: list = field(default_factory=list)
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
        self._write_options = write_options(columns)

    # ---------------------------------------------------------------- rows
    def add(self, chunk: Batch, noise_lookup) -> None:
        key = (chunk.split, chunk.epoch)
        part = self._partitions.get(key)
        if part is None:
            part = self._partitions[key] = _Partition(chunk.split, chunk.epoch, opened_at=time.monotonic())
        part.chunks.append((chunk, None))  # buffered first: a failure below is counted as dropped
        part.buffered += len(chunk.keys)
        part.chunks[-1] = (chunk, self._noise_codes(chunk, noise_lookup))
        if part.buffered >= self.row_group_rows:
            self._write_row_group(part)

    def _kind(self, name: str) -> int:
        code = self._kind_code.get(name)
        if code is None:
            code = self._kind_code[name] = len(self._kinds)
            self._kinds.append(name)
        return code

    def _noise_codes(self, chunk, lookup) -> tuple[np.ndarray, np.ndarray]:
        n = len(chunk.keys)
        if chunk.noise is not None:
            codes = np.full(n, -1, np.int32)
            if chunk.noise_kind is not None:
                for i, k in enumerate(chunk.noise_kind):
                    if chunk.noise[i] and k is not None:
                        codes[i] = self._kind(k)
            return chunk.noise, codes
        if lookup is None:
            return np.zeros(n, bool), np.full(n, -1, np.int32)
        if self._lookup_map is None or self._lookup_map[0] is not lookup:
            self._lookup_map = (lookup, np.array([self._kind(k) for k in lookup.kinds] + [-1], np.int32))
        flags, codes = lookup.lookup(chunk.keys)
        return flags, self._lookup_map[1][codes]  # -1 indexes the trailing -1

    def _table(self, part: _Partition) -> pa.Table:
        chunks = part.chunks
        n = part.buffered
        cols: dict[str, pa.Array] = {}
        step = np.concatenate([c.step for c, _ in chunks])
        part.step_lo = min(part.step_lo, int(step.min())) if part.rows_in_part else int(step.min())
        part.step_hi = max(part.step_hi, int(step.max()))
        cols["step"] = pa.array(step, pa.int64())
        cols["batch"] = pa.array(np.concatenate([c.batch for c, _ in chunks]), pa.int32())
        cols["sample_id"], cols["sample_key"] = self.ids.column(np.concatenate([c.keys for c, _ in chunks]))
        cols["noise"] = pa.array(np.concatenate([f for _, (f, _) in chunks]), pa.bool_())
        codes = np.concatenate([k for _, (_, k) in chunks])
        cols["noise_kind"] = pa.DictionaryArray.from_arrays(
            pa.array(codes, pa.int32(), mask=codes < 0), pa.array(self._kinds, pa.string()))
        cols["attempt"] = pa.array(np.full(n, self.attempt, np.int32))
        for col in self.columns:
            present = [c.values.get(col.name) for c, _ in chunks]
            if all(p is None for p in present):
                cols[col.name] = pa.nulls(n, col.arrow_type)
                continue
            datas, masks = [], []
            for (c, _), p in zip(chunks, present):
                m = len(c.keys)
                if p is None:
                    datas.append(np.zeros(m, col.arrow_type.to_pandas_dtype()))
                    masks.append(np.ones(m, bool))
                else:
                    datas.append(p[0])
                    masks.append(p[1] if p[1] is not None else np.zeros(m, bool))
            data, mask = np.concatenate(datas), np.concatenate(masks)
            if col.dtype.startswith("float"):
                mask |= np.isnan(data)
            cols[col.name] = pa.array(data, col.arrow_type, mask=mask if mask.any() else None)
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
        part.chunks, part.buffered = [], 0

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
            part.chunks, part.buffered, part.rows_in_part = [], 0, 0
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
