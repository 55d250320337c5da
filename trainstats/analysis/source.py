"""Arrow columns as the numpy arrays analysis computes on (null -> NaN / False).

Rows come from :class:`trainstats.store.Run` one ``(split, epoch)`` partition at a time, with only
the columns analysis needs, so memory stays bounded by the largest epoch (plus the per-sample
state), whatever the run's total row count.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["as_float", "as_bool"]


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
