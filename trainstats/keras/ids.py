"""Attach sample ids (and optional noise flags) to Keras training data.

Ids travel with the data as int64 sample keys: a Dataset's elements become
``((x, y[, sw]), {"__trainstats_key__": key, "__trainstats_noise__": code})`` (a zip, no per-element
map); for arrays ``y`` becomes ``{"__trainstats_key__": keys, "__trainstats_noise__": codes,
"__trainstats_y__": y}``, so Keras's own slicing and shuffling moves them with the samples. Either way
every batch carries exactly its own ids.
The :class:`~trainstats.keras.PerSampleStats` callback strips the wrapper before the model's
``train_step`` sees the data, so the model, its inputs and its loss are untouched.

Noise flags travel the same way as an int32 code per sample (``-1`` not given, ``0`` clean, ``>0``
noised, with the kind's index in a host-side vocabulary). The string ids stay on the host in a
process-wide registry (strings cannot travel through XLA or distribution strategies) and are
registered with each run's side table.
"""
from __future__ import annotations

import threading
from typing import Any, Sequence

import numpy as np

from trainstats.store import sample_key

__all__ = ["KEY_FIELD", "NOISE_FIELD", "Y_FIELD", "with_ids", "registry", "split_meta", "is_wrapped"]

KEY_FIELD = "__trainstats_key__"
NOISE_FIELD = "__trainstats_noise__"
Y_FIELD = "__trainstats_y__"


