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
        rc = main(["demo", "--quick", "--quiet", "--monitor", "--kind", "label,inject-repair", "--out", str(out)])
    return rc, out, buf.getvalue()


NAMES = ["clean-seed0", "inject-repair-noise050-seed0", "label-noise050-seed0"]


def test_quick_demo_output_folder_is_complete(quick_demo):
    from trainstats.store import Run, read_metadata

    rc, out, stdout = quick_demo
    assert rc == 0, stdout
    assert sorted(p.name for p in (out / "runs").iterdir()) == NAMES
    for name in NAMES:
        run = out / "runs" / name
        cfg = read_metadata(run)["config"]
        kind = None if name.startswith("clean") else name.rsplit("-noise", 1)[0]
        assert cfg["noise_kind"] == kind and cfg["seed"] == 0
        assert cfg["noise_level"] == (0.0 if kind is None else 0.5)
        assert Run(run).splits() == ["dev", "train"]
        if kind is not None:
            assert (out / "data" / name / "noise_manifest.parquet").is_file()
    assert not (out / "checkpoints").exists() or not any((out / "checkpoints").iterdir())
    report = out / "report" / "index.html"
    assert report.is_file() and "<img" in report.read_text()
    for table in ("metrics.csv", "detection.csv", "scores.parquet"):
        assert (out / "report" / table).is_file()
    assert f"report: {report}" in stdout
    demo = json.loads((out / "demo.json").read_text())
    assert demo["levels"] == [0.0, 0.5] and demo["kinds"] == ["label", "inject-repair"]
    assert demo["timings_s"]["total"] > 0
    state = json.loads((out / "demo_state.json").read_text())
    assert sorted(state["runs"]) == NAMES and all(r["done"] for r in state["runs"].values())


def test_quick_demo_numbers_are_sane(quick_demo):
    rc, out, stdout = quick_demo
    from trainstats.analysis.paper import headline
    from trainstats.store import read

    summary = {r["run"]: r for r in json.loads((out / "summary.json").read_text())}
    assert sorted(summary) == NAMES
    for r in summary.values():
        for key in ("train_loc_acc", "dev_loc_acc", "train_joint_acc", "dev_joint_acc", "gini_loc"):
            assert 0.0 <= r[key] <= 1.0, (key, r)
    clean = summary["clean-seed0"]
    assert clean["best_score"] is None and clean["memorized"] is None  # nothing noisy at level 0
    assert clean["paper_dev_loc_acc"] == headline("label", "accuracy", "loc", "heldout", 0.0)
    for name in NAMES[1:]:
        r = summary[name]
        assert 0.0 <= r["best_auroc"] <= 1.0 and r["best_auroc_ci"][0] <= r["best_auroc"] <= r["best_auroc_ci"][1]
        assert r["paper_gini_loc"] == headline(r["noise_kind"], "gini_loss", "loc", "train", 0.5)
    assert "ours at the last epoch" in stdout and "inject-repair noise" in stdout
    # the noise flags in the rows are the manifest's: half of each class, per epoch
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
    # the summary's figures are the captured rows' at the last epoch
    last = read(out / "runs" / "clean-seed0", split="train")
    last = last[last["epoch"] == last["epoch"].max()]
    assert clean["train_joint_acc"] == pytest.approx(last["joint_correct"].mean())
    assert clean["train_loc_acc"] == pytest.approx(last["loc_correct"].mean())


def test_quick_demo_monitor_wrote_tensorboard_and_signals(quick_demo):
    rc, out, stdout = quick_demo
    pytest.importorskip("tensorboard")
    from trainstats.store import monitor_dir

    assert "tensorboard --logdir" in stdout
    for name, flags in (("clean-seed0", False), ("label-noise050-seed0", True)):
        folder = monitor_dir(out / "runs" / name)
        assert any(p.name.startswith("events.out.tfevents") for p in folder.iterdir())
        signals = pd.read_parquet(folder / "signals.parquet")
        assert sorted(signals["epoch"].unique()) == [0, 1] and {"loc", "rep", "joint"} <= set(signals["head"])
        assert ("auroc_csl" in set(signals["metric"])) == flags
        onset = json.loads((folder / "onset.json").read_text())
        assert onset["acting_rule"] == ("flags" if flags else "loss") and onset["epochs_monitored"] == 2
