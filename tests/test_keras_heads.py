"""Built-in and custom head stats on real tiny fits: one-hot/probabilities, binary, pointer, multi-output
with a custom head and model-level extra stats, sample weights, noise flags."""
from __future__ import annotations

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
keras = pytest.importorskip("keras")

import trainstats  # noqa: E402
from trainstats.keras import PerSampleStats, with_ids  # noqa: E402
from trainstats.store import ValueColumn  # noqa: E402

pytestmark = [pytest.mark.tf, pytest.mark.slow]

N, D = 24, 5
IDS = [f"h.txt:{i + 1}" for i in range(N)]


def _x(seed=0):
    return np.random.default_rng(seed).normal(size=(N, D)).astype("float32")


def _fit(model, data, run, epochs=1, batch_size=8, **cb_kw):
    xs, ys = data[:2]
    sw = data[2] if len(data) == 3 else None
    model.fit(xs, ys, sample_weight=sw, batch_size=batch_size, epochs=epochs, shuffle=False, verbose=0,
              callbacks=[PerSampleStats(run, **cb_kw)])
    df = trainstats.read(run, split="train")
    order = np.array([IDS.index(s) for s in df["sample_id"]])
    return df, order


def test_one_hot_softmax_probabilities_margin_on_probabilities(tmp_path):
    x = _x()
    y = np.eye(4, dtype="float32")[np.random.default_rng(1).integers(0, 4, N)]
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((D,)), keras.layers.Dense(4, activation="softmax")])
    model.compile(keras.optimizers.SGD(0.0), "categorical_crossentropy")
    df, i = _fit(model, with_ids((x, y), IDS), tmp_path / "run")
    p = model.predict(x, verbose=0)[i]
    gold = y[i].argmax(1)
    np.testing.assert_allclose(df["gold_prob"], p[np.arange(N), gold], rtol=1e-5)
    other = np.where(y[i] > 0, -np.inf, p).max(1)
    np.testing.assert_allclose(df["margin"], p[np.arange(N), gold] - other, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(df["loss"], -np.log(p[np.arange(N), gold]), rtol=1e-4)
    meta = trainstats.read_metadata(tmp_path / "run")
    cols = {c["name"]: c for c in meta["run"]["value_columns"]} if "run" in meta else {
        c["name"]: c for c in meta["value_columns"]}
    assert cols["gold_prob"]["head"] == "output" and cols["pred"]["dtype"] == "int64"


@pytest.mark.parametrize("from_logits", [False, True])
def test_binary_sigmoid(tmp_path, from_logits):
    x = _x()
    y = (np.random.default_rng(2).random(N) > 0.5).astype("float32")
    keras.utils.set_random_seed(0)
    act = None if from_logits else "sigmoid"
    model = keras.Sequential([keras.Input((D,)), keras.layers.Dense(1, activation=act)])
    model.compile(keras.optimizers.SGD(0.0), keras.losses.BinaryCrossentropy(from_logits=from_logits))
    df, i = _fit(model, with_ids((x, y), IDS), tmp_path / "run")
    out = model.predict(x, verbose=0)[i, 0]
    p = 1 / (1 + np.exp(-out)) if from_logits else out
    g = np.where(y[i] == 1, p, 1 - p)
    np.testing.assert_allclose(df["gold_prob"], g, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(df["pred"], (p > 0.5).astype(int))
    np.testing.assert_array_equal(df["correct"].to_numpy(bool), (p > 0.5) == (y[i] == 1))
    expected_margin = np.where(y[i] == 1, out, -out) if from_logits else 2 * g - 1
    np.testing.assert_allclose(df["margin"], expected_margin, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(df["loss"], -np.log(g), rtol=1e-3, atol=1e-5)


def test_pointer_multi_target_with_invalid_rows(tmp_path):
    T = 6
    rng = np.random.default_rng(3)
    x = rng.normal(size=(N, T, D)).astype("float32")
    targets = (rng.random((N, T)) < 0.3).astype("float32")
    targets[:4] = 0.0  # four samples have no target: their row must be null, never a number
    targets[4:][targets[4:].sum(1) == 0, 0] = 1.0
    y = targets / np.maximum(targets.sum(1, keepdims=True), 1)
    keras.utils.set_random_seed(0)
    inp = keras.Input((T, D))
    logits = keras.layers.Reshape((T,))(keras.layers.Dense(1)(inp))
    model = keras.Model(inp, logits)
    model.compile(keras.optimizers.SGD(0.0), keras.losses.CategoricalCrossentropy(from_logits=True))
    df, i = _fit(model, with_ids((x, y), IDS), tmp_path / "run", heads={"output": "pointer"})
    z = model.predict(x, verbose=0)[i]
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    gold = targets[i] > 0
    has = gold.any(1)
    assert df["gold_prob"].isna().to_numpy().tolist() == (~has).tolist()
    assert df["correct"].isna().to_numpy().tolist() == (~has).tolist()
    np.testing.assert_allclose(df["gold_prob"][has], (p * gold).sum(1)[has], rtol=1e-5)
    np.testing.assert_array_equal(df["correct"][has].astype(bool), gold[np.arange(N), z.argmax(1)][has])
    m = np.where(gold, z, -np.inf).max(1) - np.where(gold, -np.inf, z).max(1)
    np.testing.assert_allclose(df["margin"][has], m[has], rtol=1e-4, atol=1e-5)


def test_multi_output_custom_head_extra_stats_noise(tmp_path):
    x = _x()
    rng = np.random.default_rng(4)
    y_cls = rng.integers(0, 3, N).astype("int64")
    y_bin = (y_cls > 0).astype("float32")  # "has_bug"
    keras.utils.set_random_seed(0)
    inp = keras.Input((D,))
    h = keras.layers.Dense(8, activation="relu")(inp)
    model = keras.Model(inp, {"kind": keras.layers.Dense(3, name="kind")(h),
                              "flag": keras.layers.Dense(1, activation="sigmoid", name="flag")(h)})
    model.compile(keras.optimizers.SGD(0.0),
                  loss={"kind": keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                        "flag": "binary_crossentropy"},
                  loss_weights={"kind": 1.0, "flag": 0.5})

    def kind_stats(y_true, y_pred):  # the protocol: [batch] tensors, "valid" -> nulls elsewhere
        base = trainstats.keras.sparse_categorical_stats(from_logits=True)(y_true, y_pred)
        return dict(base, valid=tf.reshape(y_true, [-1]) > 0)

    def extra(x_batch, y_true, y_pred, stats):
        joint = tf.logical_and(stats["kind"]["correct"], stats["flag"]["correct"])
        return {"joint_correct": (joint, stats["kind"]["valid"]),
                "has_bug": tf.reshape(y_true["flag"], [-1]) > 0.5}

    extra_cols = [ValueColumn("joint_correct", "bool", head="joint", stat="correct"),
                  ValueColumn("has_bug", "bool", head=None, stat="has_bug")]
    noise = np.zeros(N, bool)
    noise[[1, 5]] = True
    data = with_ids((x, {"kind": y_cls, "flag": y_bin}), IDS, noise=noise, noise_kind="label")
    df, i = _fit(model, data, tmp_path / "run", heads={"kind": kind_stats}, extra_stats=extra,
                 extra_columns=extra_cols)
    for head in ("kind", "flag"):
        for stat in ("loss", "gold_prob", "pred", "pred_prob", "correct", "margin"):
            assert f"{head}_{stat}" in df.columns
    pred = model.predict(x, verbose=0)
    pk = tf.nn.softmax(pred["kind"]).numpy()[i]
    bug = y_cls[i] > 0
    assert df["kind_gold_prob"].isna().to_numpy().tolist() == (~bug).tolist()
    np.testing.assert_allclose(df["kind_gold_prob"][bug], pk[np.arange(N), y_cls[i]][bug], rtol=1e-5)
    pf = pred["flag"][i, 0]
    np.testing.assert_allclose(df["flag_gold_prob"], np.where(y_bin[i] == 1, pf, 1 - pf), rtol=1e-5)
    joint = (pk.argmax(1) == y_cls[i]) & ((pf > 0.5) == (y_bin[i] == 1))
    assert df["joint_correct"].isna().to_numpy().tolist() == (~bug).tolist()
    np.testing.assert_array_equal(df["joint_correct"][bug].astype(bool), joint[bug])
    np.testing.assert_array_equal(df["has_bug"].astype(bool), bug)
    assert sorted(df.loc[df["noise"], "sample_id"]) == [IDS[1], IDS[5]]
    assert set(df.loc[df["noise"], "noise_kind"]) == {"label"}
    assert df.loc[~df["noise"], "noise_kind"].isna().all()


def test_sample_weights_recorded_and_reproduce_keras_loss(tmp_path):
    x = _x()
    y = np.random.default_rng(5).integers(0, 3, N)
    sw = np.random.default_rng(6).uniform(0, 2, N).astype("float32")
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((D,)), keras.layers.Dense(3)])
    model.compile(keras.optimizers.SGD(0.0), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    xs, ys, sws = with_ids((x, y, sw), IDS)
    model.fit(xs, ys, sample_weight=sws, batch_size=N, epochs=1, shuffle=False, verbose=0,
              callbacks=[PerSampleStats(tmp_path / "run")])
    keras_loss = model.history.history["loss"][0]
    df = trainstats.read(tmp_path / "run", split="train")
    i = np.array([IDS.index(s) for s in df["sample_id"]])
    np.testing.assert_allclose(df["sample_weight"], sw[i], rtol=1e-6)
    z = model.predict(x, verbose=0)[i]
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    np.testing.assert_allclose(df["loss"], -np.log(p[np.arange(N), y[i]]), rtol=1e-4)  # unweighted
    assert float((df["sample_weight"] * df["loss"]).sum() / N) == pytest.approx(keras_loss, rel=1e-5)


def test_noise_from_manifest(tmp_path):
    x = _x()
    y = np.random.default_rng(7).integers(0, 3, N)
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((D,)), keras.layers.Dense(3)])
    model.compile(keras.optimizers.SGD(0.0), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    df, _ = _fit(model, with_ids((x, y), IDS), tmp_path / "run", noise_manifest={IDS[2]: "swap", IDS[3]: "swap"})
    assert sorted(df.loc[df["noise"], "sample_id"]) == [IDS[2], IDS[3]]
    assert set(df.loc[df["noise"], "noise_kind"]) == {"swap"}


def test_unknown_loss_records_loss_only_and_bad_heads_are_named(tmp_path):
    x = _x()
    y = np.random.default_rng(8).normal(size=(N, 1)).astype("float32")
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((D,)), keras.layers.Dense(1)])
    model.compile(keras.optimizers.SGD(0.0), "mse")
    df, i = _fit(model, with_ids((x, y), IDS), tmp_path / "run")
    value_cols = [c for c in df.columns if c in ("loss", "gold_prob", "pred", "margin")]
    assert value_cols == ["loss"]
    np.testing.assert_allclose(df["loss"], (model.predict(x, verbose=0)[i, 0] - y[i, 0]) ** 2, rtol=1e-4)
    with pytest.raises(ValueError, match="does not have"):
        _fit(model, with_ids((x, y), IDS), tmp_path / "run2", heads={"nope": "binary"})
