"""Keras mistakes and ambiguities a new user meets: batched data given ids, class_weight with ids,
the head name of a single-output model, the unit of the margin."""
from __future__ import annotations

import re

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
keras = pytest.importorskip("keras")

import trainstats  # noqa: E402
from trainstats.cli import main  # noqa: E402
from trainstats.keras import PerSampleStats, with_ids  # noqa: E402
from trainstats.keras.patches import CLASS_WEIGHT_MESSAGE  # noqa: E402

pytestmark = [pytest.mark.tf, pytest.mark.slow,
              pytest.mark.filterwarnings("ignore:`shuffle=True` was passed:UserWarning"),
              pytest.mark.filterwarnings("ignore:Your input ran out of data:UserWarning")]

N = 32
X = np.random.default_rng(0).normal(size=(N, 4)).astype("float32")
Y = np.random.default_rng(1).integers(0, 3, N)
IDS = [f"s{i}" for i in range(N)]


def _model(kind="sequential", *, from_logits=False):
    keras.utils.set_random_seed(0)
    act = None if from_logits else "softmax"
    if kind == "sequential":
        return keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation=act, name="probs")])
    inp = keras.Input((4,))
    return keras.Model(inp, keras.layers.Dense(3, activation=act, name="probs")(inp))


def _compiled(kind="sequential", *, from_logits=False, loss="string"):
    model = _model(kind, from_logits=from_logits)
    if loss == "string" and not from_logits:
        model.compile("adam", "sparse_categorical_crossentropy")
    else:
        model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=from_logits))
    return model


def _slices():
    return tf.data.Dataset.from_tensor_slices((X, Y))


@pytest.mark.parametrize("make, step", [
    (lambda: _slices().batch(8), "batch()"),
    (lambda: _slices().batch(8, num_parallel_calls=2).prefetch(1), "batch()"),
    (lambda: _slices().padded_batch(8), "padded_batch()"),
    (lambda: _slices().shuffle(8).batch(8).map(lambda x, y: (x * 2, y)), "batch()"),
    (lambda: _slices().bucket_by_sequence_length(lambda x, y: tf.shape(x)[0], [3], [8, 8]),
     "group_by_window() / bucket_by_sequence_length()"),
])
def test_with_ids_refuses_a_batched_dataset(make, step):
    with pytest.raises(ValueError, match=rf"with_ids received a batched Dataset \(built with {re.escape(step)}\).*"
                                         r"Attach ids to the unbatched samples, then batch"):
        with_ids(make(), IDS[:4])


def test_an_unbatched_dataset_is_fine_even_after_batch_unbatch(tmp_path):
    ds = with_ids(_slices().batch(8).unbatch(), IDS).batch(8)
    model = _compiled()
    model.fit(ds, epochs=1, verbose=0, callbacks=[PerSampleStats(tmp_path / "run")])
    assert sorted(trainstats.read(tmp_path / "run", split="train")["sample_id"]) == sorted(IDS)


def test_one_id_per_batch_from_a_generator_is_refused_at_the_first_step(tmp_path):
    """A Dataset that hides its lineage (from_generator) yielding whole batches: the ids arrive one per
    batch; the first traced step says so instead of TensorFlow's reshape error."""
    def batches():
        for i in range(0, N, 8):
            yield X[i:i + 8], Y[i:i + 8]

    gen = tf.data.Dataset.from_generator(batches, output_signature=(
        tf.TensorSpec([None, 4], tf.float32), tf.TensorSpec([None], tf.int64)))
    ds = with_ids(gen, ["b0", "b1", "b2", "b3"])
    with pytest.raises(ValueError, match="each batch carries a single sample id, so the ids were attached after "
                                         "batching"):
        _compiled().fit(ds, epochs=1, verbose=0, callbacks=[PerSampleStats(tmp_path / "run")])


