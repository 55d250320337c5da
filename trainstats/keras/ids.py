"""Attach sample ids (and optional noise flags) to Keras training data.

Ids travel *inside the label slot*: ``y`` becomes ``{"__trainstats_key__": keys, "__trainstats_y__": y}``
where ``keys`` are the int64 ``sample_key`` of each id. Keras slices, shuffles, batches and
distributes this structure together with ``x`` and ``y``, so every batch carries exactly its own ids.
The :class:`~trainstats.keras.PerSampleStats` callback strips the wrapper before the model's
``train_step`` sees the data, so the model, its inputs and its loss are untouched.

The string ids and noise flags stay on the host in a process-wide registry (strings cannot travel
through XLA or distribution strategies); rows are matched back to them by key.
"""
from __future__ import annotations

import threading
from typing import Any, Sequence

import numpy as np

from trainstats.store import sample_key

__all__ = ["KEY_FIELD", "Y_FIELD", "with_ids", "registry", "split_meta", "is_wrapped"]

KEY_FIELD = "__trainstats_key__"
Y_FIELD = "__trainstats_y__"


class _Registry:
    """Host-side ``sample_key -> (sample_id, noise, noise_kind)`` table of every id attached so far."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._chunks: list[tuple[np.ndarray, list[str], np.ndarray | None, list | None]] = []
        self._flags: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    def add(self, keys: np.ndarray, ids: list[str], noise: np.ndarray | None, kinds: list | None) -> None:
        with self._lock:
            self._chunks.append((keys, ids, noise, kinds))
            if noise is not None:
                self._flags = None

    def __len__(self) -> int:
        return len(self._chunks)

    def chunks_since(self, start: int) -> list[tuple[np.ndarray, list[str]]]:
        with self._lock:
            return [(k, i) for k, i, _, _ in self._chunks[start:]]

    def noise_for(self, keys: np.ndarray) -> tuple[np.ndarray, list] | None:
        """Flags for these keys when any attached data carried noise flags, else None."""
        with self._lock:
            flagged = [c for c in self._chunks if c[2] is not None]
            if not flagged:
                return None
            if self._flags is None:
                k = np.concatenate([c[0] for c in flagged])
                f = np.concatenate([c[2] for c in flagged])
                kinds = np.array([x for c in flagged for x in (c[3] or [None] * len(c[0]))], dtype=object)
                order = np.argsort(k, kind="stable")
                self._flags = (k[order], f[order], kinds[order])
            sk, sf, skind = self._flags
        pos = np.clip(np.searchsorted(sk, keys), 0, len(sk) - 1)
        hit = sk[pos] == keys
        flags = np.where(hit, sf[pos], False)
        kinds = [kd if (h and fl) else None for kd, h, fl in zip(skind[pos], hit, flags)]
        return flags.astype(bool), kinds


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
            travel with their samples — or a tuple of arrays ``(x, y)`` / ``(x, y, sample_weight)``
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
        if isinstance(spec[1], dict) and KEY_FIELD in spec[1]:
            raise ValueError("this Dataset already carries trainstats ids")
        card = int(data.cardinality())
        if ids is None and card < 0:
            raise ValueError("ids=None needs a Dataset of known cardinality; pass ids explicitly")
        id_list = _as_ids(ids, card if card >= 0 else len(ids), "the Dataset")
        n = len(id_list)
        keys = sample_key(id_list).astype(np.int64)
        flags, kinds = _as_noise(noise, noise_kind, n)
        registry.add(keys, id_list, flags, kinds)
        key_ds = tf.data.Dataset.from_tensor_slices(keys)

        def attach(element, key):
            x, y = element[0], element[1]
            wrapped = {KEY_FIELD: key, Y_FIELD: y}
            return (x, wrapped) if len(element) == 2 else (x, wrapped, element[2])

        return tf.data.Dataset.zip((data, key_ds)).map(attach)
    if isinstance(data, (tuple, list)) and len(data) in (2, 3):
        x, y = data[0], data[1]
        flat_x = tf.nest.flatten(x)
        if not flat_x:
            raise ValueError("with_ids received no x arrays")
        n = int(np.shape(flat_x[0])[0])
        id_list = _as_ids(ids, n, "x")
        keys = sample_key(id_list).astype(np.int64)
        flags, kinds = _as_noise(noise, noise_kind, n)
        registry.add(keys, id_list, flags, kinds)
        wrapped = {KEY_FIELD: keys, Y_FIELD: y}
        return (x, wrapped) if len(data) == 2 else (x, wrapped, data[2])
    raise TypeError("with_ids expects an unbatched tf.data.Dataset or a tuple (x, y[, sample_weight]) of arrays; "
                    f"received {type(data).__name__}")


def is_wrapped(y: Any) -> bool:
    return isinstance(y, dict) and KEY_FIELD in y and Y_FIELD in y


def split_meta(data: Any) -> tuple[Any, Any]:
    """``(x, wrapped_y[, sw])`` -> ``((x, y[, sw]), keys)``; data without ids -> ``(data, None)``."""
    if isinstance(data, list):
        data = tuple(data)
    if isinstance(data, tuple) and len(data) in (2, 3) and is_wrapped(data[1]):
        y = data[1][Y_FIELD]
        keys = data[1][KEY_FIELD]
        return (data[0], y) + tuple(data[2:]), keys
    return data, None


def _install_unpack_patch() -> None:
    """Let Keras's own ``unpack_x_y_sample_weight`` see through the id wrapper on *symbolic* data.

    Keras builds the compiled loss/metrics from the first batch before any callback runs when the
    model lives under a distribution strategy (``Trainer._symbolic_build``); without this, that build
    would see the wrapper as the label. Only symbolic tensors (KerasTensor / graph tensors) are
    unwrapped, so ``fit``'s own unpacking of ``validation_data`` arrays keeps the ids.
    """
    from keras.src.trainers.data_adapters import data_adapter_utils as dau

    if getattr(dau.unpack_x_y_sample_weight, "_trainstats", False):
        return
    original = dau.unpack_x_y_sample_weight

    def unpack_x_y_sample_weight(data):
        if isinstance(data, (tuple, list)) and len(data) in (2, 3) and is_wrapped(data[1]):
            key = data[1][KEY_FIELD]
            if not isinstance(key, np.ndarray) and _is_symbolic(key):
                data, _ = split_meta(data)
        return original(data)

    unpack_x_y_sample_weight._trainstats = True  # type: ignore[attr-defined]
    unpack_x_y_sample_weight.__doc__ = original.__doc__
    dau.unpack_x_y_sample_weight = unpack_x_y_sample_weight


def _is_symbolic(t: Any) -> bool:
    import tensorflow as tf
    from keras.src.backend.common.keras_tensor import KerasTensor

    if isinstance(t, KerasTensor):
        return True
    try:
        return tf.is_symbolic_tensor(t)
    except Exception:  # noqa: BLE001 - not a tensor at all
        return False
