"""Train one VarMisuse model with per-sample capture: the demo's "existing Keras script" plus two lines.

A killed run resumes: ``backup_dir`` holds Keras's ``BackupAndRestore`` state (weights, optimizer,
epoch) of the last finished epoch, and the capture continues the run directory as a new attempt,
whose rows supersede the killed attempt's from the resumed epoch on (docs/store.md).
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

from .settings import DemoSettings

__all__ = ["train_run", "learning_rate_schedule"]


def _epoch_bar(total: int, desc: str, enabled: bool, position: int = 0):
    import keras
    from tqdm.auto import tqdm

    class _Bar(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.bar = tqdm(total=total, desc=desc, unit="epoch", file=sys.stderr, disable=not enabled, leave=True,
                            position=position)

        def on_epoch_begin(self, epoch, logs=None):
            if self.bar.n < epoch:  # resumed by BackupAndRestore: the bar starts where training does
                self.bar.update(epoch - self.bar.n)

        def on_epoch_end(self, epoch, logs=None):
            logs = logs or {}
            self.bar.set_postfix({k: f"{v:.3f}" for k, v in logs.items() if k in ("loss", "val_loss")})
            self.bar.update(1)

        def on_train_end(self, logs=None):
            self.bar.close()

    return _Bar()


def learning_rate_schedule(settings: DemoSettings, steps_per_epoch: int):
    """Adam's learning rate per step: linear warm-up over ``warmup_fraction`` of the steps to
    ``learning_rate``, then a cosine decay to 0 at the last step (or constant with ``cosine=False``).

    Returns a float (no warm-up, no decay) or a ``keras.optimizers.schedules.LearningRateSchedule``.
    """
    import keras

    s = settings
    total = max(1, steps_per_epoch * s.epochs)
    warmup = int(round(s.warmup_fraction * total))
    if not s.cosine and warmup == 0:
        return s.learning_rate
    if not s.cosine:
        return keras.optimizers.schedules.PiecewiseConstantDecay([warmup], [s.learning_rate / 2, s.learning_rate])
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=0.0 if warmup else s.learning_rate, decay_steps=max(1, total - warmup), alpha=0.0,
        warmup_target=s.learning_rate if warmup else None, warmup_steps=warmup)


def _count_batches(ds) -> int:
    return int(ds.reduce(0, lambda n, _: n + 1))


def train_run(
    train_dir: str | os.PathLike,
    dev_dir: str | os.PathLike,
    run_dir: str | os.PathLike,
    *,
    settings: DemoSettings,
    seed: int = 0,
    config: dict[str, Any] | None = None,
    noise_manifest: str | os.PathLike | None = None,
    backup_dir: str | os.PathLike | None = None,
    callbacks: list | None = None,
    progress: bool = True,
    desc: str = "train",
    monitor: dict[str, Any] | None = None,
    position: int = 0,
) -> dict[str, Any]:
    """Train one model on ``train_dir``'s ``train`` shards, validating on ``dev_dir``'s ``dev`` shards.

    Per-sample rows of every training step and of the dev split at each epoch end go to ``run_dir``
    (``trainstats.store`` format) through :func:`trainstats.models.varmisuse_callback`; ``config``
    is stored in ``run.json`` (plus the settings). With ``backup_dir`` the run can be resumed after
    a kill (same arguments again); without it an existing ``run_dir`` is refused. ``monitor``: keyword
    arguments of :class:`trainstats.keras.MemorizationMonitor` to watch the training live (None: no
    monitor). ``callbacks`` are added to ``fit``'s; ``position``: the progress bar's line (runs trained
    side by side). Returns ``{"history", "seconds", "n_train",
    "n_dev", "skipped_too_long", "samples_per_s"}`` (training samples per second of training-epoch
    time, dev passes included).
    """
    import keras

    from trainstats.keras import with_ids
    from trainstats.models import (SubtokenVocab, batch_by_length, build_varmisuse_model, compile_varmisuse_model,
                                   element_dataset, load_encoded, varmisuse_callback)
    from trainstats.varmisuse import iter_examples

    s = settings
    t0 = time.perf_counter()
    vocab = SubtokenVocab.build((ex["source_tokens"] for _, ex in iter_examples(train_dir, split="train")),
                                max_size=s.vocab_size)
    train = load_encoded(train_dir, vocab, split="train", max_tokens=s.max_tokens)
    dev = load_encoded(dev_dir, vocab, split="dev", max_tokens=s.max_tokens)
    if len(train) == 0 or len(dev) == 0:
        raise ValueError(f"no {'training' if len(train) == 0 else 'dev'} example of at most {s.max_tokens} tokens "
                         f"in {train_dir if len(train) == 0 else dev_dir}")
    keras.utils.set_random_seed(seed)
    model = build_varmisuse_model(s.model, vocab_size=len(vocab), max_subtokens=vocab.max_subtokens, hidden=s.hidden,
                                  num_layers=s.num_layers, num_heads=s.num_heads, dropout=s.dropout)

    batching = dict(max_tokens=s.max_tokens, token_budget=s.token_budget, max_batch=s.max_batch,
                    bucket_width=s.bucket_width)
    # the two trainstats lines: ids travel with the data, and one callback records the rows
    train_ds = with_ids(element_dataset(train), train.sample_ids).shuffle(len(train), seed=seed)
    dev_ds = with_ids(element_dataset(dev), dev.sample_ids)
    train_ds = batch_by_length(train_ds, **batching).prefetch(2)
    dev_ds = batch_by_length(dev_ds, **batching).prefetch(2)
    compile_varmisuse_model(model, learning_rate=learning_rate_schedule(s, _count_batches(train_ds)))
    run_config = {**(config or {}), "seed": seed, "settings": s.to_dict(), "vocab_size": len(vocab),
                  "n_train": len(train), "n_dev": len(dev)}
    resume = backup_dir is not None
    capture = varmisuse_callback(run_dir, noise_manifest=None if noise_manifest is None else str(noise_manifest),
                                 config=run_config, resume="auto" if resume else False)
    timer = _EpochTimer()
    fit_callbacks = [capture, timer, *(callbacks or []), _epoch_bar(s.epochs, desc, progress, position)]
    if resume:
        fit_callbacks.insert(0, keras.callbacks.BackupAndRestore(str(backup_dir)))
    if monitor is not None:
        from trainstats.keras import MemorizationMonitor

        fit_callbacks.insert(fit_callbacks.index(capture) + 1, MemorizationMonitor(capture, **monitor))
    history = model.fit(train_ds, validation_data=dev_ds, epochs=s.epochs, verbose=0, callbacks=fit_callbacks)
    from trainstats.store import files_dir

    files_dir(run_dir).mkdir(parents=True, exist_ok=True)
    vocab.to_json(files_dir(run_dir) / "vocab.json")
    return {"history": {k: [float(v) for v in vals] for k, vals in history.history.items()},
            "seconds": time.perf_counter() - t0, "n_train": len(train), "n_dev": len(dev),
            "skipped_too_long": train.skipped_too_long + dev.skipped_too_long,
            "samples_per_s": timer.samples_per_s(len(train))}


def _EpochTimer():
    import keras

    class EpochTimer(keras.callbacks.Callback):
        """Wall seconds of each epoch (training steps and the dev pass)."""

        def __init__(self):
            super().__init__()
            self.seconds: list[float] = []

        def on_epoch_begin(self, epoch, logs=None):
            self._t = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.seconds.append(time.perf_counter() - self._t)

        def samples_per_s(self, n: int) -> float | None:
            """Median over the epochs after the first (tracing); None with fewer than two epochs."""
            import statistics

            later = self.seconds[1:]
            return n / statistics.median(later) if later else None

    return EpochTimer()
