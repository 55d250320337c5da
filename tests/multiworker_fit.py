"""One worker of a two-worker ``MultiWorkerMirroredStrategy`` fit, for ``test_keras_multiworker.py``.

    python multiworker_fit.py RUN BACKUP INDEX PORT0,PORT1 [--kill-at EPOCH:BATCH] [--out RESULT.json]

Worker ``INDEX`` of a cluster of two on 127.0.0.1 (``TF_CONFIG``) trains a tiny classifier on 48
samples (global batch 8: 6 steps an epoch, 4 samples a worker and step) for 4 epochs with
``BackupAndRestore(BACKUP/worker<INDEX>)`` and ``PerSampleStats(RUN)``, validating on 12 samples. The learning
rate is 0, so every recorded ``gold_prob`` must equal the initial model's probability of the gold
label of the row's sample id: worker 0 writes those probabilities to ``--out``. ``--kill-at E:B``:
the worker SIGKILLs itself as batch ``B`` of epoch ``E`` begins (rows still buffered are lost).
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import sys

N, D, C, BATCH, EPOCHS, N_DEV = 48, 4, 3, 8, 4, 12


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("run")
    ap.add_argument("backup")
    ap.add_argument("index", type=int)
    ap.add_argument("ports")
    ap.add_argument("--kill-at", default=None)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    os.environ["TF_CONFIG"] = json.dumps({
        "cluster": {"worker": [f"127.0.0.1:{p}" for p in args.ports.split(",")]},
        "task": {"type": "worker", "index": args.index}})
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

    import numpy as np
    import tensorflow as tf
    import keras

    from trainstats.keras import PerSampleStats, with_ids

    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    rng = np.random.default_rng(0)
    x = rng.normal(size=(N + N_DEV, D)).astype("float32")
    y = rng.integers(0, C, N + N_DEV)
    ids = [f"mw.txt:{i + 1}" for i in range(N + N_DEV)]
    # the same seed on every worker: each global batch is split between the workers (DATA sharding)
    train = with_ids(tf.data.Dataset.from_tensor_slices((x[:N], y[:N])), ids[:N]).shuffle(N, seed=1).batch(BATCH)
    dev = with_ids(tf.data.Dataset.from_tensor_slices((x[N:], y[N:])), ids[N:]).batch(BATCH)
    with strategy.scope():
        keras.utils.set_random_seed(0)
        model = keras.Sequential([keras.Input((D,)), keras.layers.Dense(8, activation="relu"), keras.layers.Dense(C)])
        model.compile(keras.optimizers.SGD(0.0), keras.losses.SparseCategoricalCrossentropy(from_logits=True))

    class Kill(keras.callbacks.Callback):
        def __init__(self, at):
            super().__init__()
            self.at, self.epoch = at, None

        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch

        def on_train_batch_begin(self, batch, logs=None):
            if (self.epoch, batch) == self.at:
                os.kill(os.getpid(), signal.SIGKILL)

    # Keras 3's BackupAndRestore writes one file from every worker: each worker gets its own folder
    backup = os.path.join(args.backup, f"worker{args.index}")
    callbacks = [keras.callbacks.BackupAndRestore(backup), PerSampleStats(args.run)]
    if args.kill_at:
        callbacks.append(Kill(tuple(int(v) for v in args.kill_at.split(":"))))
    model.fit(train, epochs=EPOCHS, validation_data=dev, verbose=0, callbacks=callbacks)
    if args.out:
        p = tf.nn.softmax(model(x, training=False)).numpy()  # every sample, on this worker alone
        with open(args.out, "w") as f:
            json.dump({"gold_prob": {ids[i]: float(p[i, y[i]]) for i in range(len(ids))},
                       "replicas": strategy.num_replicas_in_sync}, f)


if __name__ == "__main__":
    sys.exit(main())
