"""Per-sample statistics of the two pointer heads, in pure TF (XLA-safe).

These follow the trainstats Keras head-stats protocol (docs/store.md, docs/keras.md): a function
``fn(y_true, y_pred) -> dict[str, Tensor]`` of per-sample ``[B]`` tensors.

Localization head ``loc`` (``y_true`` = error location ``[B]``, ``y_pred`` = ``p_loc [B, T]``):

* ``loss = -log(p[g] + eps)``, ``gold_prob = p[g]``, ``pred = argmax_t p[t]``, ``pred_prob = max_t p[t]``,
  ``correct = pred == g``;
* ``margin = log p[g] - max_{t != g, t real} log p[t]`` = the logit margin (softmax preserves logit
  differences), floored at log(eps) differences.

Repair head ``rep`` (``y_true`` = repair code ``[B, T]``, ``y_pred`` = ``p_rep [B, T]``), defined only on
buggy examples (``valid = has_bug``):

* ``gold_prob = m = sum_{t in targets} p[t]``, ``loss = -log(m + eps)``, ``pred = argmax_t p[t]``,
  ``pred_prob = max_t p[t]``, ``correct = m >= 0.5`` (GREAT's repair accuracy);
* ``margin = log(m + eps) - log(max_{t not a target} p[t] + eps)``.

Extra (whole-model) stats, :func:`varmisuse_extra_stats`: ``joint_correct`` = loc correct and (for
buggy examples) repair correct; ``has_bug``; ``n_tokens`` (real tokens, from the repair code's padding).
"""
from __future__ import annotations

import tensorflow as tf

from .losses import EPS, rep_has_bug, rep_target_mass

__all__ = ["loc_head_stats", "rep_head_stats", "varmisuse_extra_stats", "HEAD_STATS"]


def _log(p):
    return tf.math.log(p + EPS)


def loc_head_stats(y_true, y_pred) -> dict[str, tf.Tensor]:
    """Per-sample stats of the localization pointer (see module docstring)."""
    p = tf.cast(y_pred, tf.float32)
    g = tf.cast(tf.reshape(y_true, [-1]), tf.int32)
    gold = tf.gather(p, g, axis=1, batch_dims=1)
    pred = tf.argmax(p, axis=-1, output_type=tf.int32)
    is_gold = tf.equal(tf.range(tf.shape(p)[1])[None, :], g[:, None])
    best_other = tf.reduce_max(tf.where(is_gold, tf.zeros_like(p), p), axis=-1)
    return {
        "loss": -_log(gold),
        "gold_prob": gold,
        "pred": tf.cast(pred, tf.int64),
        "pred_prob": tf.reduce_max(p, axis=-1),
        "correct": tf.equal(pred, g),
        "margin": _log(gold) - _log(best_other),
    }


def rep_head_stats(y_true, y_pred) -> dict[str, tf.Tensor]:
    """Per-sample stats of the repair pointer; ``valid`` = the example is buggy."""
    p = tf.cast(y_pred, tf.float32)
    y = tf.cast(y_true, tf.float32)
    mass = rep_target_mass(y, p)
    is_target = tf.equal(y, 1.0)
    best_other = tf.reduce_max(tf.where(is_target, tf.zeros_like(p), p), axis=-1)
    valid = rep_has_bug(y)
    return {
        "loss": tf.where(valid, -_log(mass), tf.zeros_like(mass)),
        "gold_prob": mass,
        "pred": tf.argmax(p, axis=-1, output_type=tf.int64),
        "pred_prob": tf.reduce_max(p, axis=-1),
        "correct": tf.greater_equal(mass, 0.5),
        "margin": _log(mass) - _log(best_other),
        "valid": valid,
    }


def varmisuse_extra_stats(y_true: dict, y_pred: dict) -> dict[str, tf.Tensor]:
    """``joint_correct`` (bool), ``has_bug`` (bool), ``n_tokens`` (int32), each ``[B]``."""
    p_loc = tf.cast(y_pred["loc"], tf.float32)
    g = tf.cast(tf.reshape(y_true["loc"], [-1]), tf.int32)
    y_rep = tf.cast(y_true["rep"], tf.float32)
    loc_ok = tf.equal(tf.argmax(p_loc, axis=-1, output_type=tf.int32), g)
    has_bug = rep_has_bug(y_rep)
    rep_ok = tf.greater_equal(rep_target_mass(y_rep, y_pred["rep"]), 0.5)
    return {
        "joint_correct": tf.logical_and(loc_ok, tf.logical_or(tf.logical_not(has_bug), rep_ok)),
        "has_bug": has_bug,
        "n_tokens": tf.reduce_sum(tf.cast(tf.greater(y_rep, -2.0), tf.int32), axis=-1),
    }


# margins of log-probabilities floored at eps (trainstats.store.MARGIN_UNITS)
loc_head_stats.margin_unit = rep_head_stats.margin_unit = "log-probability"  # type: ignore[attr-defined]

#: head name -> head-stats function, for the trainstats Keras capture
HEAD_STATS = {"loc": loc_head_stats, "rep": rep_head_stats}
