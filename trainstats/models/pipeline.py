"""EncodedSet -> ``tf.data.Dataset`` of padded, length-bucketed batches.

Each element is ``(x, y)`` with

* ``x["subtokens"]`` int32 ``[B, T, S]``, ``x["edges"]`` int32 ``[B, E, 3]`` (type 0 = padding),
  ``x["candidates"]`` float32 ``[B, T]``;
* ``y["loc"]`` int32 ``[B]`` (error location), ``y["rep"]`` float32 ``[B, T]`` (repair target code,
  see :mod:`trainstats.models.data`; padding is -2).

``T`` is the longest example of the batch: examples are grouped into length buckets (``bucket_width``
tokens wide) and each bucket's batch size is ``min(max_batch, token_budget // bucket_upper_bound)``, so every batch holds about the
same number of tokens (bucketed padding). With ``sample_ids=True`` each element is
``(x, y, sample_id)`` instead. :func:`element_dataset` gives the unbatched elements, so that an
id-attaching wrapper can run before batching:
use :func:`batch_by_length` afterwards. With trainstats' Keras capture::

    ds = with_ids(element_dataset(enc), enc.sample_ids).shuffle(len(enc))
    ds = batch_by_length(ds, max_tokens=256)
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import tensorflow as tf

from .data import EncodedSet

__all__ = ["REP_PAD", "element_dataset", "batch_by_length", "make_dataset", "bucket_sizes"]

#: padding value of ``y["rep"]`` (real tokens are 1, 0 or -1)
REP_PAD = -2.0


def element_dataset(enc: EncodedSet, *, with_ids: bool = False) -> tf.data.Dataset:
    """One element per example: ``(x, y)`` or ``(x, y, sample_id)`` with unpadded tensors."""
    if not isinstance(enc, EncodedSet):
        raise TypeError(f"expected an EncodedSet; received {type(enc).__name__}")
    if len(enc) == 0:
        raise ValueError("the EncodedSet is empty (no example fits max_tokens?)")
    rt = tf.RaggedTensor.from_row_splits
    x = {
        "subtokens": rt(enc.subtokens, enc.token_splits),
        "edges": rt(enc.edges, enc.edge_splits),
        "candidates": rt(enc.candidates, enc.token_splits),
    }
    y = {"loc": tf.constant(enc.loc), "rep": rt(enc.rep, enc.token_splits)}
    parts: tuple = (x, y)
    if with_ids:
        parts = (x, y, tf.constant(np.asarray(enc.sample_ids, dtype=object).astype(str)))
    # slices of a ragged tensor come out as ragged specs of rank 0; an identity map makes them dense
    return tf.data.Dataset.from_tensor_slices(parts).map(_identity)


def _identity(*parts):
    return parts


def bucket_sizes(max_tokens: int, *, token_budget: int, max_batch: int,
                 bucket_width: int | None = 8) -> tuple[list[int], list[int]]:
    """Bucket boundaries and one batch size per bucket.

    Bucket ``i`` holds lengths ``< bounds[i]`` (and ``>=`` the previous bound); the last bucket runs up
    to ``max_tokens``. With ``bucket_width`` the upper bounds are ``w, 2w, 3w, ...`` (``w =
    bucket_width``; padding wastes at most ``w - 1`` tokens per example), with None powers of two from
    16 (fewer, coarser buckets). Batch size = ``min(max_batch, token_budget // upper bound)``, so every
    batch holds about ``token_budget`` tokens.
    """
    if bucket_width is not None and (not isinstance(bucket_width, int) or bucket_width < 1):
        raise ValueError(f"bucket_width must be None or a positive int; received {bucket_width!r}")
    uppers = []
    b = bucket_width or 16
    while b < max_tokens:
        uppers.append(b)
        b = b + bucket_width if bucket_width else 2 * b
    bounds = [u + 1 for u in uppers]
    uppers.append(max_tokens)
    sizes = [max(1, min(max_batch, token_budget // u)) for u in uppers]
    return bounds, sizes


def batch_by_length(
    ds: tf.data.Dataset,
    *,
    max_tokens: int,
    token_budget: int = 4096,
    max_batch: int = 64,
    bucket_width: int | None = 8,
) -> tf.data.Dataset:
    """Bucket and pad a dataset from :func:`element_dataset`; wrappers around its ``(x, y)`` elements
    (extra tuple members, ids zipped on by ``trainstats.keras.with_ids``) pass through.

    Each batch is padded to its longest example; see :func:`bucket_sizes` for the buckets.
    """
    if _find_candidates(ds.element_spec) is None:
        raise ValueError("batch_by_length needs elements holding an x dict with 'candidates' "
                         f"(from element_dataset); received element_spec {ds.element_spec}")

    def length(*element):
        return tf.shape(_find_candidates(element))[0]

    bounds, sizes = bucket_sizes(max_tokens, token_budget=token_budget, max_batch=max_batch,
                                 bucket_width=bucket_width)
    return ds.bucket_by_sequence_length(
        length, bounds, sizes, padding_values=_padding_values(ds.element_spec), drop_remainder=False
    )


def _find_candidates(element):
    """The ``candidates`` tensor of an element, however wrappers (e.g. ``with_ids``) nested ``(x, y)``."""
    if isinstance(element, dict):
        if "candidates" in element:
            return element["candidates"]
        element = tuple(element.values())
    if isinstance(element, (tuple, list)):
        for part in element:
            found = _find_candidates(part)
            if found is not None:
                return found
    return None


def _padding_values(spec, name: str = ""):
    """0 for every component except a ``rep`` target (``REP_PAD``), also inside a wrapped ``y``
    (``trainstats.keras.with_ids`` nests ``y`` in a dict)."""
    if isinstance(spec, dict):
        return {k: _padding_values(v, k) for k, v in spec.items()}
    if isinstance(spec, (tuple, list)):
        return tuple(_padding_values(v) for v in spec)
    if name == "rep" and spec.dtype.is_floating:
        return tf.constant(REP_PAD, spec.dtype)
    return tf.constant(0, spec.dtype)


def make_dataset(
    enc: EncodedSet,
    *,
    shuffle: bool = False,
    seed: int | None = 0,
    max_tokens: int = 256,
    token_budget: int = 4096,
    max_batch: int = 64,
    bucket_width: int | None = 8,
) -> tf.data.Dataset:
    """Padded ``(x, y)`` batches, reshuffled each epoch when ``shuffle`` (deterministic per ``seed``)."""
    ds = element_dataset(enc)
    if shuffle:
        ds = ds.shuffle(len(enc), seed=seed, reshuffle_each_iteration=True)
    ds = batch_by_length(ds, max_tokens=max_tokens, token_budget=token_budget, max_batch=max_batch,
                         bucket_width=bucket_width)
    return ds.prefetch(tf.data.AUTOTUNE)
