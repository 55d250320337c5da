"""The report's figures and first screen on a planted two-kind study (real run directories): what is
drawn where, the paper beside it, the defects of issue 13 gone, and `analyze --paper`."""
from __future__ import annotations

import csv

import matplotlib.colors as mcolors
import numpy as np
import pandas as pd
import pytest

from trainstats.analysis import analyze_runs
from trainstats.analysis.paper import HEADLINE_EPOCH, PAPER_LABEL, headline
from trainstats.cli import main
from trainstats.report import style, write_report
from varmisuse_study import write_study  # tests/ is on sys.path (pytest's default import mode)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def paper_value(split, epoch, pct):
    return 0.3 + epoch / 100 - pct / 400 + (0.05 if split == "heldout" else 0.0)


def write_paper_csv(path):
    """A stand-in for the study's per-epoch CSV: GREAT label-noise loc accuracy, known values."""
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["model", "noise_kind", "metric", "head", "split", "epoch", "noise_percent", "value"])
        for split in ("train", "heldout"):
            for pct in (0, 25, 50, 75, 100):
                for epoch in range(1, 51):
                    w.writerow(["great", "label", "accuracy", "loc", split, epoch, pct, paper_value(split, epoch, pct)])
    return path


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    root = tmp_path_factory.mktemp("study")
    dirs = write_study(root / "runs", levels=(0.5,), epochs=8, n_train=400, n_dev=120)
    analysis = analyze_runs(dirs)
    figures = {}
    original = style.save

    def keep(fig, path):  # look at each figure as drawn, then save it as usual
        figures[path.name] = fig
        return original(fig, path)

    mp = pytest.MonkeyPatch()
    mp.setattr(style, "save", keep)
    out = root / "report"
    index = write_report(analysis, out, paper=write_paper_csv(root / "paper.csv"))
    mp.undo()
    return analysis, out, index.read_text(encoding="utf-8"), figures


def _lines(ax):
    return [ln for ln in ax.get_lines() if len(ln.get_xdata()) > 1]


def test_one_figure_per_kind_and_every_image_on_the_page(report):
    _, out, html, figures = report
    for kind in ("label", "inject-repair"):
        for stem in ("accuracy_per_epoch", "gini_loss_per_epoch", "sorted_confidence", "memorization",
                     "generalization_gap"):
            name = f"{stem}_{kind}.png"
            assert (out / name).read_bytes()[:8] == PNG_MAGIC and f"src='{name}'" in html, name
    for name in ("overview.png", "accuracy_vs_noise.png", "auroc_heatmap.png"):
        assert f"src='{name}'" in html
    assert "http://" not in html and "https://" not in html and "<script" not in html  # offline, nothing fetched
    assert html.index("At a glance") < html.index("Memorization: the noised") < html.index("id='per-run'")


def test_levels_share_colours_and_the_clean_run_is_in_every_kind(report):
    _, _, _, figures = report
    for kind in ("label", "inject-repair"):
        ax = figures[f"accuracy_per_epoch_{kind}.png"].axes[0]  # loc, this study
        colours = {mcolors.to_hex(ln.get_color()) for ln in _lines(ax)}
        want = {mcolors.to_hex(style.level_color(lv)) for lv in (0.0, 0.5)}
        assert want <= colours, (kind, colours)
        styles = {ln.get_linestyle() for ln in _lines(ax)}
        assert {"-", "--", ":"} <= styles  # train solid, held-out dashed, the baseline dotted


def test_paper_panel_shows_the_published_curve_and_its_epoch_50_marks(report):
    _, _, _, figures = report
    fig = figures["accuracy_per_epoch_label.png"]
    paper = fig.axes[1]
    assert PAPER_LABEL in paper.get_title() and "paper epoch" in paper.get_xlabel()
    curves = {(mcolors.to_hex(ln.get_color()), ln.get_linestyle()): ln for ln in _lines(paper)}
    for lv in (0.0, 0.5):
        ln = curves[(mcolors.to_hex(style.level_color(lv)), "-")]  # the paper's training curve at this level
        np.testing.assert_allclose(ln.get_ydata(), [paper_value("train", e, 100 * lv) for e in range(1, 51)])
    marks = [ln for ln in paper.get_lines() if len(ln.get_xdata()) == 1]
    assert {float(ln.get_xdata()[0]) for ln in marks} == {HEADLINE_EPOCH}
    values = {round(float(ln.get_ydata()[0]), 4) for ln in marks}
    assert headline("label", "accuracy", "loc", "heldout", 0.5) in values
    assert "rep" in fig.axes[2].get_title()  # rows: loc, rep (the study's heads)


