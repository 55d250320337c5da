"""PerSampleStats on real tiny fits: rows match model.predict by id, every step is recorded (shuffle,
uneven last batch, jit_compile, steps_per_execution), dev rows, and other callbacks' logs unchanged."""
from __future__ import annotations

import csv
import os

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
keras = pytest.importorskip("keras")

import trainstats  # noqa: E402
from trainstats.keras import PerSampleStats, with_ids  # noqa: E402

pytestmark = [pytest.mark.tf, pytest.mark.slow]

N, D, C, BATCH = 50, 4, 3, 16  # 50 / 16 -> 4 batches per epoch, the last one of 2 samples


def _data(seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(N, D)).astype("float32")
    y = rng.integers(0, C, N).astype("int64")
    return x, y, [f"toy.txt:{i + 1}" for i in range(N)]


def _model(lr=0.0, *, seed=1, **compile_kw):
    keras.utils.set_random_seed(seed)
    m = keras.Sequential([keras.Input((D,)), keras.layers.Dense(8, activation="relu"), keras.layers.Dense(C)])
    m.compile(keras.optimizers.SGD(lr), keras.losses.SparseCategoricalCrossentropy(from_logits=True), **compile_kw)
    return m


def _index(df):
    return np.array([int(s.split(":")[1]) - 1 for s in df["sample_id"]])


