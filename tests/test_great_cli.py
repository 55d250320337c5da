"""``trainstats great train`` argument handling and the tf-keras guard (no GREAT checkout needed)."""
from __future__ import annotations

import os

import pytest

from trainstats.cli import main


def test_help_lists_greats_arguments_and_ours(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["great", "train", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for flag in ("--checkout", "--stats", "--noise-manifest", "--seed", "--models", "--log", "--eval_only",
                 "data_path", "vocabulary_path", "config"):
        assert flag in out


def test_missing_action_is_a_usage_error(capsys):
    assert main(["great"]) == 2
    assert "trainstats great train --checkout" in capsys.readouterr().err


def test_not_a_checkout_is_refused_before_tensorflow_is_touched(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("TF_USE_LEGACY_KERAS", raising=False)
    (tmp_path / "running").mkdir()
    (tmp_path / "running" / "run_model.py").write_text("")
    rc = main(["great", "train", "--checkout", str(tmp_path), "data", "vocab.txt", "config.yml",
               "--stats", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert rc == 2
    assert "is not a GREAT checkout" in err and "running/meta_model.py" in err and "models" in err
    assert "TF_USE_LEGACY_KERAS" not in os.environ  # this process keeps its Keras
    assert not (tmp_path / "run").exists()


def test_legacy_keras_is_refused_once_keras3_is_bound(monkeypatch):
    if os.environ.get("TF_USE_LEGACY_KERAS") == "1":
        pytest.skip("this process was started with TF_USE_LEGACY_KERAS=1")
    tf = pytest.importorskip("tensorflow")
    pytest.importorskip("tf_keras")
    assert tf.keras.layers.Layer.__module__.startswith("keras.")  # binds Keras 3, as the rest of the suite does
    tf.optimizers.Adam
    from trainstats.great.checkout import use_legacy_keras

    monkeypatch.setenv("TF_USE_LEGACY_KERAS", "0")  # restored after the test
    with pytest.raises(RuntimeError, match="already bound to Keras 3"):
        use_legacy_keras()
    assert tf.keras.layers.Layer.__module__.startswith("keras.")
