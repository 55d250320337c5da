"""The trainstats Keras callback set up for the VarMisuse models (heads ``loc``/``rep`` + joint columns).

::

    ds = batch_by_length(with_ids(element_dataset(enc), enc.sample_ids).shuffle(len(enc)), max_tokens=256)
    model.fit(ds, epochs=5, callbacks=[varmisuse_callback("runs/great-0")])

Columns written per sample and step (docs/store.md naming): ``loc_*`` and ``rep_*`` (loss,
gold_prob, pred, pred_prob, correct, margin; ``rep_*`` null on bug-free examples),
``joint_correct`` (head ``joint``, stat ``correct``), ``has_bug`` and ``n_tokens`` (context columns).
"""
from __future__ import annotations

import os
from typing import Any, Mapping

import tensorflow as tf

from trainstats.store import ValueColumn

from .stats import HEAD_STATS, varmisuse_extra_stats

__all__ = ["EXTRA_COLUMNS", "capture_extra_stats", "varmisuse_callback"]

#: the model-level columns :func:`capture_extra_stats` returns
EXTRA_COLUMNS = [
    ValueColumn("joint_correct", "bool", head="joint", stat="correct", unit="",
                description="location correct and, for buggy examples, repair target mass >= 0.5 (GREAT)"),
    ValueColumn("has_bug", "bool", head=None, stat="has_bug", unit="",
                description="the example (as trained on, i.e. after noise) is buggy"),
    ValueColumn("n_tokens", "int32", head=None, stat="n_tokens", unit="tokens",
                description="number of source tokens of the example"),
]


def capture_extra_stats(x: Any, y_true: Mapping[str, tf.Tensor], y_pred: Mapping[str, tf.Tensor],
                        stats: Any = None) -> dict[str, tf.Tensor]:
    """``extra_stats`` for :class:`trainstats.keras.PerSampleStats`: joint_correct, has_bug, n_tokens."""
    return varmisuse_extra_stats(y_true, y_pred)


def varmisuse_callback(run_dir: str | os.PathLike, **kwargs: Any):
    """A :class:`trainstats.keras.PerSampleStats` with the VarMisuse heads and extra columns.

    ``kwargs`` go to ``PerSampleStats`` (``noise_manifest``, ``config``, ``record_dev`` ...).
    ``jit_stats`` defaults to False here: length bucketing gives every batch a new shape, and an
    XLA-compiled stats kernel would be recompiled for each.
    """
    from trainstats.keras import PerSampleStats

    for reserved in ("heads", "extra_stats", "extra_columns"):
        if reserved in kwargs:
            raise TypeError(f"varmisuse_callback sets {reserved!r} itself; received it in kwargs")
    kwargs.setdefault("jit_stats", False)
    return PerSampleStats(run_dir, heads=dict(HEAD_STATS), extra_stats=capture_extra_stats,
                          extra_columns=list(EXTRA_COLUMNS), **kwargs)
