"""PerSampleStats with BackupAndRestore (a resumed fit leaves no duplicate rows) and with
MirroredStrategy over two logical CPU devices (rows gathered, not averaged), the latter in a
subprocess because logical devices must be configured before TensorFlow initialises."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
keras = pytest.importorskip("keras")

import trainstats  # noqa: E402
from trainstats.keras import PerSampleStats, with_ids  # noqa: E402

pytestmark = [pytest.mark.tf, pytest.mark.slow]

N, D, C = 40, 4, 3


class _Crash(keras.callbacks.Callback):
    def on_train_batch_begin(self, batch, logs=None):
        if self.params and getattr(self, "_epoch", 0) == 2 and batch == 2:
            raise RuntimeError("simulated crash")

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch


def _model():
    keras.utils.set_random_seed(0)
    m = keras.Sequential([keras.Input((D,)), keras.layers.Dense(8, activation="relu"), keras.layers.Dense(C)])
    m.compile(keras.optimizers.SGD(0.1), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return m


def test_backup_and_restore_resume_has_no_duplicate_rows(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(N, D)).astype("float32")
    y = rng.integers(0, C, N)
    ids = [f"r.txt:{i + 1}" for i in range(N)]
    xs, ys = with_ids((x, y), ids)
    run, backup = tmp_path / "run", str(tmp_path / "backup")

    model = _model()
    first = PerSampleStats(run)
    with pytest.raises(RuntimeError, match="simulated crash"):
        model.fit(xs, ys, batch_size=10, epochs=4, verbose=0,
                  callbacks=[keras.callbacks.BackupAndRestore(backup), first, _Crash()])
    first.close()  # what the process would leave behind: epoch 2's first two batches are on disk
    partial = trainstats.read(run, split="train")
    assert partial.groupby("epoch").size().to_dict() == {0: N, 1: N, 2: 20}

    model = _model()  # a fresh process would rebuild the model; BackupAndRestore restores weights + epoch
    model.fit(xs, ys, batch_size=10, epochs=4, verbose=0,
              callbacks=[keras.callbacks.BackupAndRestore(backup), PerSampleStats(run)])
    df = trainstats.read(run, split="train")
    assert df.groupby("epoch").size().to_dict() == {0: N, 1: N, 2: N, 3: N}
    assert not df.duplicated(["epoch", "sample_id"]).any()
    assert sorted(df["step"].unique().tolist()) == list(range(16))
    assert (df[df.epoch >= 2]["attempt"] == 2).all() and (df[df.epoch < 2]["attempt"] == 1).all()


_MIRRORED = textwrap.dedent("""
    import json, sys
    import numpy as np, tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras, trainstats
    from trainstats.keras import PerSampleStats, with_ids
    run = sys.argv[1]
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    rng = np.random.default_rng(0)
    x = rng.normal(size=(38, 4)).astype("float32"); y = rng.integers(0, 3, 38)
    ids = [f"m.txt:{i + 1}" for i in range(38)]
    with strategy.scope():
        keras.utils.set_random_seed(0)
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, activation="relu"), keras.layers.Dense(3)])
        model.compile(keras.optimizers.SGD(0.0), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    ds = with_ids(tf.data.Dataset.from_tensor_slices((x, y)), ids).shuffle(38, seed=1).batch(12)
    val = with_ids(tf.data.Dataset.from_tensor_slices((x[:10], y[:10])), ids[:10]).batch(4)
    model.fit(ds, epochs=2, verbose=0, validation_data=val, callbacks=[PerSampleStats(run)])
    df = trainstats.read(run, split="train"); dev = trainstats.read(run, split="dev")
    p = tf.nn.softmax(model.predict(x, verbose=0)).numpy()
    out = {"replicas": strategy.num_replicas_in_sync,
           "per_epoch": {int(k): int(v) for k, v in df.groupby("epoch").sample_id.nunique().items()},
           "rows": len(df), "dev_rows": len(dev)}
    for name, d in (("train", df), ("dev", dev)):
        i = np.array([int(s.split(":")[1]) - 1 for s in d.sample_id])
        out[name + "_maxdiff"] = float(np.abs(p[i, y[i]] - d.gold_prob.to_numpy()).max())
    with strategy.scope():
        model.compile(keras.optimizers.SGD(0.0), "sparse_categorical_crossentropy", steps_per_execution=2)
    try:
        model.fit(ds, epochs=1, verbose=0, callbacks=[PerSampleStats(run + "-2")])
        out["spe2"] = "no error"
    except NotImplementedError as e:
        out["spe2"] = str(e)
    print("RESULT " + json.dumps(out))
""")


def test_mirrored_strategy_two_replicas_rows_gathered(tmp_path):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    proc = subprocess.run([sys.executable, "-c", _MIRRORED, str(tmp_path / "run")], capture_output=True,
                          text=True, env=env, timeout=300)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, proc.stderr[-3000:]
    out = json.loads(lines[-1][len("RESULT "):])
    assert out["replicas"] == 2
    assert out["per_epoch"] == {"0": 38, "1": 38} or out["per_epoch"] == {0: 38, 1: 38}
    assert out["rows"] == 76 and out["dev_rows"] == 20
    assert out["train_maxdiff"] < 1e-5 and out["dev_maxdiff"] < 1e-5
    assert "steps_per_execution > 1 under MirroredStrategy" in out["spe2"]
