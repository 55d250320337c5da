"""GREAT's VarMisuse losses, per sample (Keras averages them over the batch).

With ``p_loc, p_rep`` the pointer probabilities ``[B, T]`` (:class:`~trainstats.models.layers.PointerHeads`):

* localization: ``loss_loc = -log(p_loc[error_location] + eps)`` (position 0 = "no bug");
* repair: ``loss_rep = -log(sum_{t in repair_targets} p_rep[t] + eps)`` for buggy examples, 0 for
  bug-free ones (Vasic et al. 2019; Hellendoorn et al. 2020).

``eps = 1e-9``. Keras' default reduction divides the repair loss by the batch size, where GREAT divides
by the number of buggy examples; with about half of the examples buggy this only rescales it by ~2.

Targets (see :mod:`trainstats.models.data`): ``y_loc`` is the error location ``[B]``; ``y_rep`` is
the repair target code ``[B, T]``: 1 on targets, 0 on other tokens of buggy examples, -1 on tokens of
bug-free examples, -2 on padding. Hence ``has_bug = y_rep[:, 0] >= 0``.
"""
from __future__ import annotations

import tensorflow as tf

__all__ = ["EPS", "loc_loss", "rep_loss", "rep_has_bug", "rep_target_mass"]

EPS = 1e-9


def rep_has_bug(y_rep: tf.Tensor) -> tf.Tensor:
    """bool ``[B]``: the example is buggy (``y_rep[:, 0] >= 0``)."""
    return tf.greater_equal(y_rep[:, 0], 0.0)


def rep_target_mass(y_rep: tf.Tensor, p_rep: tf.Tensor) -> tf.Tensor:
    """float32 ``[B]``: repair probability on the targets, ``sum_t p_rep[t] * [y_rep[t] == 1]``."""
    targets = tf.cast(tf.equal(tf.cast(y_rep, tf.float32), 1.0), tf.float32)
    return tf.reduce_sum(targets * tf.cast(p_rep, tf.float32), axis=-1)


def loc_loss(y_true: tf.Tensor, y_pred: tf.Tensor) -> tf.Tensor:
    """float32 ``[B]``: ``-log(p_loc[error_location] + eps)``."""
    loc = tf.cast(tf.reshape(y_true, [-1]), tf.int32)
    gold = tf.gather(tf.cast(y_pred, tf.float32), loc, axis=1, batch_dims=1)
    return -tf.math.log(gold + EPS)


def rep_loss(y_true: tf.Tensor, y_pred: tf.Tensor) -> tf.Tensor:
    """float32 ``[B]``: ``-log(target mass + eps)`` on buggy examples, 0 on bug-free ones."""
    y_true = tf.cast(y_true, tf.float32)
    mass = rep_target_mass(y_true, y_pred)
    return tf.where(rep_has_bug(y_true), -tf.math.log(mass + EPS), tf.zeros_like(mass))
