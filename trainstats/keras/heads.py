"""Per-sample head statistics: the built-in head-stats functions and their auto-detection.

A *head stats function* is ``fn(y_true, y_pred) -> dict[str, tf.Tensor]`` returning per-sample
tensors of shape ``[batch]`` with keys among ``loss``, ``gold_prob``, ``pred``, ``pred_prob``,
``correct``, ``margin`` and optionally ``valid`` (bool; rows where it is False get nulls for every
stat of that head). A ``margin_unit`` attribute on the function (one of
``trainstats.store.MARGIN_UNITS``: ``"logit"``, ``"probability"``, ``"log-probability"``) is
recorded as the unit of its margin column; the built-in heads set it. It must be pure TensorFlow (it runs inside ``model.fit``'s compiled, possibly
XLA-compiled, step). ``loss`` may be left out: the capture computes it from the model's compiled loss.

Formulas (``S`` = the scores the model outputs, ``P`` = probabilities; for ``from_logits=True``
``S`` are logits and ``P = softmax(S)``, otherwise ``S = P = y_pred``; ``G`` = the gold set):

* ``gold_prob = sum_{k in G} P[k]``                     (range [0, 1])
* ``pred = argmax_k S[k]``, ``pred_prob = P[pred]``
* ``correct = pred in G``
* ``margin = max_{k in G} S[k] - max_{k not in G} S[k]`` (logits, or probabilities when the model
  outputs probabilities); positive iff the prediction is correct (ties aside).

Binary (one sigmoid unit, ``z`` logit or ``p`` probability): the two-class view with scores
``(0, z)``: ``gold_prob = p`` if the label is 1 else ``1 - p``; ``pred = 1[p > 0.5]``;
``pred_prob = max(p, 1 - p)``; ``margin = z`` (label 1) / ``-z`` (label 0) on logits, and
``2 * gold_prob - 1`` on probabilities.
"""
from __future__ import annotations

from typing import Any, Callable, Mapping

import tensorflow as tf
from keras.src.backend import get_keras_mask

from trainstats.store.schema import STANDARD_STATS

__all__ = [
    "HEAD_STATS",
    "HeadStatsFn",
    "binary_stats",
    "categorical_stats",
    "pointer_stats",
    "sparse_categorical_stats",
    "resolve_head",
]

HeadStatsFn = Callable[[Any, Any], Mapping[str, Any]]

#: stat name -> store dtype, for the standard stats a head function may return (the store's list).
HEAD_STATS: dict[str, str] = STANDARD_STATS

_NEG = float("-inf")


def _margin_unit(from_logits: bool) -> str:
    """The ``MARGIN_UNITS`` entry of a built-in head's margin."""
    return "logit" if from_logits else "probability"


def _flat_batch(t: tf.Tensor) -> tf.Tensor:
    """[b] or [b, 1] -> [b]."""
    if t.shape.rank is not None and t.shape.rank >= 2 and t.shape[-1] == 1:
        t = tf.squeeze(t, axis=-1)
    return t


def _gold_set_core(scores: tf.Tensor, probs: tf.Tensor, gold: tf.Tensor, valid: tf.Tensor,
                   allowed: tf.Tensor | None) -> dict[str, tf.Tensor]:
    """Shared math for categorical / pointer heads. scores/probs [b, C], gold/allowed bool [b, C]."""
    if allowed is not None:
        scores = tf.where(allowed, scores, tf.cast(_NEG, scores.dtype))
        gold = tf.logical_and(gold, allowed)
    pred = tf.argmax(scores, axis=-1, output_type=tf.int64)
    n_classes = tf.shape(scores)[-1]
    pred_hot = tf.one_hot(pred, n_classes, on_value=True, off_value=False, dtype=tf.bool)
    gold_prob = tf.reduce_sum(tf.where(gold, probs, tf.zeros_like(probs)), axis=-1)
    pred_prob = tf.reduce_sum(tf.where(pred_hot, probs, tf.zeros_like(probs)), axis=-1)
    correct = tf.reduce_any(tf.logical_and(gold, pred_hot), axis=-1)
    neg = tf.cast(_NEG, scores.dtype)
    best_gold = tf.reduce_max(tf.where(gold, scores, neg), axis=-1)
    best_other = tf.reduce_max(tf.where(gold, neg, scores), axis=-1)
    margin = best_gold - best_other
    margin = tf.where(tf.math.is_finite(margin), margin, tf.cast(float("nan"), margin.dtype))
    valid = tf.logical_and(valid, tf.reduce_any(gold, axis=-1))
    return {
        "gold_prob": tf.cast(gold_prob, tf.float32),
        "pred": pred,
        "pred_prob": tf.cast(pred_prob, tf.float32),
        "correct": correct,
        "margin": tf.cast(margin, tf.float32),
        "valid": valid,
    }


