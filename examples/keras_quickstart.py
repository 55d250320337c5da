"""trainstats.keras quick start: record per-sample statistics of a real Keras fit, read them in pandas.

Trains a small MLP on generated data (8 Gaussian classes in 16 dimensions, no download) where 10 % of
the training labels were flipped on purpose, records every sample at every step, and shows that the
flipped samples stand out: the model gives their (wrong) label a low probability until it memorizes it.

    python examples/keras_quickstart.py [RUN_DIR]
"""
from __future__ import annotations

import os
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import keras  # noqa: E402

import trainstats  # noqa: E402
from trainstats.keras import PerSampleStats, with_ids  # noqa: E402


def make_data(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(scale=1.0, size=(8, 16))
    y = rng.integers(0, 8, n)
    x = (centers[y] + rng.normal(size=(n, 16))).astype("float32")
    return x, y


def main(run_dir: str) -> None:
    x_all, y_all = make_data(4500)
    x, y, x_dev, y_dev = x_all[:4000], y_all[:4000], x_all[4000:], y_all[4000:]
    rng = np.random.default_rng(2)
    noisy = rng.random(len(y)) < 0.10  # plant label noise: flip 10 % of the training labels
    y_noisy = np.where(noisy, (y + rng.integers(1, 8, len(y))) % 8, y)
    ids = [f"train:{i}" for i in range(len(x))]

    model = keras.Sequential([keras.Input((16,)), keras.layers.Dense(64, activation="relu"),
                              keras.layers.Dense(64, activation="relu"), keras.layers.Dense(8)])
    model.compile(keras.optimizers.Adam(3e-3), keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])

    # The two trainstats lines: ids (and here the noise flags) ride with the data; one callback.
    ds = with_ids(tf.data.Dataset.from_tensor_slices((x, y_noisy)), ids, noise=noisy, noise_kind="label")
    ds = ds.shuffle(len(x), seed=0).batch(64)
    dev = with_ids((x_dev, y_dev), [f"dev:{i}" for i in range(len(x_dev))])
    model.fit(ds, epochs=12, validation_data=dev, verbose=2, callbacks=[PerSampleStats(run_dir)])

    # Reading needs no TensorFlow: plain pandas.
    rows = trainstats.read(run_dir, split="train")
    print(f"\n{len(rows)} training rows; columns: {list(rows.columns)}")
    print(rows.head())
    per_epoch = rows.groupby(["epoch", "noise"])["gold_prob"].mean().unstack()
    per_epoch.columns = ["clean", "noisy"]
    print("\nmean probability of the (possibly flipped) training label, per epoch:")
    print(per_epoch.round(3))
    mean_gold = rows.groupby("sample_id").agg(gold_prob=("gold_prob", "mean"), noise=("noise", "first"))
    flagged = mean_gold.nsmallest(int(noisy.sum()), "gold_prob")
    print(f"\nof the {len(flagged)} samples with the lowest mean gold_prob, "
          f"{flagged['noise'].mean():.0%} are the flipped ones")
    dev_rows = trainstats.read(run_dir, split="dev")
    print("dev accuracy per epoch from the rows:", dev_rows.groupby("epoch")["correct"].mean().round(3).tolist())


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp(prefix="trainstats-quickstart-"))