class _Registry:
    """Host-side list of every ``(sample_key, sample_id)`` attached so far (registered with writers)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._chunks: list[tuple[np.ndarray, list[str]]] = []
        self._kinds: list[str | None] = [None]  # noise-kind vocabulary; code 1 + j means kinds[j]

    def add(self, keys: np.ndarray, ids: list[str]) -> None:
        with self._lock:
            self._chunks.append((keys, ids))

    def __len__(self) -> int:
        return len(self._chunks)

    def chunks_since(self, start: int) -> list[tuple[np.ndarray, list[str]]]:
        with self._lock:
            return list(self._chunks[start:])

    def kind_code(self, kind: str | None) -> int:
        with self._lock:
            if kind not in self._kinds:
                self._kinds.append(kind)
            return 1 + self._kinds.index(kind)

    def decode_noise(self, codes: np.ndarray) -> tuple[np.ndarray, list] | None:
        """Per-row noise codes -> ``(flags, kinds)``; None when no row carried flags (use the manifest).
        Codes: -1 not given, 0 clean, ``1 + j`` noised with kind ``j`` of the vocabulary."""
        if codes.size == 0 or (codes < 0).all():
            return None
        with self._lock:
            vocab = np.array([None] + self._kinds, dtype=object)
        flags = codes > 0
        kinds = vocab[np.where(flags, codes, 0)].tolist()
        return flags, kinds


registry = _Registry()


def _as_ids(ids: Any, n: int, what: str) -> list[str]:
    if ids is None:
        return [str(i) for i in range(n)]
    arr = np.asarray(ids)
    if arr.ndim != 1:
        raise ValueError(f"ids must be 1-D (one id per sample); received shape {arr.shape}")
    if arr.dtype.kind in "iu":
        out = [str(int(v)) for v in arr]
    elif arr.dtype.kind in "USO":
        out = [v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in arr.tolist()]
    else:
        raise TypeError(f"ids must be strings or integers; received dtype {arr.dtype}")
    if len(out) != n and n >= 0:
        raise ValueError(f"{what} has {n} samples but {len(out)} ids were given; expected one id per sample")
    if len(set(out)) != len(out):
        raise ValueError("ids must be unique; received duplicates")
    return out


def _noise_codes(noise: Any, noise_kind: Any, n: int) -> np.ndarray:
    """int32 code per sample (see ``_Registry.decode_noise``); travels with the data like the key."""
    flags, kinds = _as_noise(noise, noise_kind, n)
    if flags is None:
        return np.full(n, -1, np.int32)
    kinds = kinds or [None] * n
    return np.array([registry.kind_code(k) if f else 0 for f, k in zip(flags, kinds)], np.int32)


def _as_noise(noise: Any, noise_kind: Any, n: int) -> tuple[np.ndarray | None, list | None]:
    if noise is None:
        if noise_kind is not None:
            raise ValueError("noise_kind was given without noise; pass both or neither")
        return None, None
    flags = np.asarray(noise)
    if flags.shape != (n,) or flags.dtype.kind != "b":
        raise ValueError(f"noise must be a bool array with one entry per sample ({n}); received shape "
                         f"{flags.shape} dtype {flags.dtype}")
    kinds = None
    if noise_kind is not None:
        if isinstance(noise_kind, str):
            kinds = [noise_kind if f else None for f in flags]
        else:
            kinds = [None if k is None else str(k) for k in noise_kind]
            if len(kinds) != n:
                raise ValueError(f"noise_kind has {len(kinds)} entries; expected {n}")
            kinds = [k if f else None for k, f in zip(kinds, flags)]
    return flags.copy(), kinds


def with_ids(data: Any, ids: Sequence[str] | Sequence[int] | None = None, *, noise: Any = None,
             noise_kind: Any = None) -> Any:
    """Attach sample ids (and optional noise flags) to training or validation data.

    Args:
        data: either an *unbatched* ``tf.data.Dataset`` whose elements are ``(x, y)`` or
            ``(x, y, sample_weight)`` — attach ids *before* ``shuffle()`` / ``batch()`` so they
            travel with their samples; a batched one (``batch``, ``padded_batch``,
            ``bucket_by_sequence_length``, ... not undone by ``unbatch``) is refused — or a tuple of arrays ``(x, y)`` / ``(x, y, sample_weight)``
            as passed to ``model.fit(x, y, ...)``.
        ids: one id per sample (str, or int turned into str); ``None``: the sample's position
            ``"0", "1", ...``. Rows store ``sample_key(id)``; the reader maps keys back to ids.
        noise: optional bool per sample (was it noised); when absent the run's ``noise_manifest``
            (if any) decides. noise_kind: a str for all noised samples or one str/None per sample.

    Returns:
        The same kind of object with ``y`` wrapped: a Dataset, or a tuple to unpack into
        ``model.fit(*data, ...)`` / ``validation_data=``.

    Example::

        ds = with_ids(tf.data.Dataset.from_tensor_slices((x, y)), ids).shuffle(1000).batch(32)
        x, y = with_ids((x, y), ids)
    """
    import tensorflow as tf

    if isinstance(data, tf.data.Dataset):
        spec = data.element_spec
        if not isinstance(spec, tuple) or len(spec) not in (2, 3):
            raise ValueError("with_ids expects a Dataset of (x, y) or (x, y, sample_weight) elements; "
                             f"received element_spec {spec}")
        if _is_meta(spec[1]) or (isinstance(spec[1], dict) and KEY_FIELD in spec[1]):
            raise ValueError("this Dataset already carries trainstats ids")
        batched_by = _batching_step(data)
        if batched_by is not None:
            raise ValueError(
                f"with_ids received a batched Dataset (built with {batched_by}): its elements are batches, "
                "so it would attach one id per batch. Attach ids to the unbatched samples, then batch: "
                "`with_ids(tf.data.Dataset.from_tensor_slices((x, y)), ids).shuffle(n).batch(b)` "
                "(or call .unbatch() first).")
        card = int(data.cardinality())
        if ids is None and card < 0:
            raise ValueError("ids=None needs a Dataset of known cardinality; pass ids explicitly")
        id_list = _as_ids(ids, card if card >= 0 else len(ids), "the Dataset")
        n = len(id_list)
        keys = sample_key(id_list).astype(np.int64)
        codes = _noise_codes(noise, noise_kind, n)
        registry.add(keys, id_list)
        # zip, no map: a per-element map costs ~4x the input pipeline of a small model
        meta = tf.data.Dataset.from_tensor_slices({KEY_FIELD: keys, NOISE_FIELD: codes})
        return tf.data.Dataset.zip((data, meta))
    if isinstance(data, (tuple, list)) and len(data) in (2, 3):
        x, y = data[0], data[1]
        flat_x = tf.nest.flatten(x)
        if not flat_x:
            raise ValueError("with_ids received no x arrays")
        n = int(np.shape(flat_x[0])[0])
        id_list = _as_ids(ids, n, "x")
        keys = sample_key(id_list).astype(np.int64)
        codes = _noise_codes(noise, noise_kind, n)
        registry.add(keys, id_list)
        wrapped = {KEY_FIELD: keys, NOISE_FIELD: codes, Y_FIELD: y}
        return (x, wrapped) if len(data) == 2 else (x, wrapped, data[2])
    raise TypeError("with_ids expects an unbatched tf.data.Dataset or a tuple (x, y[, sample_weight]) of arrays; "
                    f"received {type(data).__name__}")


_BATCHING = {"_BatchDataset": "batch()", "_ParallelBatchDataset": "batch()", "_PaddedBatchDataset": "padded_batch()",
             "_GroupByWindowDataset": "group_by_window() / bucket_by_sequence_length()",
             "_RebatchDataset": "rebatch()", "_WindowDataset": "window()",
             "_DenseToSparseBatchDataset": "dense_to_sparse_batch()"}


def _batching_step(ds: Any, depth: int = 0) -> str | None:
    """The transformation that made ``ds``'s elements batches (``"batch()"``, ...), or None.

    Walks the Dataset's inputs from the top: the first batching step met means batched elements,
    an ``unbatch()`` met first means single samples again. Datasets that hide their inputs
    (``from_generator``) count as unbatched; the recorder checks the ids per batch as well."""
    name = type(ds).__name__
    if "Unbatch" in name or depth > 200:
        return None
    if name in _BATCHING or ("Batch" in name and "Unbatch" not in name):
        return _BATCHING.get(name, name)
    try:
        inputs = ds._inputs()
    except Exception:  # noqa: BLE001 - a Dataset type without the (private) lineage API
        return None
    for parent in inputs:
        found = _batching_step(parent, depth + 1)
        if found is not None:
            return found
    return None


def is_wrapped(y: Any) -> bool:
    """y of array data with ids attached: ``{KEY_FIELD, NOISE_FIELD, Y_FIELD}``."""
    return isinstance(y, dict) and set(y) == {KEY_FIELD, NOISE_FIELD, Y_FIELD}


def _is_meta(m: Any) -> bool:
    return isinstance(m, dict) and set(m) == {KEY_FIELD, NOISE_FIELD}


def split_meta(data: Any) -> tuple[Any, Any]:
    """Separate the ids from a batch. Two forms carry them:

    * Dataset form ``((x, y[, sw]), {KEY_FIELD, NOISE_FIELD})`` (``with_ids`` zips the ids on);
    * array form ``(x, {KEY_FIELD, NOISE_FIELD, Y_FIELD}[, sw])`` (ids ride in the label slot, so
      Keras's array slicing and shuffling moves them with the samples).

    Returns ``((x, y[, sw]), {"key": keys, "noise": codes})``, or ``(data, None)`` without ids.
    """
    if isinstance(data, list):
        data = tuple(data)
    if (isinstance(data, tuple) and len(data) == 2 and _is_meta(data[1])
            and isinstance(data[0], (tuple, list)) and len(data[0]) in (2, 3)):
        return tuple(data[0]), {"key": data[1][KEY_FIELD], "noise": data[1][NOISE_FIELD]}
    if isinstance(data, tuple) and len(data) in (2, 3) and is_wrapped(data[1]):
        y = data[1][Y_FIELD]
        meta = {"key": data[1][KEY_FIELD], "noise": data[1][NOISE_FIELD]}
        rest = tuple(data[2:])
        if rest and is_wrapped(rest[0]):
            # Keras broadcast a flat sample_weight over the wrapped y's structure; take the y part.
            rest = (rest[0][Y_FIELD],)
        return (data[0], y) + rest, meta
    return data, None