def _scores_probs(y_pred: tf.Tensor, from_logits: bool, allowed: tf.Tensor | None = None):
    y_pred = tf.convert_to_tensor(y_pred)
    if not y_pred.dtype.is_floating:
        y_pred = tf.cast(y_pred, tf.float32)
    if from_logits:
        logits = y_pred if allowed is None else tf.where(allowed, y_pred, tf.cast(_NEG, y_pred.dtype))
        return y_pred, tf.nn.softmax(logits, axis=-1)
    probs = y_pred if allowed is None else tf.where(allowed, y_pred, tf.zeros_like(y_pred))
    return y_pred, probs


def sparse_categorical_stats(*, from_logits: bool = False, ignore_class: int | None = None) -> HeadStatsFn:
    """Head stats for integer labels ``y_true [b]`` (or ``[b, 1]``) and ``y_pred [b, C]``.

    Labels outside ``[0, C)`` or equal to ``ignore_class`` make the row invalid (nulls).
    """
    def fn(y_true, y_pred):
        scores, probs = _scores_probs(y_pred, from_logits)
        label = tf.cast(_flat_batch(tf.convert_to_tensor(y_true)), tf.int64)
        n_classes = tf.cast(tf.shape(scores)[-1], tf.int64)
        valid = tf.logical_and(label >= 0, label < n_classes)
        if ignore_class is not None:
            valid = tf.logical_and(valid, label != ignore_class)
        safe = tf.where(valid, label, tf.zeros_like(label))
        if scores.shape.rank == 2 and scores.shape[-1] is not None and scores.shape[-1] >= 2:
            # fast path (fewer ops per step): gathers and one top_k instead of [b, C] masks
            top_scores, top_idx = tf.math.top_k(scores, k=2)
            pred = tf.cast(top_idx[:, 0], tf.int64)
            gold_score = tf.gather(scores, safe, batch_dims=1)
            other = tf.where(pred == safe, top_scores[:, 1], top_scores[:, 0])
            return {
                "gold_prob": tf.cast(tf.gather(probs, safe, batch_dims=1), tf.float32),
                "pred": pred,
                "pred_prob": tf.cast(tf.reduce_max(probs, axis=-1), tf.float32),
                "correct": tf.logical_and(pred == label, valid),
                "margin": tf.cast(gold_score - other, tf.float32),
                "valid": valid,
            }
        gold = tf.one_hot(safe, tf.shape(scores)[-1], on_value=True, off_value=False, dtype=tf.bool)
        gold = tf.logical_and(gold, valid[:, None])
        return _gold_set_core(scores, probs, gold, valid, None)

    fn.__name__ = f"sparse_categorical_stats(from_logits={from_logits})"
    fn.margin_unit = _margin_unit(from_logits)  # type: ignore[attr-defined]
    return fn


def categorical_stats(*, from_logits: bool = False) -> HeadStatsFn:
    """Head stats for one-hot labels ``y_true [b, C]``: the gold label is ``argmax(y_true)``;
    rows whose label vector is all zero are invalid."""
    def fn(y_true, y_pred):
        scores, probs = _scores_probs(y_pred, from_logits)
        y_true = tf.convert_to_tensor(y_true)
        label = tf.argmax(y_true, axis=-1, output_type=tf.int64)
        valid = tf.reduce_max(tf.cast(y_true, tf.float32), axis=-1) > 0
        gold = tf.logical_and(tf.one_hot(label, tf.shape(scores)[-1], on_value=True, off_value=False,
                                         dtype=tf.bool), valid[:, None])
        return _gold_set_core(scores, probs, gold, valid, None)

    fn.__name__ = f"categorical_stats(from_logits={from_logits})"
    fn.margin_unit = _margin_unit(from_logits)  # type: ignore[attr-defined]
    return fn


