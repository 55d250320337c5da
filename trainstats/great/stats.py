"""Per-sample statistics of GREAT's two pointer heads, from one batch's logits (pure TensorFlow).

GREAT's ``VarMisuseModel`` returns logits of shape ``[batch, 2, seq_len]``: row 0 points at the bug
location (position 0 means "no bug"), row 1 is the repair pointer. Its ``get_loss`` reduces them to
batch means; :func:`per_sample_stats` computes the same quantities per sample, with GREAT's own
masking, so that the mean of a per-sample column over the rows GREAT averages over reproduces
GREAT's number (e.g. mean of ``loc_correct`` over ``has_bug`` rows = GREAT's "bug_loc_acc").

Only ``tf`` ops are used (no Keras), so this runs under tf-keras and Keras 3 alike and is XLA-safe.
"""
from __future__ import annotations

import tensorflow as tf

__all__ = ["STAT_KEYS", "per_sample_stats", "per_sample_stats_fn"]

#: Keys of the dict :func:`per_sample_stats` returns (each a ``[batch]`` tensor).
STAT_KEYS = (
    "has_bug", "n_candidates",
    "loc_loss", "loc_gold_prob", "loc_pred", "loc_pred_prob", "loc_correct", "loc_margin",
    "rep_loss", "rep_gold_prob", "rep_pred", "rep_pred_prob", "rep_correct", "rep_margin",
    "joint_correct",
)

_NAN = float("nan")


def _margin(gold_score: tf.Tensor, others: tf.Tensor, other_mask: tf.Tensor) -> tf.Tensor:
    """``gold_score - max(others[other_mask])`` per row; NaN when undefined (no other / no gold)."""
    neg_inf = tf.fill(tf.shape(others), tf.constant(-float("inf"), others.dtype))
    best_other = tf.reduce_max(tf.where(other_mask, others, neg_inf), axis=-1)
    margin = gold_score - best_other
    return tf.where(tf.math.is_finite(margin), margin, tf.fill(tf.shape(margin), _NAN))


