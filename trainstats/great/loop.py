"""GREAT's training and evaluation loops with per-sample statistics from the same forward pass.

:func:`train` and :func:`evaluate` follow ``running/run_model.py`` of the checkout: the same model
(``VarMisuseModel``), loss (``get_loss``), optimizer (Adam, global-norm clipping at 0.25), metrics
(the checkout's ``get_metrics``/``update_metrics``), ``Tracker`` checkpoints and ``log.txt``, console
lines and step logic — so aggregate numbers equal an uninstrumented run on the same seed. What is added:
the batches come from :class:`~trainstats.great.batching.IdBatcher` (GREAT's batching, plus ids), and
after each forward pass :func:`~trainstats.great.stats.per_sample_stats` turns the logits it already
produced (training: with dropout, before the weight update) into one row per sample.

Store positions: ``epoch`` = GREAT's step (0-based: rows of the training leading to checkpoint ``s+1``
and of the held-out pass after it have ``epoch = s``); ``step`` = optimizer updates made before the
batch (held-out rows: updates made so far); ``batch`` = batch index within the epoch and split.
"""
from __future__ import annotations

import copy
import logging
from pathlib import Path
from typing import Any, Callable

import numpy as np
import tensorflow as tf

from trainstats.great.batching import IdBatcher
from trainstats.great.checkout import GreatCheckout
from trainstats.great.recorder import GreatRecorder, load_updates, save_updates
from trainstats.great.stats import per_sample_stats_fn

__all__ = ["train", "evaluate", "evaluate_checkpoint"]

log = logging.getLogger("trainstats.great")
Echo = Callable[[str], None]


def _fmt(losses: list, accs: list) -> tuple[str, str]:
    return (", ".join("{0:.3f}".format(m.result().numpy()) for m in losses),
            ", ".join("{0:.2%}".format(m.result().numpy()) for m in accs))


def _build(great: GreatCheckout, data: Any, config: dict) -> Any:
    model = great.meta_model.VarMisuseModel(config["model"], data.vocabulary.vocab_dim)
    model.run_dummy_input()
    return model


def _tracker(great: GreatCheckout, model: Any, model_path: str | None, log_path: str | None) -> Any:
    tracker_cls = great.checkpoint_tracker.Tracker
    return tracker_cls(model) if model_path is None else tracker_cls(model, model_path, log_path)


def evaluate(great: GreatCheckout, data: Any, config: dict, model: Any, *, is_heldout: bool = True,
             recorder: GreatRecorder | None = None, epoch: int = 0, step: int = 0,
             echo: Echo = log.info) -> list:
    """One held-out pass (``dev``, cut off after ``max_valid_samples``) or the full ``eval`` pass.

    Returns GREAT's four accuracies (no-bug, bug localization, repair, joint), like GREAT's ``evaluate``.
    """
    rm = great.run_model
    split = "dev" if is_heldout else "eval"
    echo("Running evaluation pass on heldout data" if is_heldout else "Testing pre-trained model on full eval data")
    losses, accs, counts = rm.get_metrics()
    mbs = 0
    for batch in IdBatcher(data).batcher(split):
        mbs += 1
        tokens, edges, error_loc, repair_targets, repair_candidates, ids, n_tokens = batch
        token_mask = tf.clip_by_value(tf.reduce_sum(tokens, -1), 0, 1)
        pointer_preds = model(tokens, token_mask, edges, training=False)
        ls, acs = model.get_loss(pointer_preds, token_mask, error_loc, repair_targets, repair_candidates)
        num_buggy = tf.reduce_sum(tf.clip_by_value(error_loc, 0, 1))
        rm.update_metrics(losses, accs, counts, token_mask, ls, acs, num_buggy)
        if recorder is not None:
            stats = per_sample_stats_fn(pointer_preds, token_mask, error_loc, repair_targets, repair_candidates)
            recorder.write_batch(split=split, epoch=epoch, step=step, batch=mbs - 1, sample_ids=ids.numpy(),
                                 n_tokens=n_tokens.numpy(), stats=stats)
        if is_heldout and counts[0].result() > config["data"]["max_valid_samples"]:
            break
        if not is_heldout and mbs % config["training"]["print_freq"] == 0:
            loss_str, acc_str = _fmt(losses, accs)
            echo("Testing progress: MB: {0}, seqs: {1:,}, tokens: {2:,}, loss: {3}, accs: {4}".format(
                mbs, counts[0].result().numpy(), counts[1].result().numpy(), loss_str, acc_str))
    avg_accs = [a.result().numpy() for a in accs]
    loss_str, acc_str = _fmt(losses, accs)
    echo("Evaluation result: seqs: {0:,}, tokens: {1:,}, loss: {2}, accs: {3}".format(
        counts[0].result().numpy(), counts[1].result().numpy(), loss_str, acc_str))
    if recorder is not None:
        recorder.flush()
    return avg_accs


