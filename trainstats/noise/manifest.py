"""The noise manifest (Parquet, one row per noised example) and the summary JSON."""
from __future__ import annotations

import json
import os
from functools import lru_cache
from pathlib import Path
from typing import Any

__all__ = ["MANIFEST_NAME", "SUMMARY_NAME", "MANIFEST_SCHEMA", "ManifestWriter", "load_manifest",
           "read_summary"]

MANIFEST_NAME = "noise_manifest.parquet"
SUMMARY_NAME = "noise_summary.json"


@lru_cache(maxsize=1)
def _schema():
    import pyarrow as pa  # imported lazily: worker processes never need pyarrow

    return pa.schema([
        pa.field("sample_id", pa.string(), nullable=False),
        pa.field("split", pa.string(), nullable=False),
        pa.field("noise_kind", pa.string(), nullable=False),
        pa.field("level", pa.float64(), nullable=False),
        pa.field("seed", pa.int64(), nullable=False),
        pa.field("orig_has_bug", pa.bool_(), nullable=False),
        pa.field("new_has_bug", pa.bool_(), nullable=False),
        pa.field("orig_error_location", pa.int64(), nullable=False),
        pa.field("new_error_location", pa.int64(), nullable=False),
        pa.field("orig_repair_targets", pa.list_(pa.int64()), nullable=False),
        pa.field("new_repair_targets", pa.list_(pa.int64()), nullable=False),
        pa.field("changed_tokens", pa.int32(), nullable=False),
    ])


def __getattr__(name: str) -> Any:
    if name == "MANIFEST_SCHEMA":  # the pyarrow schema of the manifest (built on first access)
        return _schema()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class ManifestWriter:
    """Append per-shard manifest columns to a Parquet file (one row group per call)."""

    def __init__(self, path: str | os.PathLike, *, metadata: dict[str, str] | None = None):
        import pyarrow.parquet as pq

        schema = _schema().with_metadata({k: v for k, v in (metadata or {}).items()})
        self._writer = pq.ParquetWriter(str(path), schema)
        self._schema = schema
        self.rows = 0

    def write(self, columns: dict[str, list]) -> None:
        import pyarrow as pa

        arrays = [_to_arrow(columns[f.name], f.type, f.name) for f in self._schema]
        table = pa.Table.from_arrays(arrays, schema=self._schema)
        self._writer.write_table(table)
        self.rows += table.num_rows

    def close(self) -> None:
        self._writer.close()


def _offsets(lengths: list[int]):
    """Arrow offsets (int32, ``len(lengths) + 1`` values from 0) for items of the given lengths."""
    import numpy as np

    offsets = np.zeros(len(lengths) + 1, dtype=np.int32)
    np.cumsum(lengths, out=offsets[1:])
    return offsets


def _to_arrow(values: list, type_, name: str):
    """A non-null Arrow array of ``type_`` from a Python list, built from buffers.

    ``pa.array`` would import pandas on first use (pyarrow's pandas shim probes every input),
    which costs 0.5-0.8 s, a fifth of a 200 MB ``trainstats noise`` run; ``from_buffers`` does not.
    """
    import numpy as np
    import pyarrow as pa

    n = len(values)
    if pa.types.is_string(type_):
        encoded = [v.encode("utf-8") for v in values]
        offsets = _offsets([len(b) for b in encoded])
        return pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(b"".join(encoded)))
    if pa.types.is_boolean(type_):
        bits = np.packbits(np.asarray(values, dtype=bool), bitorder="little")
        return pa.Array.from_buffers(type_, n, [None, pa.py_buffer(bits)])
    if pa.types.is_list(type_):
        offsets = _offsets([len(v) for v in values])
        flat = [x for v in values for x in v]
        inner = _to_arrow(flat, type_.value_type, name)
        return pa.ListArray.from_arrays(pa.Array.from_buffers(pa.int32(), n + 1, [None, pa.py_buffer(offsets)]),
                                        inner, type=type_)
    dtype = {pa.int64(): np.int64, pa.int32(): np.int32, pa.float64(): np.float64}.get(type_)
    if dtype is None:  # pragma: no cover - the schema holds only the types above
        raise TypeError(f"manifest column {name!r}: no buffer conversion for {type_}")
    data = np.asarray(values, dtype=dtype)
    if data.shape != (n,):
        raise ValueError(f"manifest column {name!r}: expected {n} scalars, received shape {data.shape}")
    return pa.Array.from_buffers(type_, n, [None, pa.py_buffer(data)])


def _manifest_path(path: str | os.PathLike) -> Path:
    p = Path(path)
    return p / MANIFEST_NAME if p.is_dir() else p


def load_manifest(path: str | os.PathLike):
    """Read a noise manifest as a pandas DataFrame (one row per noised example).

    Args:
        path: the manifest Parquet file, or the noised output directory holding it.

    Returns:
        DataFrame with the columns of ``MANIFEST_SCHEMA`` (``sample_id``, ``split``,
        ``noise_kind``, ``level``, ``seed``, ``orig_/new_has_bug``, ``orig_/new_error_location``,
        ``orig_/new_repair_targets``, ``changed_tokens``).

    Raises:
        FileNotFoundError: no manifest there. ValueError: the file lacks ``sample_id``/``noise_kind``.
    """
    import pyarrow.parquet as pq

    p = _manifest_path(path)
    if not p.is_file():
        raise FileNotFoundError(f"no noise manifest at {str(p)!r} (expected {MANIFEST_NAME} in a noised directory)")
    table = pq.read_table(p)
    missing = {"sample_id", "noise_kind"} - set(table.column_names)
    if missing:
        raise ValueError(f"{str(p)!r} is not a noise manifest: missing column(s) {sorted(missing)}; "
                         f"columns are {table.column_names}")
    return table.to_pandas()


def read_summary(path: str | os.PathLike) -> dict:
    """Read ``noise_summary.json`` (``path``: the file or the noised output directory)."""
    p = Path(path)
    p = p / SUMMARY_NAME if p.is_dir() else p
    with open(p, encoding="utf-8") as fh:
        return json.load(fh)