def per_sample_stats(predictions: tf.Tensor, token_mask: tf.Tensor, error_locations: tf.Tensor,
                     repair_targets: tf.Tensor, repair_candidates: tf.Tensor) -> dict[str, tf.Tensor]:
    """Per-sample localization / repair statistics for one GREAT batch.

    Args:
        predictions: float32 ``[B, 2, T]`` logits from ``VarMisuseModel.call``.
        token_mask: int32 ``[B, T]``, 1 at real tokens (GREAT: ``clip(sum(tokens, -1), 0, 1)``).
        error_locations: int32 ``[B]``, the gold bug position; 0 for bug-free samples.
        repair_targets: int32 ``[N, 2]`` rows ``(batch index, position)``.
        repair_candidates: int32 ``[M, 2]`` rows ``(batch index, position)``.

    Returns:
        A dict of ``[B]`` tensors (keys :data:`STAT_KEYS`):

        * ``has_bug`` (bool): ``error_location > 0``.
        * ``n_candidates`` (int32): repair candidates of the sample.
        * localization head, over GREAT's masked logits ``l = logits[:, 0] + (1 - mask) * float32.min``:
          ``loc_loss = -log softmax(l)[gold]`` (nats, GREAT's sparse cross-entropy),
          ``loc_gold_prob = softmax(l)[gold]``, ``loc_pred = argmax l``, ``loc_pred_prob = max softmax(l)``,
          ``loc_correct = (loc_pred == gold)``, ``loc_margin = l[gold] - max_{j != gold, mask_j} l[j]``
          (logits; NaN when the gold position is masked or there is no other position).
        * repair head, over logits masked to the candidates ``r = logits[:, 1] + (1 - cand) * float32.min``:
          ``rep_gold_prob = sum_{t in targets} softmax(r)[t]`` (mass on the targets),
          ``rep_loss = -log(rep_gold_prob + 1e-9)`` (GREAT's formula), ``rep_correct = rep_gold_prob >= 0.5``
          (GREAT's repair accuracy), ``rep_pred = argmax r``, ``rep_pred_prob = max softmax(r)``,
          ``rep_margin = logsumexp_{t in targets ∩ cand} r[t] - max_{c in cand \\ targets} r[c]`` (logits,
          = log(target mass / best wrong candidate's probability); NaN when either set is empty).
          All repair values are meaningful only where ``has_bug`` (callers store nulls elsewhere).
        * ``joint_correct`` (bool): ``loc_correct & rep_correct`` for buggy samples; for a bug-free
          sample there is nothing to repair, so it equals ``loc_correct``. GREAT's "joint accuracy" is
          its mean over ``has_bug`` rows.

    Duplicated targets or candidates count as often as they occur, exactly as in GREAT's ``scatter_nd``.
    """
    predictions = tf.convert_to_tensor(predictions, tf.float32)
    token_mask = tf.convert_to_tensor(token_mask, tf.int32)
    error_locations = tf.convert_to_tensor(error_locations, tf.int32)
    repair_targets = tf.reshape(tf.convert_to_tensor(repair_targets, tf.int32), [-1, 2])
    repair_candidates = tf.reshape(tf.convert_to_tensor(repair_candidates, tf.int32), [-1, 2])
    batch = tf.shape(predictions)[0]
    shape = tf.shape(predictions[:, 0])
    rows = tf.range(batch)
    gold_idx = tf.stack([rows, error_locations], axis=1)

    # Localization head (GREAT's masking).
    seq_mask = tf.cast(token_mask, tf.float32)
    loc_logits = predictions[:, 0] + (1.0 - seq_mask) * tf.float32.min
    loc_probs = tf.nn.softmax(loc_logits)
    loc_loss = tf.nn.sparse_softmax_cross_entropy_with_logits(error_locations, loc_logits)
    loc_pred = tf.argmax(loc_logits, axis=-1, output_type=tf.int32)
    gold_valid = tf.gather_nd(token_mask, gold_idx) > 0
    gold_logit = tf.where(gold_valid, tf.gather_nd(loc_logits, gold_idx), _NAN)
    not_gold = tf.logical_not(tf.cast(tf.one_hot(error_locations, shape[1]), tf.bool))
    loc_margin = _margin(gold_logit, predictions[:, 0], tf.logical_and(seq_mask > 0, not_gold))
    loc_correct = tf.equal(loc_pred, error_locations)

    # Repair head (GREAT's candidate masking and target mass).
    cand_mask = tf.scatter_nd(repair_candidates, tf.ones(tf.shape(repair_candidates)[0]), shape)
    target_mask = tf.scatter_nd(repair_targets, tf.ones(tf.shape(repair_targets)[0]), shape)
    rep_logits = predictions[:, 1] + (1.0 - cand_mask) * tf.float32.min
    rep_probs = tf.nn.softmax(rep_logits)
    rep_gold_prob = tf.reduce_sum(target_mask * rep_probs, axis=-1)
    is_cand = cand_mask > 0
    is_target = tf.logical_and(is_cand, target_mask > 0)
    neg_inf = tf.fill(shape, -float("inf"))
    target_lse = tf.reduce_logsumexp(tf.where(is_target, predictions[:, 1], neg_inf), axis=-1)
    rep_margin = _margin(target_lse, predictions[:, 1], tf.logical_and(is_cand, tf.logical_not(is_target)))
    rep_correct = tf.greater_equal(rep_gold_prob, 0.5)
    has_bug = error_locations > 0

    return {
        "has_bug": has_bug,
        "n_candidates": tf.math.bincount(repair_candidates[:, 0], minlength=batch, maxlength=batch,
                                         dtype=tf.int32),
        "loc_loss": loc_loss,
        "loc_gold_prob": tf.gather_nd(loc_probs, gold_idx),
        "loc_pred": loc_pred,
        "loc_pred_prob": tf.reduce_max(loc_probs, axis=-1),
        "loc_correct": loc_correct,
        "loc_margin": loc_margin,
        "rep_loss": -tf.math.log(rep_gold_prob + 1e-9),
        "rep_gold_prob": rep_gold_prob,
        "rep_pred": tf.argmax(rep_logits, axis=-1, output_type=tf.int32),
        "rep_pred_prob": tf.reduce_max(rep_probs, axis=-1),
        "rep_correct": rep_correct,
        "rep_margin": rep_margin,
        "joint_correct": tf.where(has_bug, tf.logical_and(loc_correct, rep_correct), loc_correct),
    }


#: :func:`per_sample_stats` compiled once for GREAT's batch shapes (no retracing per batch).
per_sample_stats_fn = tf.function(
    per_sample_stats,
    input_signature=[
        tf.TensorSpec(shape=(None, 2, None), dtype=tf.float32),
        tf.TensorSpec(shape=(None, None), dtype=tf.int32),
        tf.TensorSpec(shape=(None,), dtype=tf.int32),
        tf.TensorSpec(shape=(None, None), dtype=tf.int32),
        tf.TensorSpec(shape=(None, None), dtype=tf.int32),
    ],
)
