"""GREAT's training and evaluation loops with per-sample statistics from the same forward pass.

:func:`train` and :func:`evaluate` behave like ``running/run_model.py`` of the checkout: the same model
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
from typing import Any, Callable, NamedTuple

import numpy as np
import tensorflow as tf

from trainstats.great.batching import IdBatcher
from trainstats.great.checkout import GreatCheckout
from trainstats.great.recorder import GreatRecorder, load_updates, save_updates
from trainstats.great.stats import per_sample_stats_fn

__all__ = ["StepOutput", "train", "train_step", "eval_step", "evaluate", "evaluate_checkpoint"]

log = logging.getLogger("trainstats.great")
Echo = Callable[[str], None]
GRADIENT_CLIP_NORM = 0.25  # GREAT clips the global gradient norm to this


class StepOutput(NamedTuple):
    """What one batch's forward pass gives the loop: GREAT's mask, losses and accuracies, our stats."""

    logits: tf.Tensor            # float32 [B, 2, T], the model's pointer logits
    token_mask: tf.Tensor        # int32 [B, T]
    losses: tuple                # GREAT's (localization, repair) batch losses
    accuracies: tuple            # GREAT's (no-bug, localization, repair, joint) batch accuracies
    stats: dict | None           # per-sample tensors from per_sample_stats, or None


def _mask_of(tokens: tf.Tensor) -> tf.Tensor:
    """1 where a token has a non-padding sub-token, as GREAT's loop computes it: int32 [B, T]."""
    return tf.clip_by_value(tf.reduce_sum(tokens, axis=-1), 0, 1)


def _bug_count(error_locations: tf.Tensor) -> tf.Tensor:
    return tf.reduce_sum(tf.clip_by_value(error_locations, 0, 1))


def train_step(model: Any, optimizer: Any, batch: tuple, *, with_stats: bool) -> StepOutput:
    """One GREAT update: forward pass with dropout, GREAT's loss, clipped gradients, Adam.

    With ``with_stats`` the per-sample stats are computed from this forward pass's logits (taken
    before the update is applied); no second forward pass is made.
    """
    tokens, edges, error_locations, targets, candidates = batch[:5]
    mask = _mask_of(tokens)
    with tf.GradientTape() as tape:
        logits = model(tokens, mask, edges, training=True)
        head_losses, head_accs = model.get_loss(logits, mask, error_locations, targets, candidates)
        objective = head_losses[0] + head_losses[1]
    variables = model.trainable_variables
    clipped, _ = tf.clip_by_global_norm(tape.gradient(objective, variables), GRADIENT_CLIP_NORM)
    stats = per_sample_stats_fn(logits, mask, error_locations, targets, candidates) if with_stats else None
    optimizer.apply_gradients(list(zip(clipped, variables)))
    return StepOutput(logits, mask, head_losses, head_accs, stats)


def eval_step(model: Any, batch: tuple, *, with_stats: bool) -> StepOutput:
    """GREAT's held-out forward pass (no dropout, no update), with per-sample stats if asked."""
    tokens, edges, error_locations, targets, candidates = batch[:5]
    mask = _mask_of(tokens)
    logits = model(tokens, mask, edges, training=False)
    head_losses, head_accs = model.get_loss(logits, mask, error_locations, targets, candidates)
    stats = per_sample_stats_fn(logits, mask, error_locations, targets, candidates) if with_stats else None
    return StepOutput(logits, mask, head_losses, head_accs, stats)


def _summary(losses: list, accs: list) -> tuple[str, str]:
    return (", ".join(f"{m.result().numpy():.3f}" for m in losses),
            ", ".join(f"{m.result().numpy():.2%}" for m in accs))


def _build(great: GreatCheckout, data: Any, config: dict) -> Any:
    model = great.meta_model.VarMisuseModel(config["model"], data.vocabulary.vocab_dim)
    model.run_dummy_input()
    return model


def _tracker(great: GreatCheckout, model: Any, model_path: str | None, log_path: str | None) -> Any:
    tracker_cls = great.checkpoint_tracker.Tracker
    return tracker_cls(model) if model_path is None else tracker_cls(model, model_path, log_path)


