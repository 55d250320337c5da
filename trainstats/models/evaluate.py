"""Accuracy of a VarMisuse model over a dataset, with the same per-sample stats the capture records."""
from __future__ import annotations

import numpy as np
import tensorflow as tf

from .stats import loc_head_stats, rep_head_stats, varmisuse_extra_stats

__all__ = ["evaluate_varmisuse"]


def evaluate_varmisuse(model, dataset: tf.data.Dataset) -> dict[str, float]:
    """GREAT's accuracies over ``dataset`` (``(x, y)`` batches, inference mode).

    Returns ``loc_acc`` (all examples), ``no_bug_acc`` (bug-free examples predicted at position 0),
    ``bug_loc_acc`` (buggy examples' location), ``rep_acc`` (buggy: target mass >= 0.5),
    ``joint_acc`` (loc correct and, for buggy, repair correct), ``n`` examples, ``n_buggy``.
    """
    parts: dict[str, list[np.ndarray]] = {k: [] for k in ("loc", "rep", "joint", "bug")}
    # every dimension unknown: one trace serves all the bucketed batch shapes
    spec = tf.nest.map_structure(lambda s: tf.TensorSpec([None] * s.shape.rank, s.dtype), dataset.element_spec[:2])

    @tf.function(input_signature=list(spec))
    def step(x, y):
        p = model(x, training=False)
        return (loc_head_stats(y["loc"], p["loc"])["correct"], rep_head_stats(y["rep"], p["rep"])["correct"],
                varmisuse_extra_stats(y, p))

    for batch in dataset:
        x, y = batch[0], batch[1]
        loc_ok, rep_ok, extra = step(x, y)
        parts["loc"].append(loc_ok.numpy())
        parts["rep"].append(rep_ok.numpy())
        parts["joint"].append(extra["joint_correct"].numpy())
        parts["bug"].append(extra["has_bug"].numpy())
    if not parts["loc"]:
        raise ValueError("the dataset is empty")
    loc, rep, joint, bug = (np.concatenate(parts[k]) for k in ("loc", "rep", "joint", "bug"))

    def mean(a):
        return float(a.mean()) if a.size else float("nan")

    return {
        "loc_acc": mean(loc), "no_bug_acc": mean(loc[~bug]), "bug_loc_acc": mean(loc[bug]),
        "rep_acc": mean(rep[bug]), "joint_acc": mean(joint), "n": int(loc.size), "n_buggy": int(bug.sum()),
    }
