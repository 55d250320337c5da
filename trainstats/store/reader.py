"""Read a run directory through :class:`~trainstats.store.run.Run`: pandas, a pyarrow dataset, metadata."""
from __future__ import annotations

import os
from typing import Any, Iterable, Sequence

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from trainstats.store.run import Run, check_selection
from trainstats.store.schema import ValueColumn

__all__ = ["open_dataset", "read", "read_metadata", "read_samples", "value_columns"]


def read_metadata(run_dir: str | os.PathLike) -> dict[str, Any]:
    """``run.json`` plus ``attempts`` (list, each with its ``start``), ``writers`` (list) and the totals
    ``rows_written``, ``rows_dropped`` and ``errors`` summed over writers."""
    return Run(run_dir).metadata


def value_columns(meta: dict[str, Any]) -> list[ValueColumn]:
    return [ValueColumn.from_json(c) for c in meta.get("value_columns", [])]


def open_dataset(run_dir: str | os.PathLike) -> ds.Dataset:
    """The run's rows as a ``pyarrow.dataset.Dataset`` (out of core), superseded rows filtered out.

    Columns as stored: ``sample_id`` identifies the sample (``sample_key`` is null where it is set).
    Partition columns ``split`` and ``epoch`` are ordinary columns; filter on them to read less:
    ``open_dataset(d).to_table(filter=pc.field("split") == "train", columns=["sample_id", "loss"])``."""
    return Run(run_dir).dataset()


def read_samples(run_dir: str | os.PathLike) -> pa.Table:
    """``sample_key``, ``sample_id`` of every sample with an id in the run; raises on a key collision."""
    return Run(run_dir).samples()


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
        with_ids: with ``columns=None``, include the categorical ``sample_id`` column (NaN where the
            writer never learned the id).
        sort: order rows by ``split, epoch, step, batch`` (within a batch: as written).

    Value columns come back as pandas nullable dtypes (``Float32``, ``Int64``, ``boolean``), so a
    null stays ``<NA>`` rather than becoming a sentinel; key columns are plain numpy dtypes and
    ``split`` / ``noise_kind`` / ``sample_id`` are categoricals. ``sample_key`` is filled for every
    row (``sample_key(sample_id)`` where the file stores only the id).
    """
    import pandas as pd

    check_selection(split, epochs)
    run = Run(run_dir)
    names = run.columns()
    if columns is None:
        columns = [c for c in names if with_ids or c != "sample_id"]
    unknown = [c for c in columns if c not in names]
    if unknown:
        raise ValueError(f"Unknown column(s) {unknown} in {run_dir}; available: {names}")
    needed = set(columns) | ({"split", "epoch", "step", "batch"} if sort else set())
    table = run.scan(split, epochs, [c for c in names if c in needed])
    if "sample_id" in table.column_names:  # positions of the ids: sortable, and a categorical's codes
        codes = run.id_positions(table.column("sample_id"))
        table = table.set_column(table.column_names.index("sample_id"), "sample_id", pa.array(codes, pa.int64()))
    if sort and table.num_rows:
        table = table.sort_by([("split", "ascending"), ("epoch", "ascending"), ("step", "ascending"),
                               ("batch", "ascending")])
    value_names = {c.name for c in run.value_columns}
    df = pd.DataFrame({name: _to_pandas(table.column(name), name in value_names) for name in table.column_names
                       if name != "sample_id"})
    if "sample_id" in table.column_names:
        ids = run.known_ids()
        categories = pd.Index(ids.to_numpy(zero_copy_only=False), dtype=object)
        df["sample_id"] = pd.Categorical.from_codes(table.column("sample_id").to_numpy(), categories=categories)
    return df[[c for c in columns if c in df.columns]].reset_index(drop=True)


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
