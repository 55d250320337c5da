"""Read a run directory one ``(split, epoch)`` partition at a time, as numpy arrays.

Only the columns analysis needs are read, one epoch at a time, so memory stays bounded by the
largest epoch (plus the per-sample state), whatever the run's total row count.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from trainstats.store import open_dataset, read_metadata

__all__ = ["RunSource", "as_float", "as_bool"]

_EPOCH_DIR = re.compile(r"^epoch=(-?\d+)$")


def as_float(col: pa.ChunkedArray | pa.Array, order: np.ndarray | None = None) -> np.ndarray:
    """A numeric/bool Arrow column as float64 numpy, null -> NaN (bool -> 1.0 / 0.0).

    ``order``: a permutation applied before widening to float64 (cheaper on float32 data)."""
    typ = col.type
    if pa.types.is_floating(typ):
        a = col.to_numpy() if isinstance(col, pa.ChunkedArray) else col.to_numpy(zero_copy_only=False)  # null->NaN
    elif pa.types.is_boolean(typ):
        a = _np(pc.fill_null(col, False)).astype(np.float64)
        if col.null_count:
            a[~_np(pc.is_valid(col))] = np.nan
    else:
        a = _np(pc.fill_null(pc.cast(col, pa.float64()), np.nan))
    if order is not None:
        a = a[order]
    return np.asarray(a, np.float64)


def _np(col: pa.ChunkedArray | pa.Array) -> np.ndarray:
    return col.to_numpy() if isinstance(col, pa.ChunkedArray) else col.to_numpy(zero_copy_only=False)


def as_bool(col: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """A bool Arrow column as numpy bool, null -> False."""
    if col.null_count:
        col = pc.fill_null(col, False)
    return np.asarray(col.to_numpy() if isinstance(col, pa.ChunkedArray) else col.to_numpy(zero_copy_only=False),
                      bool)


@dataclass
class RunSource:
    """One run directory opened for analysis (metadata read once, dataset opened lazily)."""

    run_dir: Path
    metadata: dict

    @classmethod
    def open(cls, run_dir: str | Path) -> "RunSource":
        path = Path(run_dir)
        if not (path / "run.json").is_file():
            raise ValueError(f"{path} is not a run directory: no run.json (expected a directory written by "
                             "trainstats.store.RunWriter)")
        return cls(path, read_metadata(path))

    def epochs(self, split: str) -> list[int]:
        """Epochs of ``split`` with at least one completed part file, ascending."""
        base = self.run_dir / "rows" / f"split={split}"
        if not base.is_dir():
            return []
        out = []
        for d in base.iterdir():
            m = _EPOCH_DIR.match(d.name)
            if m and d.is_dir() and any(d.glob("part-*.parquet")):
                out.append(int(m.group(1)))
        return sorted(out)

    def splits(self) -> list[str]:
        base = self.run_dir / "rows"
        if not base.is_dir():
            return []
        return sorted(d.name[len("split="):] for d in base.iterdir() if d.name.startswith("split=")
                      and self.epochs(d.name[len("split="):]))

    @property
    def dataset(self) -> ds.Dataset:
        if not hasattr(self, "_dataset"):
            self._dataset = open_dataset(self.run_dir)
        return self._dataset

    def columns(self) -> set[str]:
        return set(self.dataset.schema.names)

    def read(self, split: str, epoch: int, columns: list[str]) -> pa.Table:
        """Rows of one ``(split, epoch)`` with the given columns (newest attempt wins)."""
        expr = (ds.field("split") == split) & (ds.field("epoch") == epoch)
        return self.dataset.to_table(columns=columns, filter=expr)

    def registered_keys(self) -> np.ndarray:
        """Sorted distinct keys of the ``samples/`` side table (empty when there is none)."""
        files = sorted((self.run_dir / "samples").glob("part-*.parquet"))
        if not files:
            return np.zeros(0, np.int64)
        keys = np.concatenate([pq.read_table(f, columns=["sample_key"]).column("sample_key").to_numpy()
                               for f in files])
        keys.sort()
        return keys[np.r_[True, keys[1:] != keys[:-1]]] if len(keys) else keys

    def sample_ids(self, keys: np.ndarray) -> tuple[pa.Array, int]:
        """``(sample_id array aligned with sorted keys (null when unregistered), number unregistered)``.

        Reads the ``samples/`` side table directly (key collisions are checked by
        :func:`trainstats.store.read_samples`, not here)."""
        files = sorted((self.run_dir / "samples").glob("part-*.parquet"))
        if not files or not len(keys):
            return pa.nulls(len(keys), pa.string()), len(keys)
        table = pa.concat_tables(pq.read_table(f, columns=["sample_key", "sample_id"]) for f in files)
        all_keys = table.column("sample_key").to_numpy()
        order = np.argsort(all_keys, kind="stable")
        sk = all_keys[order]
        first = np.ones(len(sk), bool)
        first[1:] = sk[1:] != sk[:-1]
        skeys, rows = sk[first], order[first]
        pos = np.minimum(np.searchsorted(skeys, keys), len(skeys) - 1)
        hit = skeys[pos] == keys
        ids = pc.take(table.column("sample_id").combine_chunks(), pa.array(rows[pos]))
        if not hit.all():
            ids = pc.if_else(pa.array(hit), ids, pa.scalar(None, pa.string()))
        return ids, int((~hit).sum())
