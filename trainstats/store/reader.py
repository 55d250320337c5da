"""Read a run directory: the consistent (newest-attempt-wins) view as pandas or a pyarrow dataset."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from trainstats.store import run_dir as rd
from trainstats.store.schema import KEY_COLUMNS, SPLITS, ValueColumn, partitioning, row_schema

__all__ = ["open_dataset", "read", "read_metadata", "read_samples", "value_columns", "superseded_filter"]


def read_metadata(run_dir: str | os.PathLike) -> dict[str, Any]:
    """``run.json`` plus ``attempts`` (list), ``writers`` (list) and the totals ``rows_written``,
    ``rows_dropped`` and ``errors`` summed over writers."""
    run_dir = Path(run_dir)
    meta = rd.load_run_json(run_dir)
    writers = rd.list_writer_status(run_dir)
    attempts = rd.list_attempts(run_dir)
    for a in attempts:
        starts = [w["first_position"] for w in writers
                  if w.get("attempt") == a["attempt"] and w.get("first_position")]
        a["start"] = min(starts, key=_position) if starts else None
    meta["attempts"] = attempts
    meta["attempt"] = max((a["attempt"] for a in attempts), default=0)
    meta["writers"] = writers
    meta["rows_written"] = sum(w.get("rows_written", 0) for w in writers)
    meta["rows_dropped"] = sum(w.get("rows_dropped", 0) for w in writers)
    meta["errors"] = [dict(e, attempt=w["attempt"], writer=w["writer"]) for w in writers for e in w.get("errors", [])]
    return meta


def value_columns(meta: dict[str, Any]) -> list[ValueColumn]:
    return [ValueColumn.from_json(c) for c in meta.get("value_columns", [])]


def _position(p: dict[str, Any]) -> tuple[int, int, int]:
    return (int(p["epoch"]), 0 if p["split"] == "train" else 1, int(p["step"]))


def superseded_filter(attempts: Sequence[dict[str, Any]]) -> ds.Expression | None:
    """Expression true for rows that a later attempt replaced (``None`` when nothing can be).

    A row of attempt *a* at position ``(epoch, phase, step)`` (phase 0 train, 1 held-out) is superseded
    when some attempt *b > a* started at or before that position."""
    expr = None
    for a in attempts:
        start = a.get("start")
        if not start:
            continue
        epoch, phase, step = _position(start)
        e, s, st = ds.field("epoch"), ds.field("split"), ds.field("step")
        if phase == 0:
            at_or_after = (e > epoch) | ((e == epoch) & ((s != "train") | (st >= step)))
        else:
            at_or_after = (e > epoch) | ((e == epoch) & (s != "train"))
        this = (ds.field("attempt") < a["attempt"]) & at_or_after
        expr = this if expr is None else (expr | this)
    return expr


def open_dataset(run_dir: str | os.PathLike) -> ds.Dataset:
    """The run's rows as a ``pyarrow.dataset.Dataset`` (out of core), superseded rows filtered out.

    Partition columns ``split`` and ``epoch`` are ordinary columns; filter on them to read less:
    ``open_dataset(d).to_table(filter=pc.field("split") == "train", columns=["sample_key", "loss"])``."""
    return _open_dataset(run_dir, read_metadata(run_dir))


def _open_dataset(run_dir: str | os.PathLike, meta: dict[str, Any]) -> ds.Dataset:
    schema = row_schema(value_columns(meta))
    files = sorted(str(p) for p in (Path(run_dir) / "rows").rglob("part-*.parquet"))
    dataset = ds.dataset(files, schema=schema, format="parquet", partitioning=partitioning(),
                         partition_base_dir=str(Path(run_dir) / "rows"))
    drop = superseded_filter(meta["attempts"])
    return dataset.filter(~drop) if drop is not None else dataset


def read_samples(run_dir: str | os.PathLike) -> pa.Table:
    """The ``sample_key -> sample_id`` side table, deduplicated; raises on a key collision."""
    files = sorted((Path(run_dir) / "samples").glob("part-*.parquet"))
    if not files:
        return pa.table({"sample_key": pa.array([], pa.int64()), "sample_id": pa.array([], pa.string())})
    table = pa.concat_tables(pq.read_table(f) for f in files)
    table = table.group_by(["sample_key", "sample_id"]).aggregate([])
    keys = table.column("sample_key")
    if len(pc.unique(keys)) != len(keys):
        dup = table.group_by("sample_key").aggregate([("sample_id", "count_distinct")])
        bad = dup.filter(pc.field("sample_id_count_distinct") > 1).column("sample_key")[0].as_py()
        ids = table.filter(pc.field("sample_key") == bad).column("sample_id").to_pylist()
        raise ValueError(f"{run_dir}: sample ids {ids} share sample_key {bad}; rename one of them")
    return table


def _check_selection(split, epochs) -> tuple[list[str] | None, list[int] | None]:
    splits = None
    if split is not None:
        splits = [split] if isinstance(split, str) else list(split)
        bad = [s for s in splits if s not in SPLITS]
        if bad:
            raise ValueError(f"Invalid split {bad}; expected one of {SPLITS}")
    if epochs is not None:
        epochs = [epochs] if isinstance(epochs, (int, np.integer)) else [int(e) for e in epochs]
    return splits, epochs


def read(
    run_dir: str | os.PathLike,
    split: str | Iterable[str] | None = None,
    epochs: int | Iterable[int] | None = None,
    columns: Sequence[str] | None = None,
    *,
    with_ids: bool = True,
    sort: bool = True,
):
    """Read rows into a pandas DataFrame.

    Args:
        run_dir: a run directory.
        split: ``"train"``, ``"dev"``, ``"eval"`` or several; ``None`` for all.
        epochs: one epoch or several; ``None`` for all.
        columns: columns to return (key columns are always cheap to add); ``None`` for all.
        with_ids: add a categorical ``sample_id`` column from the side table (NaN when unregistered).
        sort: order rows by ``split, epoch, step, batch`` (within a batch: as written).

    Value columns come back as pandas nullable dtypes (``Float32``, ``Int64``, ``boolean``), so a
    null stays ``<NA>`` rather than becoming a sentinel; key columns are plain numpy dtypes and
    ``split`` / ``noise_kind`` / ``sample_id`` are categoricals.
    """
    import pandas as pd

    splits, epochs = _check_selection(split, epochs)
    meta = read_metadata(run_dir)
    dataset = _open_dataset(run_dir, meta)
    names = dataset.schema.names
    if columns is None:
        wanted = names
    else:
        unknown = [c for c in columns if c not in names and c != "sample_id"]
        if unknown:
            raise ValueError(f"Unknown column(s) {unknown} in {run_dir}; available: {names + ['sample_id']}")
        needed = set(columns) | ({"split", "epoch", "step", "batch"} if sort else set())
        if with_ids and "sample_id" in columns:
            needed.add("sample_key")
        wanted = [c for c in names if c in needed]
    expr = None
    if splits is not None:
        expr = ds.field("split").isin(splits)
    if epochs is not None:
        by_epoch = ds.field("epoch").isin(epochs)
        expr = by_epoch if expr is None else expr & by_epoch
    table = dataset.to_table(columns=wanted, filter=expr)
    if sort and table.num_rows:
        table = table.sort_by([("split", "ascending"), ("epoch", "ascending"), ("step", "ascending"),
                               ("batch", "ascending")])
    value_names = {c.name for c in value_columns(meta)}
    df = pd.DataFrame({name: _to_pandas(table.column(name), name in value_names) for name in table.column_names})
    if with_ids and "sample_key" in df and (columns is None or "sample_id" in columns):
        df["sample_id"] = _sample_ids(run_dir, df["sample_key"].to_numpy())
    if columns is not None:
        df = df[[c for c in columns if c in df.columns]]
    return df.reset_index(drop=True)


def _sample_ids(run_dir, keys: np.ndarray):
    """Categorical of the sample ids of ``keys`` (NaN where a key was never registered)."""
    import pandas as pd

    samples = read_samples(run_dir).sort_by("sample_key")
    known = samples.column("sample_key").to_numpy()
    ids = pd.Index(samples.column("sample_id").to_pylist(), dtype=object)
    if len(known) == 0:
        return pd.Categorical.from_codes(np.full(len(keys), -1), categories=pd.Index([], dtype=object))
    pos = np.minimum(np.searchsorted(known, keys), len(known) - 1)
    return pd.Categorical.from_codes(np.where(known[pos] == keys, pos, -1), categories=ids)


_NULLABLE = {pa.float32(): "Float32", pa.float64(): "Float64", pa.int32(): "Int32", pa.int64(): "Int64",
             pa.bool_(): "boolean"}


def _to_pandas(col: pa.ChunkedArray, nullable: bool):
    """Strings -> categorical; value columns -> pandas nullable dtypes; keys -> numpy."""
    import pandas as pd

    if pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
        col = pc.dictionary_encode(col)
    if pa.types.is_dictionary(col.type):
        return col.to_pandas()
    if nullable:
        dtype = pd.api.types.pandas_dtype(_NULLABLE[col.type])
        if col.null_count == 0:
            return pd.array(col.to_numpy(), dtype=dtype)
        return col.to_pandas(types_mapper={col.type: dtype}.get)
    return col.to_numpy()
