"""``MemorizationMonitor`` on real ``model.fit`` runs with planted label noise: onset, TensorBoard, restore.

The planted training (SGD with momentum on a linear 4-class problem plus 12 noise features, 40 % of
the labels flipped to another class) first learns the rule, so the noised samples' accuracy against
their noised labels falls, then memorizes them, so it climbs. Measured (this machine, ``fit(seed=s)``,
s = 0-3): the trough of that accuracy at epochs 2, 1, 2, 0; the flags rule's onset at 2, 1, 2, 0 and the
loss rule's at 3, 2, 2, 2. The test (seed 0) demands the onset within +-1 epoch of the trough, read
independently from the Parquet rows by ``analyze_run``.
"""
from __future__ import annotations

import os
import warnings

import numpy as np
import pandas as pd
import pytest

tf = pytest.importorskip("tensorflow")
pytest.importorskip("tensorboard")
pytestmark = [pytest.mark.tf, pytest.mark.slow]

import keras  # noqa: E402

from trainstats.analysis import analyze_run  # noqa: E402
from trainstats.keras import MemorizationMonitor, PerSampleStats, with_ids  # noqa: E402
from trainstats.store import monitor_dir  # noqa: E402

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
N, NOISE, SIGNAL, EXTRA, C = 1000, 0.4, 8, 12, 4


def planted(seed=0):
    rng = np.random.default_rng(seed)
    w = rng.normal(size=(SIGNAL, C))

    def make(m):
        s = rng.normal(size=(m, SIGNAL))
        return np.c_[s, rng.normal(size=(m, EXTRA))].astype("float32"), (s @ w).argmax(1).astype("int64")

    x, y = make(N)
    xv, yv = make(500)
    noisy = rng.random(N) < NOISE
    y_noisy = y.copy()
    y_noisy[noisy] = (y[noisy] + rng.integers(1, C, noisy.sum())) % C
    return x, y_noisy, noisy, xv, yv