def test_overview_marks_the_onset_beside_held_out_and_the_baseline(report):
    _, _, _, figures = report
    fig = figures["overview.png"]
    assert [ax.get_title().split(":")[0] for ax in fig.axes] == ["label noise", "inject-repair noise"]
    for ax in fig.axes:
        onsets = [ln for ln in ax.get_lines() if ln.get_marker() == "v"]
        assert [float(ln.get_xdata()[0]) for ln in onsets] == [3.0]  # the planted onset of the one noised run
        baseline = [ln for ln in ax.get_lines() if ln.get_linestyle() == ":" and list(ln.get_ydata()) == [0.5, 0.5]]
        # always "no bug" on the planted dev split (half bug-free): for loc (label), not for rep (inject-repair)
        assert bool(baseline) == ax.get_title().startswith("label noise: loc")


def test_first_screen_answers_per_run(report):
    analysis, _, html, _ = report
    glance = html[html.index("At a glance"):html.index("Memorization: the noised")]
    assert glance.count("Yes, from epoch 3") == 2  # the planted onset, every noised run
    assert "Clean reference run" in glance
    assert glance.count("95 % CI") == 2 and glance.count("AUROC") >= 2
    assert PAPER_LABEL in glance and "(paper 35.9 %)" in glance  # the paper's held-out loc at 50 % label noise
    det = analysis.detection[analysis.detection["noise_kind"] == "all"]
    best = det.loc[det.groupby("run")["auroc"].idxmax()]
    flagged = int((best["cutoff_fpr"] > 0.5).sum())
    assert glance.count("unusable as a filter") == flagged


def test_defects_of_issue_13_are_gone(report):
    analysis, _, html, figures = report
    # learning curves: no "dev clean" line under "dev all"; a baseline; the legend below the panels
    fig = figures["learning_curves_label-noise050-seed0.png"]
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert "held-out (dev)" in labels and not any("dev clean" in lab for lab in labels)
    assert "always 'no bug' (held-out)" in labels
    assert all(ax.get_legend() is None for ax in fig.axes)
    # score histograms: both axes labelled
    for ax in figures["scores_label-noise050-seed0_loc.png"].axes:
        if ax.get_visible():
            assert ax.get_xlabel() and ax.get_ylabel() == "fraction of samples"
    # loss histograms: nothing piled into the last bin beyond the range
    fig = figures["loss_hist_label-noise050-seed0.png"]
    for ax in fig.axes:
        for patch in ax.patches:
            xs = patch.get_path().vertices[:, 0]
            assert xs.max() <= ax.get_xlim()[1] + 1e-9
    # ROC: legends outside the axes
    fig = figures["roc_label-noise050-seed0.png"]
    fig.canvas.draw()
    for ax in fig.axes:
        leg = ax.get_legend()
        if leg is not None:
            assert leg.get_window_extent().x0 >= ax.get_window_extent().x1
    # generalization gap: clean training samples minus held-out, in points
    fig = figures["generalization_gap_label.png"]
    m = analysis.metrics
    acc = m[(m["metric"] == "accuracy") & (m["head"] == "loc") & (m["subset"] == "all")
            & (m["run"] == "label-noise050-seed0")]
    train = acc[(acc["split"] == "train") & (acc["noise_group"] == "clean")].set_index("epoch")["value"]
    dev = acc[(acc["split"] == "dev") & (acc["noise_group"] == "all")].set_index("epoch")["value"]
    gap = [ln for ln in _lines(fig.axes[0]) if mcolors.to_hex(ln.get_color()) == mcolors.to_hex(style.level_color(0.5))]
    np.testing.assert_allclose(gap[0].get_ydata(), 100 * (train - dev).to_numpy())
    assert "on clean samples" in fig._suptitle.get_text()
    # cut-offs with their false-positive rate, flagged when they mark most clean samples
    assert "cut-off: recall / FPR" in html


def test_report_stays_small(report):
    _, out, _, _ = report
    size = sum(p.stat().st_size for p in out.iterdir())
    assert size < 5e6, size


def test_analyze_paper_flag(tmp_path, capsys):
    runs = write_study(tmp_path / "runs", kinds=("label",), levels=(0.5,), epochs=3, n_train=80, n_dev=20)
    bad = tmp_path / "bad.csv"
    bad.write_text("model,epoch\ngreat,1\n")
    assert main(["analyze", *map(str, runs), "--out", str(tmp_path / "o"), "--paper", str(bad), "--quiet"]) == 2
    assert "bad.csv:1: expected the header" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()  # checked before anything is written
    good = write_paper_csv(tmp_path / "paper.csv")
    assert main(["analyze", *map(str, runs), "--out", str(tmp_path / "o"), "--paper", str(good), "--quiet"]) == 0
    html = (tmp_path / "o" / "index.html").read_text()
    assert "per-epoch curves from the CSV given with --paper" in html
    assert len(pd.read_csv(tmp_path / "o" / "runs.csv")) == 2


def test_demo_checks_its_paper_csv_before_any_work(tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text("model,noise_kind,metric,head,split,epoch,noise_percent,value\ngreat,label,accuracy,loc,train,x,0,1\n")
    out = tmp_path / "demo"
    assert main(["demo", "--quick", "--quiet", "--out", str(out), "--paper", str(bad)]) == 2
    assert "bad.csv:2: epoch and noise_percent must be integers" in capsys.readouterr().err
    assert not out.exists()
