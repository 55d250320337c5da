"""Validation of one ``RunWriter.write`` call, in the caller's thread.

Every problem is a ``ValueError``/``TypeError`` naming the column, what was received and what was
expected, raised before anything is queued — so a bad call never reaches the files.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from trainstats.store.schema import SPLITS, ValueColumn

__all__ = ["Batch", "make_batch", "per_row", "first_step"]

_NP_DTYPES = {"float32": np.float32, "float64": np.float64, "int32": np.int32,
              "int64": np.int64, "bool": np.bool_}
_ACCEPTED_KINDS = {"float32": "fiub", "float64": "fiub", "int32": "iub", "int64": "iub", "bool": "b"}


@dataclass
class Batch:
    """One validated batch of rows, owned by the writer (arrays are private copies)."""

    split: str
    epoch: int
    step: np.ndarray | int  # int64 per row, or one int for every row
    batch: np.ndarray | int  # int32 per row, or one int
    keys: np.ndarray
    values: dict[str, tuple[np.ndarray, np.ndarray | None]]
    noise: np.ndarray | None
    noise_kind: list | None


def _to_numpy(x: Any, name: str) -> tuple[np.ndarray, np.ndarray | None]:
    if isinstance(x, np.ma.MaskedArray):
        return np.asarray(x.data), np.ma.getmaskarray(x)
    if hasattr(x, "numpy") and not isinstance(x, np.ndarray):
        x = x.numpy()
    try:
        return np.asarray(x), None
    except Exception as e:  # noqa: BLE001
        raise TypeError(f"column {name!r}: cannot convert {type(x).__name__} to an array ({e})") from None


def _per_row(value: Any, name: str, n: int, dtype) -> np.ndarray | int:
    """An int (kept as one int for every row), or an integer array of ``n`` entries; never negative."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_)):
        if value < 0:
            raise ValueError(f"{name} must be a non-negative int or an integer array with one entry per "
                             f"sample; received {value}")
        return int(value)
    arr, _ = _to_numpy(value, name)
    if arr.ndim == 0 and arr.dtype.kind in "iu":
        return _per_row(int(arr), name, n, dtype)
    if arr.shape != (n,) or arr.dtype.kind not in "iu" or (n and arr.min() < 0):
        raise ValueError(f"{name} must be a non-negative int or an integer array with one entry per sample; "
                         f"received shape {arr.shape} dtype {arr.dtype}, sample_key has {n} entries")
    return arr.astype(dtype, copy=True)


def make_batch(columns: Mapping[str, ValueColumn], *, split: str, epoch: int, step: Any, batch: Any,
               sample_key: Any, values: Mapping[str, Any], noise: Any, noise_kind: Any) -> Batch:
    """Validate one ``RunWriter.write`` call and return private copies of its arrays."""
    keys = sample_key
    if split not in SPLITS:
        raise ValueError(f"Invalid split {split!r}; expected one of {SPLITS}")
    if isinstance(epoch, (bool, np.bool_)) or not isinstance(epoch, (int, np.integer)) or epoch < 0:
        raise ValueError(f"epoch must be a non-negative int; received {epoch!r}")
    keys, _ = _to_numpy(keys, "sample_key")
    if keys.ndim != 1 or keys.dtype.kind not in "iu":
        raise ValueError(f"sample_key must be a 1-D integer array (use trainstats.sample_key for string ids); "
                         f"received shape {keys.shape} dtype {keys.dtype}")
    keys = keys.astype(np.int64, copy=True)
    n = len(keys)
    step_arr = _per_row(step, "step", n, np.int64)
    batch_arr = _per_row(batch, "batch", n, np.int32)
    if not isinstance(values, Mapping):
        raise TypeError(f"values must be a mapping column name -> array; received {type(values).__name__}")
    unknown = sorted(set(values) - set(columns))
    if unknown:
        raise ValueError(f"Unknown value column(s) {unknown}; this run declares {sorted(columns)}")
    out: dict[str, tuple[np.ndarray, np.ndarray | None]] = {}
    for name, raw in values.items():
        if raw is None:
            continue
        col = columns[name]
        data, mask = _to_numpy(raw, name)
        if data.ndim == 2 and data.shape[1] == 1:
            data = data[:, 0]
            mask = None if mask is None else mask[:, 0]
        if data.ndim != 1 or len(data) != n:
            raise ValueError(f"column {name!r} has shape {data.shape} but sample_key has {n} entries; "
                             "expected one value per sample")
        if data.dtype.kind not in _ACCEPTED_KINDS[col.dtype]:
            raise ValueError(f"column {name!r} is declared {col.dtype}; received an array of dtype "
                             f"{data.dtype}")
        out[name] = (data.astype(_NP_DTYPES[col.dtype], copy=True), None if mask is None else mask.copy())
    flags = kinds = None
    if noise is not None:
        flags, _ = _to_numpy(noise, "noise")
        if flags.shape != (n,) or flags.dtype.kind != "b":
            raise ValueError(f"noise must be a bool array with one entry per sample; received shape "
                             f"{flags.shape} dtype {flags.dtype}, sample_key has {n} entries")
        flags = flags.copy()
        if noise_kind is not None:
            kinds = [None if k is None else (k.decode() if isinstance(k, bytes) else str(k)) for k in noise_kind]
            if len(kinds) != n:
                raise ValueError(f"noise_kind has {len(kinds)} entries but sample_key has {n}")
    elif noise_kind is not None:
        raise ValueError("noise_kind was given without noise; pass both or neither")
    return Batch(split, int(epoch), step_arr, batch_arr, keys, out, flags, kinds)


def per_row(chunks: list, field: str, dtype) -> np.ndarray:
    """One array of ``field`` (``step`` or ``batch``) over the rows of several batches."""
    values = [getattr(c, field) for c in chunks]
    if all(isinstance(v, int) for v in values):
        return np.repeat(np.array(values, dtype), [len(c.keys) for c in chunks])
    return np.concatenate([np.full(len(c.keys), v, dtype) if isinstance(v, int) else v for c, v in zip(chunks, values)])


def first_step(chunk: Batch) -> int:
    return chunk.step if isinstance(chunk.step, int) else int(chunk.step.min())
