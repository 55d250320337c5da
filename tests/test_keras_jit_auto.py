"""``jit_stats="auto"`` only fuses the stats ops when XLA would not recompile at every batch shape."""
from __future__ import annotations

import pytest

keras = pytest.importorskip("keras")

from trainstats.keras.callback import _static_feature_shapes  # noqa: E402


def test_fixed_feature_shapes_allow_xla_stats():
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(2)])
    assert _static_feature_shapes(model)


def test_variable_length_inputs_and_unbuilt_models_do_not():
    tokens = keras.Input((None,), dtype="int32")
    model = keras.Model(tokens, keras.layers.Embedding(10, 4)(tokens))
    assert not _static_feature_shapes(model)

    class Subclassed(keras.Model):
        def call(self, x):
            return x

    assert not _static_feature_shapes(Subclassed())