def _check_against_predict(df, model, x, y):
    logits = model.predict(x, verbose=0)
    p = tf.nn.softmax(logits).numpy()
    i = _index(df)
    np.testing.assert_allclose(df["gold_prob"].to_numpy(), p[i, y[i]], rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(df["pred"].to_numpy(), logits[i].argmax(1))
    np.testing.assert_allclose(df["pred_prob"].to_numpy(), p[i].max(1), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(df["loss"].to_numpy(), -np.log(p[i, y[i]]), rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(df["correct"].to_numpy(dtype=bool), logits[i].argmax(1) == y[i])
    other = np.where(np.eye(C, dtype=bool)[y[i]], -np.inf, logits[i]).max(1)
    np.testing.assert_allclose(df["margin"].to_numpy(), logits[i, y[i]] - other, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("compile_kw", [{}, {"jit_compile": True, "steps_per_execution": 3}],
                         ids=["default", "jit+steps_per_execution=3"])
def test_rows_match_predict_by_id_shuffled_uneven(tmp_path, compile_kw):
    x, y, ids = _data()
    model = _model(**compile_kw)
    ds = with_ids(tf.data.Dataset.from_tensor_slices((x, y)), ids).shuffle(N, seed=3).batch(BATCH)
    val = with_ids((x[:20], y[:20]), [f"val.txt:{i + 1}" for i in range(20)])
    model.fit(ds, epochs=2, verbose=0, validation_data=val, callbacks=[PerSampleStats(tmp_path / "run")])

    df = trainstats.read(tmp_path / "run", split="train")
    assert len(df) == 2 * N
    for epoch, g in df.groupby("epoch"):
        assert sorted(g["sample_id"]) == sorted(ids), f"epoch {epoch}: each sample exactly once"
        sizes = g.groupby("batch").size().sort_index().tolist()
        assert sizes == [16, 16, 16, 2], "every step recorded, uneven last batch included"
        # step = optimizer updates before the batch (lr=0 still counts iterations)
        assert (g["step"] == epoch * 4 + g["batch"]).all()
    # shuffled: the batch composition differs between epochs
    first = df[(df.batch == 0)].groupby("epoch")["sample_id"].apply(frozenset)
    assert first[0] != first[1]
    _check_against_predict(df, model, x, y)
    assert not df["noise"].any()

    dev = trainstats.read(tmp_path / "run", split="dev")
    assert sorted(dev.groupby("epoch").size().to_dict().items()) == [(0, 20), (1, 20)]
    assert (dev["step"] == (dev["epoch"] + 1) * 4).all()
    _check_against_predict(dev.assign(sample_id=dev["sample_id"].str.replace("val", "toy")), model, x, y)


def test_arrays_with_keras_shuffle_and_weights_change(tmp_path):
    x, y, ids = _data()
    model = _model(lr=0.5)
    xs, ys = with_ids((x, y), ids)
    model.fit(xs, ys, batch_size=BATCH, epochs=2, shuffle=True, verbose=0,
              callbacks=[PerSampleStats(tmp_path / "run")])
    df = trainstats.read(tmp_path / "run", split="train")
    assert df.groupby("epoch")["sample_id"].nunique().to_dict() == {0: N, 1: N}
    # rows come from the forward pass *before* each update: the first batch of epoch 0 saw the initial
    # weights, so its probabilities equal an untrained copy's predictions
    fresh = _model(lr=0.0)
    b0 = df[(df.epoch == 0) & (df.batch == 0)]
    p0 = tf.nn.softmax(fresh.predict(x, verbose=0)).numpy()
    i = _index(b0)
    np.testing.assert_allclose(b0["gold_prob"].to_numpy(), p0[i, y[i]], rtol=1e-5, atol=1e-6)
    b1 = df[(df.epoch == 0) & (df.batch == 1)]
    i1 = _index(b1)
    assert np.abs(b1["gold_prob"].to_numpy() - p0[i1, y[i1]]).max() > 1e-4, "batch 1 saw updated weights"


def _fit_logs(tmp_path, name, with_stats, spe):
    x, y, ids = _data()
    model = _model(lr=0.1, steps_per_execution=spe)
    csv_path = tmp_path / f"{name}.csv"
    cbs = [keras.callbacks.CSVLogger(str(csv_path))]
    if with_stats:
        xs, ys = with_ids((x, y), ids)
        val = with_ids((x[:10], y[:10]), ids[:10])
        cbs.insert(0, PerSampleStats(tmp_path / name))
    else:
        xs, ys, val = x, y, (x[:10], y[:10])
    seen = []

    class Spy(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            seen.append((batch, sorted(logs)))

    hist = model.fit(xs, ys, batch_size=BATCH, epochs=2, shuffle=False, verbose=0, validation_data=val,
                     callbacks=cbs + [Spy()])
    with open(csv_path) as f:
        rows = list(csv.reader(f))
    return hist.history, rows, seen


@pytest.mark.parametrize("spe", [1, 2])
def test_other_callbacks_see_identical_logs(tmp_path, spe):
    h0, csv0, seen0 = _fit_logs(tmp_path, "plain", False, spe)
    h1, csv1, seen1 = _fit_logs(tmp_path, "stats", True, spe)
    assert h0 == h1
    assert csv0 == csv1
    assert seen0 == seen1


def test_training_data_without_ids_is_refused(tmp_path):
    x, y, _ = _data()
    model = _model()
    with pytest.raises(ValueError, match="carries no sample ids.*with_ids"):
        model.fit(x, y, epochs=1, verbose=0, callbacks=[PerSampleStats(tmp_path / "run")])


def test_dev_without_ids_warns_and_records_train_only(tmp_path):
    x, y, ids = _data()
    model = _model()
    xs, ys = with_ids((x, y), ids)
    with pytest.warns(UserWarning, match="validation_data carries no sample ids"):
        model.fit(xs, ys, epochs=1, batch_size=BATCH, verbose=0, validation_data=(x, y),
                  callbacks=[PerSampleStats(tmp_path / "run")])
    assert len(trainstats.read(tmp_path / "run", split="train")) == N
    assert len(trainstats.read(tmp_path / "run", split="dev")) == 0


def test_callback_reused_across_fits_and_model_restored(tmp_path):
    x, y, ids = _data()
    model = _model(lr=0.1)
    xs, ys = with_ids((x, y), ids)
    cb = PerSampleStats(tmp_path / "run")
    model.fit(xs, ys, epochs=1, batch_size=BATCH, verbose=0, callbacks=[cb])
    model.fit(xs, ys, epochs=2, initial_epoch=1, batch_size=BATCH, verbose=0, callbacks=[cb])
    df = trainstats.read(tmp_path / "run", split="train")
    assert df.groupby("epoch").size().to_dict() == {0: N, 1: N}
    assert df["sample_id"].notna().all()  # the second fit's writer stores the ids too
    assert df["step"].max() == 7
    assert len(trainstats.read_metadata(tmp_path / "run")["attempts"]) == 1
    # after fit the model trains normally again without the callback
    model.fit(x, y, epochs=1, batch_size=BATCH, verbose=0)


def test_invalid_arguments_are_named():
    with pytest.raises(ValueError, match="resume"):
        PerSampleStats("r", resume="sometimes")
    with pytest.raises(TypeError, match="heads"):
        PerSampleStats("r", heads=["a"])
    with pytest.raises(ValueError, match="2 ids were given"):
        with_ids((np.zeros((3, 1)), np.zeros(3)), ["a", "b"])
    with pytest.raises(ValueError, match="unbatched|samples but"):
        with_ids(tf.data.Dataset.from_tensor_slices((np.zeros((4, 1)), np.zeros(4))).batch(2), ["a", "b", "c", "d"])
