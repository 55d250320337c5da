"""``trainstats analyze`` end to end on real run directories: tables, PNGs, index.html, edge cases."""
from __future__ import annotations

import pandas as pd
import pytest

from test_analysis_runs import write_simple  # tests/ is on sys.path (pytest's default import mode)
from trainstats.cli import main

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_analyze_writes_tables_plots_and_index(tmp_path, capsys):
    a = write_simple(tmp_path / "noise33-seed0", config={"noise_level": 0.33, "seed": 0})
    b = write_simple(tmp_path / "noise0-seed0", noise=None, seed=1)
    out = tmp_path / "report"
    assert main(["analyze", str(a), str(b), "--out", str(out), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "index.html" in printed and "no sample is flagged noisy" in printed
    scores = pd.read_parquet(out / "scores.parquet")
    assert len(scores) == 12 and {"run", "sample_id", "noise", "output_csl", "output_aum"} <= set(scores.columns)
    metrics = pd.read_csv(out / "metrics.csv")
    assert {"accuracy", "mean_loss", "gini_loss", "generalization_gap"} <= set(metrics["metric"])
    assert sorted(metrics["noise_level"].dropna().unique()) == [0.0, 0.33]
    det = pd.read_csv(out / "detection.csv")
    assert set(det["run"]) == {"noise33-seed0"} and det["auroc"].notna().all()
    html = (out / "index.html").read_text()
    pngs = sorted(p.name for p in out.glob("*.png"))
    # no noise kind in these runs: the study figures are those of kind "unknown"
    for name in ("overview.png", "memorization_unknown.png", "accuracy_per_epoch_unknown.png",
                 "gini_loss_per_epoch_unknown.png", "sorted_confidence_unknown.png", "generalization_gap_unknown.png",
                 "accuracy_vs_noise.png", "auroc_heatmap.png",
                 "learning_curves_noise33-seed0.png", "loss_hist_noise33-seed0.png", "data_map_noise33-seed0.png",
                 "roc_noise33-seed0.png", "scores_noise33-seed0_output.png"):
        assert name in pngs, pngs
        assert (out / name).read_bytes()[:8] == PNG_MAGIC
        assert f"src='{name}'" in html
    assert "roc_noise0-seed0.png" not in pngs  # nothing noisy there: no ROC, and the report says why
    assert "How to read this report" in html and "no sample is flagged noisy" in html
    assert html.index("At a glance") < html.index("Runs and tables")  # the first screen comes first
    assert "needs both noisy and clean samples" in html


def test_analyze_edge_run_single_epoch_no_dev_no_noise(tmp_path):
    run = write_simple(tmp_path / "tiny", epochs=1, noise=None, margin=False, dev=False)
    out = tmp_path / "out"
    assert main(["analyze", str(run), "--out", str(out), "--quiet"]) == 0
    messages = (out / "messages.txt").read_text()
    for text in ("only one train epoch", "no 'margin' column recorded", "no held-out", "no sample is flagged noisy",
                 "figure 'Generalization gap"):
        assert text in messages, messages
    assert (out / "detection.csv").read_text().strip() == ""  # no NaN rows: the messages say why
    assert "only one train epoch" in (out / "index.html").read_text()


def test_analyze_dev_split_and_tables_only(tmp_path):
    run = write_simple(tmp_path / "r")
    out = tmp_path / "out"
    assert main(["analyze", str(run), "--out", str(out), "--split", "dev", "--no-plots", "--quiet"]) == 0
    scores = pd.read_parquet(out / "scores.parquet")
    assert set(scores["sample_id"]) == {"dev.txt:1", "dev.txt:2"}
    assert not list(out.glob("*.png"))


def test_analyze_rejects_a_non_run_directory(tmp_path, capsys):
    assert main(["analyze", str(tmp_path), "--out", str(tmp_path / "o")]) == 2
    assert "not a run directory" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["analyze", str(tmp_path), "--out", str(tmp_path / "o"), "--split", "eval"])