def fit(run_dir, *, epochs=12, seed=0, with_flags=True, manifest=False, **monitor_kw):
    x, y, noisy, xv, yv = planted(seed)
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input((x.shape[1],)), keras.layers.Dense(512, activation="relu"),
                              keras.layers.Dense(512, activation="relu"), keras.layers.Dense(C)])
    model.compile(keras.optimizers.SGD(0.02, momentum=0.9),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    ids = [f"s{i}" for i in range(N)]
    flags = dict(noise=noisy, noise_kind="label") if with_flags and not manifest else {}
    ds = with_ids(tf.data.Dataset.from_tensor_slices((x, y)), ids, **flags).shuffle(N, seed=seed).batch(32)
    val = with_ids(tf.data.Dataset.from_tensor_slices((xv, yv)), [f"v{i}" for i in range(len(xv))]).batch(250)
    stats = PerSampleStats(run_dir, noise_manifest={ids[i]: "label" for i in np.flatnonzero(noisy)}
                           if manifest else None)
    monitor = MemorizationMonitor(stats, **{"on_error": "raise", **monitor_kw})
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*shuffle=True.*")
        history = model.fit(ds, validation_data=val, epochs=epochs, verbose=0, callbacks=[stats, monitor])
    return model, monitor, history, (xv, yv)


@pytest.fixture(scope="module")
def logged(tmp_path_factory):
    run = tmp_path_factory.mktemp("monitor") / "run"
    model, monitor, history, _ = fit(run, add_to_logs=True)
    return run, monitor, history


def _trough(run):
    """Epoch where the noised samples' training accuracy (vs their noised labels) is lowest, from Parquet."""
    m = analyze_run(run).metrics
    s = m[(m.split == "train") & (m.noise_group == "noisy") & (m.subset == "all") & (m.metric == "accuracy")]
    return int(s.set_index("epoch")["value"].idxmin())


def test_onset_is_found_where_the_noisy_accuracy_starts_rising(logged):
    run, monitor, _ = logged
    trough = _trough(run)
    assert 1 <= trough <= 4  # the planted run does learn first and memorize later
    for rule in ("flags", "loss"):
        onset = monitor.onsets[rule]
        assert onset is not None, rule
        assert abs(onset.epoch - trough) <= 1, (rule, onset, trough)
        assert onset.detected_at == onset.epoch + monitor.patience and onset.heldout_split == "dev"
    assert monitor.onset is monitor.onsets["flags"]  # auto: flags were given
    # held-out accuracy at the onset is within a point of the best epoch; the last epoch is far worse
    dev = monitor.signals.query("split == 'dev' and noise_group == 'all' and subset == 'all' and "
                                "metric == 'accuracy'").set_index("epoch")["value"]
    assert dev[monitor.onset.epoch] >= dev.max() - 0.05 and dev.iloc[-1] < dev.max() - 0.05


def test_signals_equal_analysis_of_the_parquet(logged):
    run, monitor, _ = logged
    key = ["split", "epoch", "head", "subset", "noise_group", "metric"]
    a = analyze_run(run).metrics.set_index(key)["value"]
    live = monitor.signals.set_index(key)["value"]
    np.testing.assert_allclose(live.loc[a.index].to_numpy(), a.to_numpy(), rtol=1e-6)
    saved = pd.read_parquet(monitor_dir(run) / "signals.parquet")
    assert len(saved) == len(monitor.signals) and saved["epoch"].max() == 11


def test_tensorboard_event_files_hold_the_scalars_and_histograms(logged):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run, monitor, _ = logged
    acc = EventAccumulator(str(monitor_dir(run)), size_guidance={"tensors": 0})
    acc.Reload()
    tags = set(acc.Tags()["tensors"])
    for tag in ("output/dev/accuracy", "output/train/accuracy/noisy", "output/train/accuracy/clean",
                "output/train/auroc_csl", "output/train/auroc_aum", "output/train/gini_loss",
                "output/train/newly_fitted", "output/train/noisy_fraction_est", "onset/flags", "onset/loss"):
        assert tag in tags, tag
        assert acc.SummaryMetadata(tag).plugin_data.plugin_name == "scalars"
    dev = monitor.signals.query("split == 'dev' and noise_group == 'all' and metric == 'accuracy'")
    events = acc.Tensors("output/dev/accuracy")
    assert [e.step for e in events] == list(range(12))
    np.testing.assert_allclose([float(tf.make_ndarray(e.tensor_proto)) for e in events], dev["value"], rtol=1e-6)
    assert [float(tf.make_ndarray(e.tensor_proto)) for e in acc.Tensors("onset/flags")] == \
        [float(monitor.onsets["flags"].epoch)]
    n_noisy = int(planted()[2].sum())
    for group, n in (("clean", N - n_noisy), ("noisy", n_noisy)):
        tag = f"output/train/loss/{group}"
        assert acc.SummaryMetadata(tag).plugin_data.plugin_name == "histograms"
        hist = acc.Tensors(tag)
        assert len(hist) == 12
        buckets = tf.make_ndarray(hist[-1].tensor_proto)
        assert buckets.shape == (30, 3) and buckets[:, 2].sum() == n and (buckets[:, 1] >= buckets[:, 0]).all()


def test_add_to_logs_reaches_history(logged):
    _, monitor, history = logged
    h = history.history
    assert len(h["monitor_noisy_accuracy"]) == 12 and "monitor_heldout_accuracy" in h
    onset = monitor.onset
    assert h["monitor_onset"] == [0.0] * onset.detected_at + [1.0] * (12 - onset.detected_at)
    dev3 = monitor.signals.query("split == 'dev' and epoch == 3 and noise_group == 'all' and subset == 'all' and "
                                 "metric == 'accuracy'")["value"].item()
    assert h["monitor_heldout_accuracy"][3] == pytest.approx(dev3) and "val_loss" in h


def test_restore_stops_with_the_onset_epochs_weights(tmp_path):
    # flags come from a noise manifest this time (the ids carry none)
    model, monitor, history, (xv, yv) = fit(tmp_path / "run", manifest=True, on_onset="restore")
    onset = monitor.onset
    assert onset is not None and monitor.restored_epoch == onset.epoch
    assert len(history.history["loss"]) == onset.detected_at + 1 == monitor.stopped_epoch + 1
    dev = monitor.signals.query("split == 'dev' and noise_group == 'all' and subset == 'all' and "
                                "metric == 'accuracy'").set_index("epoch")["value"]
    restored = float(np.mean(model.predict(xv, verbose=0).argmax(1) == yv))
    assert restored == pytest.approx(dev[onset.epoch], abs=1e-9)   # the weights validated at the onset epoch
    assert restored != pytest.approx(dev[onset.detected_at], abs=1e-9)
    import json

    doc = json.loads((monitor_dir(tmp_path / "run") / "onset.json").read_text())
    assert doc["restored_epoch"] == onset.epoch and doc["on_onset"] == "restore" and doc["monitor_seconds"] > 0


def test_stop_without_flags_uses_the_loss_rule(tmp_path):
    _, monitor, history, _ = fit(tmp_path / "run", with_flags=False, on_onset="stop")
    assert monitor.core.acting_rule == "loss" and monitor.onsets["flags"] is None
    assert monitor.onset is not None and len(history.history["loss"]) == monitor.onset.detected_at + 1
    assert "auroc_csl" not in set(monitor.signals["metric"]) and monitor.restored_epoch is None


def test_a_failing_monitor_warns_and_training_goes_on(tmp_path):
    import trainstats

    with pytest.warns(RuntimeWarning, match="MemorizationMonitor stopped monitoring.*Received: head='loc'"):
        _, monitor, history, _ = fit(tmp_path / "run", epochs=2, head="loc", on_error="warn")
    assert len(history.history["loss"]) == 2
    assert trainstats.read(tmp_path / "run", split="train")["epoch"].nunique() == 2  # every row still recorded


def test_invalid_arguments_are_named(tmp_path):
    stats = PerSampleStats(tmp_path / "run")
    with pytest.raises(TypeError, match="stats must be the PerSampleStats"):
        MemorizationMonitor("runs/x")
    with pytest.raises(ValueError, match="Received: rule='gini'"):
        MemorizationMonitor(stats, rule="gini")
    with pytest.raises(ValueError, match="Received: on_onset='halt'"):
        MemorizationMonitor(stats, on_onset="halt")
    with pytest.raises(ValueError, match="Received: patience=0"):
        MemorizationMonitor(stats, patience=0)
    with pytest.raises(ValueError, match="Received: on_error='ignore'"):
        MemorizationMonitor(stats, on_error="ignore")


def test_monitor_without_its_stats_in_the_fit_is_refused(tmp_path):
    x, y, *_ = planted()
    model = keras.Sequential([keras.Input((x.shape[1],)), keras.layers.Dense(C)])
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    stats = PerSampleStats(tmp_path / "run")
    with pytest.raises(ValueError, match="not a callback of this fit"):
        model.fit(x, y, epochs=1, verbose=0, callbacks=[MemorizationMonitor(stats)])