def evaluate(great: GreatCheckout, data: Any, config: dict, model: Any, *, is_heldout: bool = True,
             recorder: GreatRecorder | None = None, epoch: int = 0, step: int = 0,
             echo: Echo = log.info, monitor: Any = None) -> list:
    """One held-out pass (``dev``, cut off after ``max_valid_samples``) or the full ``eval`` pass.

    Returns GREAT's four accuracies (no-bug, bug localization, repair, joint), like GREAT's ``evaluate``.
    """
    metrics = great.run_model
    split = "dev" if is_heldout else "eval"
    echo("Running evaluation pass on heldout data" if is_heldout else "Testing pre-trained model on full eval data")
    losses, accs, counts = metrics.get_metrics()
    limit, print_every = config["data"]["max_valid_samples"], config["training"]["print_freq"]
    for index, batch in enumerate(IdBatcher(data).batcher(split)):
        out = eval_step(model, batch, with_stats=recorder is not None)
        metrics.update_metrics(losses, accs, counts, out.token_mask, out.losses, out.accuracies,
                               _bug_count(batch[2]))
        if recorder is not None:
            keys, values = recorder.write_batch(split=split, epoch=epoch, step=step, batch=index,
                                                sample_ids=batch[5].numpy(), n_tokens=batch[6].numpy(),
                                                stats=out.stats)
            if monitor is not None:
                monitor.add_batch(split, sample_key=keys, step=step, values=values)
        if is_heldout:
            if counts[0].result() > limit:
                break
        elif (index + 1) % print_every == 0:
            loss_text, acc_text = _summary(losses, accs)
            echo(f"Testing progress: MB: {index + 1}, seqs: {counts[0].result().numpy():,}, "
                 f"tokens: {counts[1].result().numpy():,}, loss: {loss_text}, accs: {acc_text}")
    loss_text, acc_text = _summary(losses, accs)
    echo(f"Evaluation result: seqs: {counts[0].result().numpy():,}, tokens: {counts[1].result().numpy():,}, "
         f"loss: {loss_text}, accs: {acc_text}")
    if recorder is not None:
        recorder.flush()
    return [m.result().numpy() for m in accs]


def train(great: GreatCheckout, data: Any, config: dict, *, model_path: str | None = None,
          log_path: str | None = None, stats_dir: str | None = None, noise_manifest: str | None = None,
          run_config: dict | None = None, echo: Echo = log.info, monitor: dict | None = None) -> None:
    """Train like GREAT's ``train()``; with ``stats_dir``, record every batch and held-out pass.

    GREAT resumes from the newest checkpoint in ``model_path``; the run directory then continues as a
    new attempt from that checkpoint's step, so rows of the interrupted step are superseded, not doubled.
    ``monitor``: keyword arguments of :class:`trainstats.great.monitor.GreatMonitor` (needs ``stats_dir``):
    the live memorization monitor runs after each GREAT step's checkpoint and may end training there.
    """
    plain_config = copy.deepcopy(config)  # before GREAT's layers wrap its nested dicts
    model = _build(great, data, config)
    n_params = np.sum([np.prod(v.shape) for v in model.trainable_variables])
    echo(f"Model initialized, training {n_params:,} parameters")
    optimizer = tf.optimizers.Adam(config["training"]["learning_rate"])
    tracker = _tracker(great, model, model_path, log_path)
    tracker.restore()
    resumed_at = int(tracker.ckpt.step.numpy())
    echo(f"Restored from step: {resumed_at + 1}" if resumed_at > 0 else f"Step: {resumed_at + 1}")
    updates = load_updates(tracker.model_path, resumed_at) if resumed_at > 0 else 0
    if updates is None:
        log.warning("no update count stored for checkpoint step %d in %s; the store's step column restarts "
                    "at 0 for this attempt", resumed_at, tracker.model_path)
        updates = 0
    recorder = None
    if stats_dir is not None:
        cfg = {"great_config": plain_config, **(run_config or {}),
               "epoch_unit": f"GREAT step = {config['data']['valid_interval']} training samples"}
        recorder = GreatRecorder(stats_dir, config=cfg, noise_manifest=noise_manifest,
                                 versions={"tensorflow": tf.__version__})
    live = None
    if monitor is not None:
        if recorder is None:
            raise ValueError("the memorization monitor needs the per-sample rows: give stats_dir (--stats)")
        from trainstats.great.monitor import GreatMonitor

        live = GreatMonitor(stats_dir, noise_manifest=noise_manifest, **monitor)
    try:
        _train_loop(great, model, optimizer, tracker, data, config, recorder, updates, echo, live)
    finally:
        if live is not None:
            live.close()
        if recorder is not None:
            recorder.close()


