"""Train one VarMisuse model with per-sample capture: the demo's "existing Keras script" plus two lines."""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

from .settings import DemoSettings

__all__ = ["train_run"]


def _epoch_bar(total: int, desc: str, enabled: bool):
    import keras
    from tqdm.auto import tqdm

    class _Bar(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.bar = tqdm(total=total, desc=desc, unit="epoch", file=sys.stderr, disable=not enabled, leave=True)

        def on_epoch_end(self, epoch, logs=None):
            logs = logs or {}
            self.bar.set_postfix({k: f"{v:.3f}" for k, v in logs.items() if k in ("loss", "val_loss")})
            self.bar.update(1)

        def on_train_end(self, logs=None):
            self.bar.close()

    return _Bar()


def train_run(
    train_dir: str | os.PathLike,
    dev_dir: str | os.PathLike,
    run_dir: str | os.PathLike,
    *,
    settings: DemoSettings,
    seed: int = 0,
    config: dict[str, Any] | None = None,
    noise_manifest: str | os.PathLike | None = None,
    progress: bool = True,
    desc: str = "train",
    monitor: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Train one model on ``train_dir``'s ``train`` shards, validating on ``dev_dir``'s ``dev`` shards.

    Per-sample rows of every training step and of the dev split at each epoch end go to ``run_dir``
    (``trainstats.store`` format) through :func:`trainstats.models.varmisuse_callback`; ``config``
    is stored in ``run.json`` (plus the settings). ``monitor``: keyword arguments of
    :class:`trainstats.keras.MemorizationMonitor` to watch the training live (None: no monitor). Returns ``{"history", "seconds", "n_train", "n_dev",
    "skipped_too_long"}``.
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
    keras.utils.set_random_seed(seed)
    model = build_varmisuse_model(s.model, vocab_size=len(vocab), max_subtokens=vocab.max_subtokens, hidden=s.hidden,
                                  num_layers=s.num_layers, num_heads=s.num_heads, dropout=s.dropout)
    compile_varmisuse_model(model, learning_rate=s.learning_rate)

    batching = dict(max_tokens=s.max_tokens, token_budget=s.token_budget, max_batch=s.max_batch)
    # the two trainstats lines: ids travel with the data, and one callback records the rows
    train_ds = with_ids(element_dataset(train), train.sample_ids).shuffle(len(train), seed=seed)
    dev_ds = with_ids(element_dataset(dev), dev.sample_ids)
    train_ds = batch_by_length(train_ds, **batching).prefetch(2)
    dev_ds = batch_by_length(dev_ds, **batching).prefetch(2)
    run_config = {**(config or {}), "seed": seed, "settings": s.to_dict(), "vocab_size": len(vocab),
                  "n_train": len(train), "n_dev": len(dev)}
    capture = varmisuse_callback(run_dir, noise_manifest=None if noise_manifest is None else str(noise_manifest),
                                 config=run_config, resume=False)
    callbacks = [capture, _epoch_bar(s.epochs, desc, progress)]
    if monitor is not None:
        from trainstats.keras import MemorizationMonitor

        callbacks.insert(1, MemorizationMonitor(capture, **monitor))
    history = model.fit(train_ds, validation_data=dev_ds, epochs=s.epochs, verbose=0, callbacks=callbacks)
    vocab.to_json(Path(run_dir) / "vocab.json")
    return {"history": {k: [float(v) for v in vals] for k, vals in history.history.items()},
            "seconds": time.perf_counter() - t0, "n_train": len(train), "n_dev": len(dev),
            "skipped_too_long": train.skipped_too_long + dev.skipped_too_long}
