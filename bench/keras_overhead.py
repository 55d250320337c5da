"""Overhead of trainstats.keras.PerSampleStats on model.fit (CPU by default).

Runs the same fit with and without the callback, interleaved in ABBA order (plain, stats, stats,
plain, ...), each
fit several epochs; the first epoch of every fit is dropped (tracing, opening the run). Prints, per
model, the median (and, as a load-robust check, the minimum) epoch time of each variant, their ratio,
and the added microseconds per training step. On a shared, loaded machine prefer more --rounds.

    .venv/bin/python bench/keras_overhead.py            # both models
    .venv/bin/python bench/keras_overhead.py --model mlp --rounds 5

Models: (a) ``mlp``: a small MLP (32 -> 64 -> 10, batch 64); (b) ``transformer``: a 2-layer
Transformer encoder over 64-token sequences (d=128, batch 32), a step of >= 50 ms on 2 CPU cores.
Targets (issue 3): (b) <= 3 % overhead, (a) <= 0.3 ms added per step.
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import keras  # noqa: E402

from trainstats.keras import PerSampleStats, with_ids  # noqa: E402


class EpochTimer(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.times: list[float] = []

    def on_epoch_begin(self, epoch, logs=None):
        self._t = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.times.append(time.perf_counter() - self._t)


def mlp(seed: int):
    keras.utils.set_random_seed(seed)
    m = keras.Sequential([keras.Input((32,)), keras.layers.Dense(64, activation="relu"), keras.layers.Dense(10)])
    m.compile(keras.optimizers.Adam(1e-3), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    rng = np.random.default_rng(0)
    n = 64 * 200
    x = rng.normal(size=(n, 32)).astype("float32")
    y = rng.integers(0, 10, n)
    return m, x, y, 64


def transformer(seed: int):
    keras.utils.set_random_seed(seed)
    vocab, seq, d, heads = 2000, 64, 128, 4
    inp = keras.Input((seq,), dtype="int32")
    h = keras.layers.Embedding(vocab, d)(inp)
    for _ in range(2):
        a = keras.layers.MultiHeadAttention(heads, d // heads)(h, h)
        h = keras.layers.LayerNormalization()(h + a)
        f = keras.layers.Dense(4 * d, activation="relu")(h)
        h = keras.layers.LayerNormalization()(h + keras.layers.Dense(d)(f))
    out = keras.layers.Dense(10)(keras.layers.GlobalAveragePooling1D()(h))
    m = keras.Model(inp, out)
    m.compile(keras.optimizers.Adam(1e-3), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    rng = np.random.default_rng(0)
    n = 32 * 20
    x = rng.integers(0, vocab, (n, seq)).astype("int32")
    y = rng.integers(0, 10, n)
    return m, x, y, 32


def bench(name: str, build, rounds: int, epochs: int, workdir: str, jit_stats) -> None:
    plain_model, x, y, bs = build(1)
    stats_model, _, _, _ = build(1)
    ids = [f"{name}:{i}" for i in range(len(x))]
    ds_plain = tf.data.Dataset.from_tensor_slices((x, y)).batch(bs).prefetch(2)
    ds_stats = with_ids(tf.data.Dataset.from_tensor_slices((x, y)), ids).batch(bs).prefetch(2)
    steps = -(-len(x) // bs)
    times = {"plain": [], "stats": []}
    run_dir = os.path.join(workdir, name)
    cb = PerSampleStats(run_dir, jit_stats=jit_stats)  # one callback reused across fits (one run, one attempt)
    for r in range(rounds):
        order = ("plain", "stats") if r % 2 == 0 else ("stats", "plain")  # ABBA: no order bias
        for variant in order:
            timer = EpochTimer()
            if variant == "plain":
                plain_model.fit(ds_plain, epochs=epochs, verbose=0, callbacks=[timer])
            else:
                stats_model.fit(ds_stats, epochs=epochs, verbose=0, callbacks=[cb, timer])
            times[variant].extend(timer.times[1:])  # drop each fit's first epoch (tracing)
    for label, agg in (("median", statistics.median), ("min", min)):
        t = {k: agg(v) for k, v in times.items()}
        added_us = (t["stats"] - t["plain"]) / steps * 1e6
        print(f"{name} [{label} epoch]: {steps} steps/epoch, {len(times['plain'])} epochs per variant | "
              f"plain {t['plain'] * 1e3:.1f} ms, with trainstats {t['stats'] * 1e3:.1f} ms | "
              f"ratio {t['stats'] / t['plain']:.4f} ({(t['stats'] / t['plain'] - 1) * 100:+.2f} %) | "
              f"added {added_us:+.0f} us/step (plain step {t['plain'] / steps * 1e3:.2f} ms)", flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", choices=("mlp", "transformer", "both"), default="both")
    p.add_argument("--rounds", type=int, default=8, help="interleaved fits per variant")
    p.add_argument("--epochs", type=int, default=2, help="epochs per fit (the first is dropped)")
    p.add_argument("--jit-stats", choices=("auto", "true", "false"), default="auto",
                   help="PerSampleStats(jit_stats=...): XLA-compile the stats ops")
    args = p.parse_args()
    jit = {"auto": "auto", "true": True, "false": False}[args.jit_stats]
    workdir = tempfile.mkdtemp(prefix="trainstats-bench-")
    try:
        if args.model in ("mlp", "both"):
            bench("mlp", mlp, args.rounds, args.epochs, workdir, jit)
        if args.model in ("transformer", "both"):
            bench("transformer", transformer, args.rounds, args.epochs, workdir, jit)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
