"""The two places where Keras itself must see through the id wrapper of :mod:`trainstats.keras.ids`.

Installed once when :mod:`trainstats.keras` is imported:

* :func:`install_unpack_patch`: Keras's ``unpack_x_y_sample_weight`` unwraps ids on *symbolic* data
  (the compiled loss/metrics build under a distribution strategy);
* :func:`install_class_weight_check`: ``fit(..., class_weight=...)`` on data that carries ids stops
  with :data:`CLASS_WEIGHT_MESSAGE` on every route (arrays, tensors, Datasets).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from trainstats.keras.ids import KEY_FIELD, _is_meta, is_wrapped, split_meta

__all__ = ["CLASS_WEIGHT_MESSAGE", "install_class_weight_check", "install_unpack_patch"]


def install_unpack_patch() -> None:
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
        if isinstance(data, (tuple, list)) and len(data) in (2, 3):
            if is_wrapped(data[1]) or _is_meta(data[1]):
                key = data[1][KEY_FIELD]
                if not isinstance(key, np.ndarray) and _is_symbolic(key):
                    data, _ = split_meta(data)
        return original(data)

    unpack_x_y_sample_weight._trainstats = True  # type: ignore[attr-defined]
    unpack_x_y_sample_weight.__doc__ = original.__doc__
    dau.unpack_x_y_sample_weight = unpack_x_y_sample_weight


#: the error for ``fit(..., class_weight=...)`` on data carrying ids, whatever the route (arrays, Dataset)
CLASS_WEIGHT_MESSAGE = (
    "trainstats.keras: fit's class_weight= cannot be combined with data that carries trainstats ids "
    "(Keras derives the weights from the labels, and the ids ride with the labels). Pass the "
    "equivalent per-sample weights instead: `sw = np.array([class_weight[int(c)] for c in y], "
    "'float32')`, then `with_ids((x, y, sw), ids)` for arrays or a Dataset of (x, y, sw) elements.")


def _carries_ids(x: Any, y: Any) -> bool:
    if is_wrapped(y):
        return True
    spec = getattr(x, "element_spec", None)
    return isinstance(spec, tuple) and len(spec) == 2 and _is_meta(spec[1])


def install_class_weight_check() -> None:
    """Refuse ``class_weight=`` on id-carrying data with :data:`CLASS_WEIGHT_MESSAGE`, before Keras's
    own data adapters fail on it in their own words (arrays) or drop the ids (Datasets).

    Wraps the constructors of Keras's array and ``tf.data`` adapters (not ``get_data_adapter``, so
    the warnings Keras issues there keep pointing at the caller's code)."""
    from keras.src.trainers.data_adapters.array_data_adapter import ArrayDataAdapter
    from keras.src.trainers.data_adapters.tf_dataset_adapter import TFDatasetAdapter

    def checked(cls, ids_of):
        original = cls.__init__
        if getattr(original, "_trainstats", False):
            return

        def __init__(self, *args, **kwargs):
            if kwargs.get("class_weight") is not None and ids_of(*args, **kwargs):
                raise ValueError(CLASS_WEIGHT_MESSAGE)
            original(self, *args, **kwargs)

        __init__._trainstats = True  # type: ignore[attr-defined]
        __init__.__doc__ = original.__doc__
        cls.__init__ = __init__

    checked(ArrayDataAdapter, lambda x, y=None, *a, **k: _carries_ids(x, k.get("y", y)))
    checked(TFDatasetAdapter, lambda dataset=None, *a, **k: _carries_ids(k.get("dataset", dataset), None))


def _is_symbolic(t: Any) -> bool:
    import tensorflow as tf
    from keras.src.backend.common.keras_tensor import KerasTensor

    if isinstance(t, KerasTensor):
        return True
    try:
        return tf.is_symbolic_tensor(t)
    except Exception:  # noqa: BLE001 - not a tensor at all
        return False