@pytest.mark.parametrize("route", ["arrays", "tensors", "dataset"])
def test_class_weight_with_ids_gives_the_same_clear_message_on_every_route(tmp_path, route):
    if route == "arrays":
        data = with_ids((X, Y), IDS)
    elif route == "tensors":
        data = with_ids((tf.constant(X), tf.constant(Y)), IDS)
    else:
        data = (with_ids(_slices(), IDS).batch(8),)
    with pytest.raises(ValueError) as exc:
        _compiled().fit(*data, class_weight={0: 1.0, 1: 2.0, 2: 1.0}, epochs=1, verbose=0,
                        callbacks=[PerSampleStats(tmp_path / "run")])
    assert str(exc.value) == CLASS_WEIGHT_MESSAGE
    # the suggested replacement works and records the weights
    sw = np.array([{0: 1.0, 1: 2.0, 2: 1.0}[int(c)] for c in Y], "float32")
    xs, ys, sws = with_ids((X, Y, sw), IDS)
    _compiled().fit(xs, ys, sample_weight=sws, epochs=1, verbose=0, callbacks=[PerSampleStats(tmp_path / "ok")])
    df = trainstats.read(tmp_path / "ok", split="train").set_index("sample_id").loc[IDS]
    np.testing.assert_array_equal(df["sample_weight"].to_numpy(), sw)


def test_class_weight_without_ids_still_works():
    _compiled().fit(X, Y, class_weight={0: 1.0, 1: 2.0, 2: 1.0}, epochs=1, verbose=0)


@pytest.mark.parametrize("kind", ["sequential", "functional"])
def test_single_output_head_is_named_after_its_output_layer(tmp_path, kind, capsys):
    run = tmp_path / "run"
    _compiled(kind).fit(*with_ids((X, Y), IDS), epochs=1, verbose=0, callbacks=[PerSampleStats(run)])
    meta = trainstats.read_metadata(run)
    assert list(meta["config"]["heads"]) == ["probs"]
    descriptions = {c["name"]: c["description"] for c in meta["value_columns"]}
    assert descriptions["loss"].startswith("loss of output 'probs'")
    assert not any("crossentropy" in d for d in descriptions.values())
    assert main(["inspect", str(run)]) == 0
    out = capsys.readouterr().out
    assert '"probs"' in out and "sparse_categorical_crossentropy" not in out


def test_heads_may_name_a_single_output_by_its_layer(tmp_path):
    run = tmp_path / "run"
    model = _compiled("sequential", from_logits=True)
    model.fit(*with_ids((X, Y), IDS), epochs=1, verbose=0,
              callbacks=[PerSampleStats(run, heads={"probs": "pointer"})])
    assert trainstats.read_metadata(run)["config"]["heads"] == {"probs": "pointer_stats(from_logits=True)"}


@pytest.mark.parametrize("from_logits, unit", [(True, "logit"), (False, "probability")])
def test_margin_unit_is_recorded_and_shown(tmp_path, from_logits, unit, capsys):
    run = tmp_path / "run"
    _compiled("functional", from_logits=from_logits, loss="object").fit(
        *with_ids((X, Y), IDS), epochs=1, verbose=0, callbacks=[PerSampleStats(run)])
    cols = {c["name"]: c for c in trainstats.read_metadata(run)["value_columns"]}
    assert cols["margin"]["unit"] == unit
    assert main(["inspect", str(run)]) == 0
    margin_line = next(line for line in capsys.readouterr().out.splitlines() if line.strip().startswith("margin"))
    assert margin_line.rstrip().endswith(unit)
    from trainstats.analysis import analyze_runs

    assert list(analyze_runs([run]).runs["margin_units"]) == [f"output={unit}"]


def test_custom_head_declares_its_margin_unit(tmp_path):
    from trainstats.keras import sparse_categorical_stats

    base = sparse_categorical_stats(from_logits=True)

    def log_prob_head(y_true, y_pred):
        return base(y_true, y_pred)

    log_prob_head.margin_unit = "log-probability"
    run = tmp_path / "run"
    _compiled("functional", from_logits=True, loss="object").fit(
        *with_ids((X, Y), IDS), epochs=1, verbose=0, callbacks=[PerSampleStats(run, heads={"output": log_prob_head})])
    cols = {c["name"]: c for c in trainstats.read_metadata(run)["value_columns"]}
    assert cols["margin"]["unit"] == "log-probability"
    undeclared = tmp_path / "undeclared"
    _compiled("functional", from_logits=True, loss="object").fit(
        *with_ids((X, Y), IDS), epochs=1, verbose=0,
        callbacks=[PerSampleStats(undeclared, heads={"output": lambda yt, yp: base(yt, yp)})])
    cols = {c["name"]: c for c in trainstats.read_metadata(undeclared)["value_columns"]}
    assert cols["margin"]["unit"] == "unspecified"