def pointer_stats(*, from_logits: bool = True, mask_key: str | None = None) -> HeadStatsFn:
    """Head stats for a pointer over positions: ``y_pred [b, T]`` scores over ``T`` positions.

    ``y_true`` is either a position ``[b]`` (negative: no target, row invalid) or a multi-hot target
    mask ``[b, T]`` (several gold positions: ``gold_prob`` is the mass on all of them; no target:
    row invalid). Positions masked out by the Keras mask of ``y_pred`` (if any) are never predicted
    and take no probability mass. ``mask_key`` is unused for plain tensors (reserved).
    """
    del mask_key

    def fn(y_true, y_pred):
        allowed = get_keras_mask(y_pred)
        if allowed is not None:
            allowed = tf.cast(allowed, tf.bool)
        scores, probs = _scores_probs(y_pred, from_logits, allowed)
        y_true = tf.convert_to_tensor(y_true)
        n_pos = tf.shape(scores)[-1]
        if y_true.shape.rank is not None and y_true.shape.rank >= 2 and y_true.shape[-1] != 1:
            gold = tf.cast(y_true, tf.float32) > 0
            valid = tf.ones_like(gold[:, 0])
        else:
            pos = tf.cast(_flat_batch(y_true), tf.int64)
            valid = tf.logical_and(pos >= 0, pos < tf.cast(n_pos, tf.int64))
            gold = tf.logical_and(tf.one_hot(tf.where(valid, pos, 0), n_pos, on_value=True, off_value=False,
                                             dtype=tf.bool), valid[:, None])
        return _gold_set_core(scores, probs, gold, valid, allowed)

    fn.__name__ = f"pointer_stats(from_logits={from_logits})"
    fn.margin_unit = _margin_unit(from_logits)  # type: ignore[attr-defined]
    return fn


def binary_stats(*, from_logits: bool = False) -> HeadStatsFn:
    """Head stats for one sigmoid unit: ``y_pred [b]`` or ``[b, 1]``, ``y_true`` in {0, 1}
    (values >= 0.5 count as 1)."""
    def fn(y_true, y_pred):
        z = tf.cast(_flat_batch(tf.convert_to_tensor(y_pred)), tf.float32)
        if z.shape.rank is not None and z.shape.rank != 1:
            raise ValueError(
                f"binary head stats expect one sigmoid unit per sample (y_pred [batch] or [batch, 1]); "
                f"received y_pred of shape {y_pred.shape}. For multi-label outputs pass a custom head "
                "stats function in heads={output_name: fn}.")
        y = tf.cast(_flat_batch(tf.convert_to_tensor(y_true)), tf.float32) >= 0.5
        p = tf.sigmoid(z) if from_logits else z
        gold_prob = tf.where(y, p, 1.0 - p)
        pred_one = z > 0.0 if from_logits else p > 0.5
        if from_logits:
            margin = tf.where(y, z, -z)
        else:
            margin = 2.0 * gold_prob - 1.0
        return {
            "gold_prob": gold_prob,
            "pred": tf.cast(pred_one, tf.int64),
            "pred_prob": tf.maximum(p, 1.0 - p),
            "correct": tf.equal(pred_one, y),
            "margin": margin,
        }

    fn.__name__ = f"binary_stats(from_logits={from_logits})"
    fn.margin_unit = _margin_unit(from_logits)  # type: ignore[attr-defined]
    return fn


_BY_NAME = {
    "sparse_categorical": sparse_categorical_stats,
    "categorical": categorical_stats,
    "binary": binary_stats,
    "pointer": pointer_stats,
}
_LOSS_KINDS = {
    "sparse_categorical_crossentropy": "sparse_categorical",
    "categorical_crossentropy": "categorical",
    "binary_crossentropy": "binary",
    "binary_focal_crossentropy": "binary",
}


def loss_kind(loss_fn: Any) -> tuple[str | None, bool]:
    """``(kind, from_logits)`` read from a compiled Keras loss, ``kind`` None when unknown."""
    fn = getattr(loss_fn, "fn", None)
    name = getattr(fn, "__name__", None) or ""
    kwargs = getattr(loss_fn, "_fn_kwargs", {}) or {}
    kind = _LOSS_KINDS.get(name)
    return kind, bool(kwargs.get("from_logits", False))


def resolve_head(spec: Any, loss_fn: Any, output: str) -> tuple[HeadStatsFn | None, str]:
    """Turn a ``heads=`` entry (None/"auto", a built-in name, or a function) into a head function.

    Returns ``(fn, description)``; ``fn`` is None when only the loss can be recorded.
    ``from_logits`` for built-in names comes from the compiled loss of that output.
    """
    kind, from_logits = loss_kind(loss_fn)
    if spec is None or spec == "auto":
        if kind is None:
            return None, "loss only (unrecognised loss; pass heads={%r: fn})" % output
        spec = kind
    if callable(spec):
        return spec, getattr(spec, "__name__", "custom")
    if isinstance(spec, str) and spec in _BY_NAME:
        extra = {}
        if spec == "sparse_categorical":
            ignore = (getattr(loss_fn, "_fn_kwargs", {}) or {}).get("ignore_class")
            extra["ignore_class"] = ignore
        if spec == "pointer" and kind is None:
            from_logits = True
        fn = _BY_NAME[spec](from_logits=from_logits, **extra)
        return fn, fn.__name__
    raise ValueError(
        f"Invalid head stats for output {output!r}. Received: {spec!r}. Expected None, 'auto', one of "
        f"{sorted(_BY_NAME)}, or a function fn(y_true, y_pred) -> dict of [batch] tensors.")
