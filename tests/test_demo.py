"""``trainstats demo --quick`` end to end: output folder complete, report written, numbers sane."""
from __future__ import annotations

import json

import pandas as pd
import pytest

pytest.importorskip("tensorflow")
pytest.importorskip("matplotlib")

from trainstats.cli import main  # noqa: E402

pytestmark = [pytest.mark.tf, pytest.mark.slow]


@pytest.fixture(scope="module")
def quick_demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "out"
    import io
    from contextlib import redirect_stdout

    buf = io.StringIO()
    with redirect_stdout(buf):
        rc = main(["demo", "--quick", "--quiet", "--monitor", "--out", str(out)])
    return rc, out, buf.getvalue()


def test_quick_demo_output_folder_is_complete(quick_demo):
    rc, out, stdout = quick_demo
    assert rc == 0, stdout
    names = ["label-noise000-seed0", "label-noise025-seed0", "label-noise050-seed0"]
    assert sorted(p.name for p in (out / "runs").iterdir()) == names
    for name in names:
        run = out / "runs" / name
        cfg = json.loads((run / "run.json").read_text())["config"]
        assert cfg["noise_kind"] == "label" and cfg["seed"] == 0
        assert cfg["noise_level"] == pytest.approx(int(name[11:14]) / 100)
        assert any((run / "rows" / "split=train").iterdir()) and any((run / "rows" / "split=dev").iterdir())
    for name in names[1:]:
        assert (out / "data" / name / "noise_manifest.parquet").is_file()
    report = out / "report" / "index.html"
    assert report.is_file() and "<img" in report.read_text()
    for table in ("metrics.csv", "detection.csv", "scores.parquet"):
        assert (out / "report" / table).is_file()
    assert f"report: {report}" in stdout
    demo = json.loads((out / "demo.json").read_text())
    assert demo["levels"] == [0.0, 0.25, 0.5] and demo["timings_s"]["total"] > 0


def test_quick_demo_numbers_are_sane(quick_demo):
    rc, out, stdout = quick_demo
    from trainstats.store import read

    summary = json.loads((out / "summary.json").read_text())
    assert [r["noise_level"] for r in summary] == [0.0, 0.25, 0.5]
    for r in summary:
        for key in ("train_acc", "train_clean_acc", "dev_acc"):
            assert 0.0 <= r[key] <= 1.0, (key, r)
    assert summary[0]["best_score"] is None  # nothing noisy at level 0: no detector
    for r in summary[1:]:
        assert 0.0 <= r["train_noisy_acc"] <= 1.0 and 0.0 <= r["best_auroc"] <= 1.0
    # the noise flags in the rows are the manifest's: a quarter / half of each class, per epoch
    manifest = pd.read_parquet(out / "data" / "label-noise050-seed0" / "noise_manifest.parquet")
    rows = read(out / "runs" / "label-noise050-seed0", split="train", epochs=[0])
    assert rows["sample_id"].nunique() == len(rows)
    noisy_ids = set(rows.loc[rows["noise"], "sample_id"])
    assert noisy_ids == set(manifest["sample_id"]) & set(rows["sample_id"])
    assert abs(rows["noise"].mean() - 0.5) < 0.05
    # has_bug as trained on is the noised label
    flipped = rows.set_index("sample_id").loc[manifest["sample_id"]]
    assert (flipped["has_bug"].to_numpy() == manifest.set_index("sample_id").loc[flipped.index, "new_has_bug"].to_numpy()).all()
    assert (rows["rep_loss"].isna().to_numpy(bool) == ~rows["has_bug"].to_numpy(bool)).all()
    for col in ("loc_gold_prob", "loc_pred_prob"):
        assert rows[col].between(0, 1).all()
    # the summary's train accuracy is the mean of the captured joint_correct at the last epoch
    last = read(out / "runs" / "label-noise000-seed0", split="train")
    last = last[last["epoch"] == last["epoch"].max()]
    assert summary[0]["train_acc"] == pytest.approx(last["joint_correct"].mean())


def test_quick_demo_monitor_wrote_tensorboard_and_signals(quick_demo):
    rc, out, stdout = quick_demo
    pytest.importorskip("tensorboard")
    from trainstats.store import monitor_dir

    assert "tensorboard --logdir" in stdout
    for name, flags in (("label-noise000-seed0", False), ("label-noise050-seed0", True)):
        folder = monitor_dir(out / "runs" / name)
        assert any(p.name.startswith("events.out.tfevents") for p in folder.iterdir())
        signals = pd.read_parquet(folder / "signals.parquet")
        assert sorted(signals["epoch"].unique()) == [0, 1] and {"loc", "rep", "joint"} <= set(signals["head"])
        assert ("auroc_csl" in set(signals["metric"])) == flags
        onset = json.loads((folder / "onset.json").read_text())
        assert onset["acting_rule"] == ("flags" if flags else "loss") and onset["epochs_monitored"] == 2
