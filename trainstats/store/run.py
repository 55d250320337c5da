"""``Run``: the one reader of a run directory (metadata, splits, epochs, partition scans, ids).

Every part of trainstats that reads a run — ``read``/``open_dataset``, analysis, ``inspect``, the
recorders checking whether a run exists — goes through this class, so the layout
(:mod:`trainstats.store.layout`) is known in one place. It reads both layouts: schema version 2
(rows carry ``sample_id``) and version 1 (rows carry ``sample_key``; ids in the ``samples/`` side
table), including a version-1 directory that ``trainstats migrate`` stopped halfway through.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from trainstats.store import run_dir as rd
from trainstats.store.layout import Layout
from trainstats.store.sample_ids import SAMPLE_ID_TYPE, IdMap
from trainstats.store.schema import SPLITS, ValueColumn, legacy_row_schema, row_schema
from trainstats.store.supersede import attempt_starts, pending, superseded_expression

__all__ = ["Run"]

_ID_BYTES = pa.dictionary(pa.int32(), pa.binary())


class Run:
    """A run directory opened for reading (metadata read once; rows read on demand).

    Args:
        path: the run directory.

    Raises ``NotARunDirectory`` / ``UnsupportedSchemaVersion`` with a message naming the file.

    Example::

        run = Run("runs/r1")
        run.splits(), run.epochs("train")                 # ['dev', 'train'], [0, 1, 2]
        t = run.scan("train", 2, ["sample_key", "loss"])   # pyarrow Table of one partition
        ids, missing = run.sample_ids(t["sample_key"].to_numpy())
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.layout = Layout(self.path)
        meta = rd.load_run_json(self.layout)
        self.schema_version: int = meta["schema_version"]
        self.legacy = self.layout.legacy
        writers = rd.list_writer_status(self.layout)
        attempts = rd.list_attempts(self.layout)
        self._starts = attempt_starts(self.layout)
        for a in attempts:
            a["start"] = self._starts.get(int(a["attempt"]))
        meta["attempts"] = attempts
        meta["attempt"] = max((a["attempt"] for a in attempts), default=0)
        meta["writers"] = writers
        meta["rows_written"] = sum(w.get("rows_written", 0) for w in writers)
        meta["rows_dropped"] = sum(w.get("rows_dropped", 0) for w in writers)
        meta["errors"] = [dict(e, attempt=w["attempt"], writer=w["writer"]) for w in writers
                          for e in w.get("errors", [])]
        self.metadata: dict[str, Any] = meta
        self.value_columns: list[ValueColumn] = [ValueColumn.from_json(c) for c in meta.get("value_columns", [])]
        self._ids = IdMap(str(self.path))
        self._dataset: ds.Dataset | None = None
        self._keys_dataset: ds.Dataset | None = None
        self._legacy_ids_loaded = False
        #: rows the newest-attempt rule supersedes are still visible (a move was interrupted)
        self.pending = self.legacy or pending(self.layout, self._starts)

    @staticmethod
    def exists(path: str | os.PathLike) -> bool:
        """True when ``path`` holds a run (of either layout)."""
        return Layout(Path(path)).exists()

    # ---------------------------------------------------------------- structure
    def splits(self) -> list[str]:
        """Splits with at least one row part, sorted."""
        return sorted({s for s, _, _ in self.layout.visible_parts()})

    def epochs(self, split: str) -> list[int]:
        """Epochs of ``split`` with at least one row part, ascending."""
        return sorted({e for _, e, _ in self.layout.visible_parts(split)})

    def files(self) -> list[Path]:
        """The row parts this reader reads (those a plain Parquet reader of the directory reads)."""
        return [p for _, _, p in self.layout.visible_parts()]

    @property
    def schema(self) -> pa.Schema:
        """Row schema as stored (``sample_key`` is null where ``sample_id`` is set)."""
        return (legacy_row_schema if self.legacy else row_schema)(self.value_columns)

    def columns(self) -> list[str]:
        return self.schema.names

    def dataset(self) -> ds.Dataset:
        """The rows as a ``pyarrow.dataset.Dataset`` (out of core), superseded rows filtered out."""
        if self._dataset is None:
            self._dataset = self._make_dataset(self.schema)
        return self._dataset

    def _key_dataset(self) -> ds.Dataset:
        """The same rows with ``sample_id`` read as bytes: for keys only, it skips the UTF-8 check of
        every part's id dictionary (about 40 % of reading it)."""
        if self._keys_dataset is None:
            schema = self.schema
            i = schema.get_field_index("sample_id")
            self._keys_dataset = self._make_dataset(schema.set(i, pa.field("sample_id", _ID_BYTES)))
        return self._keys_dataset

    def _make_dataset(self, schema: pa.Schema) -> ds.Dataset:
        parts = self.layout.visible_parts()
        dataset = ds.FileSystemDataset.from_paths(
            [str(p.resolve()) for _, _, p in parts], schema=schema,
            format=ds.ParquetFileFormat(read_options=ds.ParquetReadOptions(dictionary_columns={"sample_id"})),
            filesystem=pafs.LocalFileSystem(),
            partitions=[(ds.field("split") == s) & (ds.field("epoch") == e) for s, e, _ in parts])
        drop = superseded_expression(self._starts) if self.pending else None
        return dataset.filter(~drop) if drop is not None else dataset

    # ---------------------------------------------------------------- rows
    def scan(self, split: str | Iterable[str] | None = None, epochs: int | Iterable[int] | None = None,
             columns: Sequence[str] | None = None, *, filter: ds.Expression | None = None) -> pa.Table:
        """Rows of the chosen splits and epochs with the chosen columns (all when ``None``).

        ``sample_key`` comes back filled for every row (derived from ``sample_id`` where the file
        leaves it null) and ``sample_id`` as a dictionary-encoded string column (null where the
        writer never learned the id)."""
        names = self.columns()
        columns = list(names) if columns is None else list(columns)
        unknown = [c for c in columns if c not in names]
        if unknown:
            raise ValueError(f"Unknown column(s) {unknown} in {self.path}; available: {names}")
        read = [c for c in names if c in columns]
        if "sample_key" in read or (self.legacy and "sample_id" in read):
            read = [c for c in names if c in set(read) | {"sample_key", "sample_id"}]
        expr = _selection(split, epochs)
        if filter is not None:
            expr = filter if expr is None else expr & filter
        keys_only = "sample_id" in read and "sample_id" not in columns and not self.legacy
        table = (self._key_dataset() if keys_only else self.dataset()).to_table(columns=read, filter=expr)
        if "sample_key" in read or "sample_id" in read:
            table = self._complete_ids(table, want_key="sample_key" in columns, want_id="sample_id" in columns)
        return table.select(columns)

    def scan_positions(self, split: str | Iterable[str] | None = None, epochs: int | Iterable[int] | None = None,
                       columns: Sequence[str] = ()) -> tuple[pa.Table, np.ndarray]:
        """Rows for an engine that numbers samples: ``(table, positions)``.

        ``positions[i]`` is the position of row ``i``'s sample among the ids this reader has seen
        (:meth:`keys_at`, :meth:`known_ids`; numbered in order of first appearance, so they only grow),
        ``-1`` for a row without an id. Cheaper than asking :meth:`scan` for ``sample_key``: no per-row
        key is built. ``sample_key`` in ``columns`` comes back as stored (null where the id is set):
        the key of the rows without an id."""
        names = self.columns()
        columns = list(columns)
        unknown = [c for c in columns if c not in names or c == "sample_id"]
        if unknown:
            raise ValueError(f"Unknown column(s) {unknown} for scan_positions in {self.path}; available: "
                             f"{[c for c in names if c != 'sample_id']}")
        read = [c for c in names if c in set(columns) | {"sample_id", "sample_key"}]
        if self.legacy:
            self._load_legacy_ids()
        dataset = self.dataset() if self.legacy else self._key_dataset()
        table = dataset.to_table(columns=read, filter=_selection(split, epochs))
        pos = self.id_positions(table.column("sample_id"))
        if self.legacy:  # rows of schema-1 parts carry the key only: their id is in the side table
            stored = table.column("sample_key")
            miss = np.flatnonzero((pos < 0) & pc.is_valid(stored).to_numpy(zero_copy_only=False))
            if len(miss):
                pos[miss] = self._ids.lookup_keys(pc.fill_null(stored, 0).to_numpy()[miss])
        return table.select(columns), pos

    def keys_at(self, positions: np.ndarray) -> np.ndarray:
        """Sample keys of positions from :meth:`scan_positions` (each ``>= 0``)."""
        return self._ids.keys[np.asarray(positions, np.int64)]

    def ids_at(self, positions: np.ndarray) -> pa.Array:
        """Sample ids of positions from :meth:`scan_positions` (each ``>= 0``)."""
        return self._ids.ids_at(np.asarray(positions, np.int64))

    def _complete_ids(self, table: pa.Table, *, want_key: bool, want_id: bool) -> pa.Table:
        stored = table.column("sample_key") if "sample_key" in table.column_names else None
        if self.legacy:
            self._load_legacy_ids()
        keys = None
        if want_key or (self.legacy and want_id):
            keys = self.keys_of(table.column("sample_id"), stored)
            table = _set(table, "sample_key", pa.array(keys, pa.int64()))
        if want_id and self.legacy:  # rows of schema-1 parts: their id from the side table
            ids, _ = self._ids.ids_of(keys)
            given = table.column("sample_id").cast(pa.string())
            merged = pc.coalesce(given, ids) if given.null_count else given
            table = _set(table, "sample_id", pc.dictionary_encode(merged).cast(SAMPLE_ID_TYPE))
        return table

    def keys_of(self, sample_id: pa.ChunkedArray, stored: pa.ChunkedArray | None = None) -> np.ndarray:
        """Keys of a ``sample_id`` column (checked: two ids with one key raise ``ValueError``),
        taking ``stored`` keys where the id is null."""
        keys = self._per_row(sample_id, lambda pos: self._ids.keys[pos], np.int64)
        missing = self.id_positions(sample_id) < 0 if sample_id.null_count else None
        if missing is not None and missing.any():
            if stored is None:
                raise ValueError(f"{self.path}: rows without a sample_id need the sample_key column")
            keys[missing] = pc.fill_null(stored, 0).to_numpy()[missing]
        return keys

    def id_positions(self, sample_id: pa.ChunkedArray) -> np.ndarray:
        """Position of each row's id among :meth:`known_ids` (``-1`` where null)."""
        return self._per_row(sample_id, lambda pos: pos, np.int64)

    def _per_row(self, sample_id: pa.ChunkedArray, of_dictionary, dtype) -> np.ndarray:
        """``of_dictionary(positions of a chunk's dictionary entries)`` spread over the chunk's rows
        (-1 for a null id); one small array per dictionary, then one take per chunk."""
        out = np.empty(len(sample_id), dtype)
        start = 0
        for chunk in sample_id.chunks:
            n = len(chunk)
            if n == 0:
                continue
            if not pa.types.is_dictionary(chunk.type):
                chunk = pc.dictionary_encode(chunk)
            per_entry = np.append(of_dictionary(self._ids.positions(chunk.dictionary)), -1).astype(dtype)
            idx = chunk.indices
            codes = (idx.to_numpy() if idx.null_count == 0 else
                     pc.fill_null(idx, -1).to_numpy(zero_copy_only=False))
            out[start:start + n] = per_entry[codes]  # code -1 (null) picks the trailing -1
            start += n
        return out

    def known_ids(self) -> pa.Array:
        """Every id this reader has seen, by position."""
        return self._ids.ids()

    def sample_ids(self, keys: np.ndarray) -> tuple[pa.Array, int]:
        """``(ids aligned with keys, number without an id)`` from the ids seen in scans so far (and a
        schema-1 run's side table). The mapping is checked: a key collision raises ``ValueError``."""
        if self.legacy:
            self._load_legacy_ids()
        return self._ids.ids_of(np.asarray(keys, np.int64))

    def samples(self) -> pa.Table:
        """``sample_key``, ``sample_id`` of every sample that has an id in the rows (checked)."""
        if self.legacy:
            self._load_legacy_ids()
        self.id_positions(self.dataset().to_table(columns=["sample_id"]).column("sample_id"))
        return pa.table({"sample_key": pa.array(self._ids.keys, pa.int64()), "sample_id": self._ids.ids()})

    def _load_legacy_ids(self) -> None:
        if self._legacy_ids_loaded:
            return
        self._legacy_ids_loaded = True
        for f in self.layout.legacy_sample_files():
            t = pq.read_table(f, columns=["sample_key", "sample_id"])
            self._ids.add(t.column("sample_key").to_numpy(), t.column("sample_id").combine_chunks())


def check_selection(split, epochs) -> tuple[list[str] | None, list[int] | None]:
    splits = None
    if split is not None:
        splits = [split] if isinstance(split, str) else list(split)
        bad = [s for s in splits if s not in SPLITS]
        if bad:
            raise ValueError(f"Invalid split {bad}; expected one of {SPLITS}")
    if epochs is not None:
        epochs = [epochs] if isinstance(epochs, (int, np.integer)) else [int(e) for e in epochs]
    return splits, epochs


def _selection(split, epochs) -> ds.Expression | None:
    splits, epochs = check_selection(split, epochs)
    expr = None
    if splits is not None:
        expr = ds.field("split").isin(splits)
    if epochs is not None:
        by_epoch = ds.field("epoch").isin(epochs)
        expr = by_epoch if expr is None else expr & by_epoch
    return expr


def _set(table: pa.Table, name: str, column) -> pa.Table:
    i = table.column_names.index(name)
    return table.set_column(i, pa.field(name, column.type), column)