def _train_loop(great: GreatCheckout, model: Any, optimizer: Any, tracker: Any, data: Any, config: dict,
                recorder: GreatRecorder | None, updates: int, echo: Echo, monitor: Any = None) -> None:
    metrics = great.run_model
    max_steps, valid_interval = config["training"]["max_steps"], config["data"]["valid_interval"]
    print_every = config["training"]["print_freq"]
    minibatches, batch_in_epoch = 0, 0
    losses, accs, counts = metrics.get_metrics()
    batcher = IdBatcher(data)
    while tracker.ckpt.step < max_steps:
        for batch in batcher.batcher("train"):
            minibatches += 1
            epoch = int(tracker.ckpt.step.numpy())
            out = train_step(model, optimizer, batch, with_stats=recorder is not None)
            if recorder is not None:
                keys, values = recorder.write_batch(split="train", epoch=epoch, step=updates, batch=batch_in_epoch,
                                                    sample_ids=batch[5].numpy(), n_tokens=batch[6].numpy(),
                                                    stats=out.stats)
                if monitor is not None:
                    monitor.add_batch("train", sample_key=keys, step=updates, values=values)
            updates += 1
            batch_in_epoch += 1
            seen_before = tracker.get_samples()
            seen = tracker.update_samples(tf.shape(out.token_mask)[0])
            metrics.update_metrics(losses, accs, counts, out.token_mask, out.losses, out.accuracies,
                                   _bug_count(batch[2]))
            if minibatches % print_every == 0:
                loss_text, acc_text = _summary(losses, accs)
                echo(f"MB: {minibatches}, seqs: {seen:,}, tokens: {counts[1].result().numpy():,}, "
                     f"loss: {loss_text}, accs: {acc_text}")
                for m in losses + accs:
                    m.reset_states()
            if seen_before // valid_interval < seen // valid_interval:  # a GREAT step ends
                held_out = evaluate(great, data, config, model, recorder=recorder, epoch=epoch, step=updates,
                                    echo=echo, monitor=monitor)
                save_updates(tracker.model_path, epoch + 1, updates)  # before the checkpoint it belongs to
                tracker.save_checkpoint(model, held_out)
                batch_in_epoch = 0
                if monitor is not None and monitor.end_interval(epoch, model):
                    onset = monitor.onset
                    echo(f"Memorization onset at step {onset.epoch + 1} (rule {onset.rule}); stopping"
                         + (f", weights of step {onset.epoch + 1} restored" if monitor.restored_epoch is not None
                            else ""))
                    return
                if tracker.ckpt.step >= max_steps:
                    break
                echo(f"Step: {tracker.ckpt.step.numpy() + 1}")


def evaluate_checkpoint(great: GreatCheckout, data: Any, config: dict, *, model_path: str, log_path: str,
                        stats_dir: str | None = None, run_config: dict | None = None,
                        echo: Echo = log.info) -> list:
    """GREAT's ``-e`` mode: restore the best checkpoint and evaluate on ``eval`` (rows: ``split=eval``).

    Evaluation rows go to their own, new run directory (``epoch`` = the checkpoint's GREAT step - 1).
    """
    plain_config = copy.deepcopy(config)
    model = _build(great, data, config)
    tracker = _tracker(great, model, model_path, log_path)
    tracker.restore(best_model=True)
    restored = int(tracker.ckpt.step.numpy())
    recorder = None
    if stats_dir is not None:
        recorder = GreatRecorder(stats_dir, config={"great_config": plain_config, **(run_config or {})},
                                 fresh=True, versions={"tensorflow": tf.__version__})
    try:
        return evaluate(great, data, config, model, is_heldout=False, recorder=recorder,
                        epoch=max(restored - 1, 0), step=load_updates(Path(model_path), restored) or 0,
                        echo=echo)
    finally:
        if recorder is not None:
            recorder.close()
