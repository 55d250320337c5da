"""The demo re-run into its folder: a killed run resumes from its last epoch, finished runs are skipped."""
from __future__ import annotations

import json

import pytest

pytest.importorskip("tensorflow")
pytest.importorskip("matplotlib")

pytestmark = [pytest.mark.tf, pytest.mark.slow,
              pytest.mark.filterwarnings("ignore:Your input ran out of data:UserWarning"),
              pytest.mark.filterwarnings("ignore:`shuffle=True` was passed:UserWarning")]


class Crash(RuntimeError):
    pass


def test_killed_run_resumes_and_finished_runs_are_skipped(tmp_path, capsys):
    import keras

    from trainstats.demo import QUICK, run_demo
    from trainstats.store import read

    settings = QUICK.replace(max_functions=150, epochs=3)
    out = tmp_path / "demo"

    def crash_after_epoch_1(run, run_dir):
        class CrashAt(keras.callbacks.Callback):
            def on_epoch_end(self, epoch, logs=None):
                if epoch == 1:
                    raise Crash(f"{run.name} killed after epoch {epoch}")
        return [CrashAt()]

    with pytest.raises(Crash):
        run_demo(out, levels=[0.0], kinds="label", settings=settings, callbacks=crash_after_epoch_1, progress=False)
    state = json.loads((out / "demo_state.json").read_text())
    assert state["runs"]["clean-seed0"]["done"] is False
    assert any((out / "checkpoints" / "clean-seed0").iterdir())  # BackupAndRestore kept the last epoch

    result = run_demo(out, levels=[0.0], kinds="label", settings=settings, progress=True)
    assert "clean-seed0: resuming from its last finished epoch" in capsys.readouterr().err
    rows = read(out / "runs" / "clean-seed0", split="train", columns=["sample_id", "epoch", "step"])
    assert sorted(rows["epoch"].unique()) == [0, 1, 2]
    per_epoch = rows.groupby("epoch")["sample_id"].agg(["count", "nunique"])
    assert (per_epoch["count"] == per_epoch["nunique"]).all()  # one row per sample and epoch: no duplicate
    assert per_epoch["count"].nunique() == 1
    state = json.loads((out / "demo_state.json").read_text())
    assert state["runs"]["clean-seed0"]["done"] is True and not (out / "checkpoints" / "clean-seed0").exists()
    assert result.summary[0]["run"] == "clean-seed0"

    # same settings again: nothing retrained; other settings: retrained from scratch
    run_demo(out, levels=[0.0], kinds="label", settings=settings, progress=True)
    assert "finished earlier, skipped" in capsys.readouterr().err
    run_demo(out, levels=[0.0], kinds="label", settings=settings.replace(epochs=1), progress=True)
    assert "training" in capsys.readouterr().err
    assert read(out / "runs" / "clean-seed0", split="train", columns=["epoch"])["epoch"].unique().tolist() == [0]


def test_bad_inputs_are_refused_before_training(tmp_path, capsys):
    from trainstats.cli import main
    from trainstats.demo import QUICK, run_demo

    empty = tmp_path / "tree"
    empty.mkdir()
    (empty / "consts.py").write_text("X = 1\nY = 2\n")  # Python, but no function to build examples from
    with pytest.raises(ValueError, match=r"tree: no usable function of at most 64 tokens in the train split"):
        run_demo(tmp_path / "a", source=empty, settings=QUICK, progress=False)
    (tmp_path / "shards" / "dev").mkdir(parents=True)
    with pytest.raises(ValueError, match=r"no GREAT shards of split 'train'"):
        run_demo(tmp_path / "b", data=tmp_path / "shards", settings=QUICK, progress=False)
    assert main(["demo", "--quick", "--data", str(tmp_path / "missing"), "--out", str(tmp_path / "c")]) == 2
    assert "not a directory (expected a folder with train/ and dev/ GREAT shards)" in capsys.readouterr().err
    assert main(["demo", "--quick", "--kind", "label,typo", "--out", str(tmp_path / "d")]) == 2
    assert "unknown noise kind(s) ['typo']" in capsys.readouterr().err
    assert not (tmp_path / "d" / "runs").exists()