def train(great: GreatCheckout, data: Any, config: dict, *, model_path: str | None = None,
          log_path: str | None = None, stats_dir: str | None = None, noise_manifest: str | None = None,
          run_config: dict | None = None, echo: Echo = log.info) -> None:
    """Train like GREAT's ``train()``; with ``stats_dir``, record every batch and held-out pass.

    GREAT resumes from the newest checkpoint in ``model_path``; the run directory then continues as a
    new attempt from that checkpoint's step, so rows of the interrupted step are superseded, not doubled.
    """
    plain_config = copy.deepcopy(config)  # before GREAT's layers wrap its nested dicts
    model = _build(great, data, config)
    echo("Model initialized, training {:,} parameters".format(
        np.sum([np.prod(v.shape) for v in model.trainable_variables])))
    optimizer = tf.optimizers.Adam(config["training"]["learning_rate"])
    tracker = _tracker(great, model, model_path, log_path)
    tracker.restore()
    ckpt_step = int(tracker.ckpt.step.numpy())
    echo(("Restored from step: {}" if ckpt_step > 0 else "Step: {}").format(ckpt_step + 1))
    updates_dir = tracker.model_path
    updates = load_updates(updates_dir, ckpt_step) if ckpt_step > 0 else 0
    if updates is None:
        log.warning("no update count stored for checkpoint step %d in %s; the store's step column restarts "
                    "at 0 for this attempt", ckpt_step, updates_dir)
        updates = 0
    recorder = None
    if stats_dir is not None:
        cfg = {"great_config": plain_config, **(run_config or {}),
               "epoch_unit": f"GREAT step = {config['data']['valid_interval']} training samples"}
        recorder = GreatRecorder(stats_dir, config=cfg, noise_manifest=noise_manifest,
                                 versions={"tensorflow": tf.__version__})
    try:
        _train_loop(great, model, optimizer, tracker, data, config, recorder, updates, updates_dir, echo)
    finally:
        if recorder is not None:
            recorder.close()


def _train_loop(great: GreatCheckout, model: Any, optimizer: Any, tracker: Any, data: Any, config: dict,
                recorder: GreatRecorder | None, updates: int, updates_dir: str, echo: Echo) -> None:
    rm = great.run_model
    max_steps, valid_interval = config["training"]["max_steps"], config["data"]["valid_interval"]
    mbs, batch_in_epoch = 0, 0
    losses, accs, counts = rm.get_metrics()
    batcher = IdBatcher(data)
    while tracker.ckpt.step < max_steps:
        for batch in batcher.batcher("train"):
            mbs += 1
            tokens, edges, error_loc, repair_targets, repair_candidates, ids, n_tokens = batch
            token_mask = tf.clip_by_value(tf.reduce_sum(tokens, -1), 0, 1)
            with tf.GradientTape() as tape:
                pointer_preds = model(tokens, token_mask, edges, training=True)
                ls, acs = model.get_loss(pointer_preds, token_mask, error_loc, repair_targets, repair_candidates)
                loss = ls[0] + ls[1]
            grads = tape.gradient(loss, model.trainable_variables)
            grads, _ = tf.clip_by_global_norm(grads, 0.25)
            if recorder is not None:  # from the logits of this very forward pass, before the update
                stats = per_sample_stats_fn(pointer_preds, token_mask, error_loc, repair_targets, repair_candidates)
            optimizer.apply_gradients(list(zip(grads, model.trainable_variables)))
            epoch = int(tracker.ckpt.step.numpy())
            if recorder is not None:
                recorder.write_batch(split="train", epoch=epoch, step=updates, batch=batch_in_epoch,
                                     sample_ids=ids.numpy(), n_tokens=n_tokens.numpy(), stats=stats)
            updates += 1
            batch_in_epoch += 1

            num_buggy = tf.reduce_sum(tf.clip_by_value(error_loc, 0, 1))
            samples = tf.shape(token_mask)[0]
            prev_samples = tracker.get_samples()
            curr_samples = tracker.update_samples(samples)
            rm.update_metrics(losses, accs, counts, token_mask, ls, acs, num_buggy)
            if mbs % config["training"]["print_freq"] == 0:
                loss_str, acc_str = _fmt(losses, accs)
                echo("MB: {0}, seqs: {1:,}, tokens: {2:,}, loss: {3}, accs: {4}".format(
                    mbs, curr_samples, counts[1].result().numpy(), loss_str, acc_str))
                [m.reset_states() for m in losses + accs]
            if prev_samples // valid_interval < curr_samples // valid_interval:
                avg_accs = evaluate(great, data, config, model, recorder=recorder, epoch=epoch,
                                    step=updates, echo=echo)
                save_updates(updates_dir, epoch + 1, updates)  # before the checkpoint: never missing for it
                tracker.save_checkpoint(model, avg_accs)
                batch_in_epoch = 0
                if tracker.ckpt.step >= max_steps:
                    break
                echo("Step: {}".format(tracker.ckpt.step.numpy() + 1))


def evaluate_checkpoint(great: GreatCheckout, data: Any, config: dict, *, model_path: str, log_path: str,
         stats_dir: str | None = None, run_config: dict | None = None, echo: Echo = log.info) -> list:
    """GREAT's ``-e`` mode: restore the best checkpoint and evaluate on ``eval`` (rows: ``split=eval``).

    Evaluation rows go to their own, new run directory (``epoch`` = the checkpoint's GREAT step - 1).
    """
    plain_config = copy.deepcopy(config)
    model = _build(great, data, config)
    tracker = _tracker(great, model, model_path, log_path)
    tracker.restore(best_model=True)
    ckpt_step = int(tracker.ckpt.step.numpy())
    recorder = None
    if stats_dir is not None:
        recorder = GreatRecorder(stats_dir, config={"great_config": plain_config, **(run_config or {})}, fresh=True,
                                 versions={"tensorflow": tf.__version__})
    try:
        return evaluate(great, data, config, model, is_heldout=False, recorder=recorder,
                        epoch=max(ckpt_step - 1, 0), step=load_updates(Path(model_path), ckpt_step) or 0,
                        echo=echo)
    finally:
        if recorder is not None:
            recorder.close()
