"""Per-sample statistics from ``model.fit``'s own training forward pass (Keras 3, TensorFlow backend).

Two changed lines in an existing script::

    from trainstats.keras import with_ids, PerSampleStats
    ds = with_ids(tf.data.Dataset.from_tensor_slices((x, y)), ids).shuffle(1000).batch(32)   # 1
    model.fit(ds, epochs=5, callbacks=[PerSampleStats("runs/my-run")])                         # 2

Rows land in a run directory (``docs/store.md``); read them with ``trainstats.read``. See
``docs/keras.md`` for the statistics, head-stats protocol and what is supported.
"""
from trainstats.keras import multiworker as _multiworker
from trainstats.keras import patches as _patches
from trainstats.keras.callback import PerSampleStats
from trainstats.keras.heads import (
    HEAD_STATS,
    HeadStatsFn,
    binary_stats,
    categorical_stats,
    pointer_stats,
    sparse_categorical_stats,
)
from trainstats.keras.ids import with_ids
from trainstats.keras.monitor import MemorizationMonitor

_patches.install_unpack_patch()
_patches.install_class_weight_check()
_multiworker.install_symbolic_build_patch()

__all__ = [
    "HEAD_STATS",
    "HeadStatsFn",
    "MemorizationMonitor",
    "PerSampleStats",
    "binary_stats",
    "categorical_stats",
    "pointer_stats",
    "sparse_categorical_stats",
    "with_ids",
]
