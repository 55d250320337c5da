"""Write an analysis to a folder: tables (Parquet/CSV), PNG figures and ``index.html``."""
from __future__ import annotations

import html
import logging
from pathlib import Path

import pandas as pd

from trainstats.analysis import DIRECTIONS, Analysis

__all__ = ["write_tables", "write_report"]

log = logging.getLogger(__name__)

_GUIDE = """
<h2>How to read this report</h2>
<ul>
<li><b>Noisy</b> samples are those the run's noise flags mark (the noise manifest); <b>clean</b> are the rest.
A model that <i>memorizes</i> fits noisy samples late and only by rote: their training loss stays high for a
long time, then drops, while held-out accuracy does not improve (or falls).</li>
<li><b>Learning curves</b>: train accuracy on clean vs noisy samples (solid) and held-out accuracy (dashed).
Noisy train accuracy rising towards 1 is memorization; the gap to held-out accuracy is the
<b>generalization gap</b>.</li>
<li><b>Loss histograms</b>: the per-sample training loss of selected epochs. Well-separated clean/noisy
modes mean a loss-based score can find the noisy samples; the modes merge once noise is memorized.</li>
<li><b>Gini of the training loss</b> (0 = every sample has the same loss, near 1 = a few samples carry it all):
it rises while the network fits the easy samples and leaves the hard/noisy ones, and falls when it memorizes them.</li>
<li><b>Data map</b>: mean (confidence) and spread (variability) of the probability of the gold label over
training. Noisy samples gather at low confidence (bottom left: hard to learn).</li>
<li><b>Detection</b> (table, ROC curves, heat map): each score ranks samples from most to least suspicious
(direction fixed in <code>trainstats.analysis.DIRECTIONS</code>). AUROC 0.5 is chance, 1 perfect; AUPRC
should be compared with the base rate (fraction noisy); P@k is the precision among the k most suspicious,
k = number of noisy samples. The calibrated cut-off is learned from a random half of the noisy samples
(AUM threshold samples) and evaluated on the other half plus all clean samples.</li>
</ul>
"""


def write_tables(analysis: Analysis, out: str | Path) -> dict[str, Path]:
    """Write ``scores.parquet``, ``metrics.csv``, ``detection.csv``, ``runs.csv``, ``messages.txt``
    (no matplotlib needed)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = {}
    paths["scores"] = out / "scores.parquet"
    analysis.scores.to_parquet(paths["scores"], index=False)
    for name in ("metrics", "detection", "runs"):
        paths[name] = out / f"{name}.csv"
        getattr(analysis, name).to_csv(paths[name], index=False)
    paths["messages"] = out / "messages.txt"
    paths["messages"].write_text("".join(f"warning: {w}\n" for w in analysis.warnings)
                                 + "".join(m + "\n" for m in analysis.messages), encoding="utf-8")
    return paths


def _plots():
    try:
        import matplotlib  # noqa: F401
    except ImportError as exc:
        raise ImportError("trainstats' plots and HTML report need matplotlib: run `pip install "
                          "'trainstats[report]'` (or `trainstats analyze --no-plots` for the tables only)") from exc
    from trainstats.report import plots_run, plots_study

    return plots_run, plots_study


def _figures(a: Analysis, out: Path, notes: list[str]) -> list[tuple[str, Path]]:
    pr, ps = _plots()
    figs: list[tuple[str, Path | None]] = []

    def add(caption: str, fn, *args, why: str, **kw):
        try:
            path = fn(*args, **kw)
        except Exception as exc:  # a figure must never sink the report; say what happened
            log.warning("figure %r failed: %s", caption, exc, exc_info=True)
            notes.append(f"figure '{caption}' failed: {type(exc).__name__}: {exc}")
            return
        if path is None:
            notes.append(f"figure '{caption}' skipped: {why}")
        else:
            figs.append((caption, path))

    runs = list(a.runs["run"])
    if len(runs) > 1:
        add("Accuracy at the last epoch vs noise level", ps.accuracy_vs_noise, a.metrics, a.runs, out,
            why="no accuracy recorded")
    add("Gini coefficient of the per-sample training loss per epoch", ps.per_epoch_lines, a.metrics, a.runs, out,
        metric="gini_loss", split="train", title="Gini coefficient of the per-sample training loss",
        ylabel="Gini", filename="gini_loss.png", why="no training loss recorded")
    add("Generalization gap (train - held-out accuracy) per epoch", ps.per_epoch_lines, a.metrics, a.runs, out,
        metric="generalization_gap", split="train-dev", title="Generalization gap: train minus dev accuracy",
        ylabel="accuracy gap", filename="generalization_gap.png", why="needs accuracy on both train and dev rows")
    add("Held-out samples sorted by their mean loss", ps.heldout_curves, a.curves, a.runs, out,
        why="no held-out rows with a loss")
    add("AUROC of every score", ps.auroc_heatmap, a.detection, out, why="no detection result (nothing noisy?)")
    for run in runs:
        heads = a.heads.get(run, [])
        add(f"{run}: learning curves", pr.learning_curves, a.metrics, run, out, why="no accuracy recorded")
        add(f"{run}: training-loss histograms", pr.loss_histograms, a.loss_samples, run, out,
            why="no training loss recorded")
        if len(a.scores):
            add(f"{run}: data map", pr.data_map, a.scores, heads, run, out, why="no gold_prob recorded")
            add(f"{run}: ROC curves", pr.roc_curves, a.scores, heads, run, out, detection=a.detection,
                why="needs both noisy and clean samples")
            for head in heads:
                add(f"{run}: score distributions, head {head}", pr.score_distributions, a.scores, head, run, out,
                    why=f"no score defined for head {head}")
    return figs


def _detection_summary(det: pd.DataFrame) -> str:
    if not len(det):
        return "<p>No detection results (see the skipped list).</p>"
    d = det[det["noise_kind"] == "all"]
    best = d.loc[d.groupby(["run", "head"], sort=False)["auroc"].idxmax()]
    cols = ["run", "head", "score", "auroc", "auprc", "base_rate", "precision_at_k", "k", "cutoff_precision",
            "cutoff_recall", "cutoff_fpr"]
    return ("<p>Best score per run and head by AUROC (all scores: <a href='detection.csv'>detection.csv</a>).</p>"
            + best[cols].to_html(index=False, float_format=lambda v: f"{v:.3f}", border=0, classes="t"))


def write_report(analysis: Analysis, out: str | Path, *, title: str = "trainstats memorization report") -> Path:
    """Write tables, figures and ``index.html`` into ``out``; return the path of ``index.html``."""
    out = Path(out)
    _plots()   # fail before anything is written when matplotlib is missing
    tables = write_tables(analysis, out)
    notes: list[str] = []
    figs = _figures(analysis, out, notes)
    esc = html.escape
    runs_html = analysis.runs.to_html(index=False, border=0, classes="t", na_rep="—")
    skipped = analysis.messages + notes
    dirs = ", ".join(f"{k} {'high' if v > 0 else 'low'}" for k, v in DIRECTIONS.items())
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>{esc(title)}</title><style>body{{font-family:sans-serif;max-width:1200px;margin:auto;padding:1em}}"
        "img{max-width:100%;border:1px solid #ddd}table.t{border-collapse:collapse;font-size:13px}"
        "table.t td,table.t th{padding:2px 8px;border-bottom:1px solid #ddd}li{margin:.2em 0}</style></head><body>",
        f"<h1>{esc(title)}</h1>",
        "<h2>Runs</h2>", runs_html,
        "".join(f"<p><b>Warning:</b> {esc(w)}</p>" for w in analysis.warnings),
        f"<p>Tables: <a href='{tables['scores'].name}'>scores.parquet</a> (one row per sample), "
        "<a href='metrics.csv'>metrics.csv</a> (per run, split, epoch, head), "
        "<a href='detection.csv'>detection.csv</a>, <a href='messages.txt'>messages.txt</a>.</p>",
        _GUIDE,
        f"<p>Score directions (which end means noisy): {esc(dirs)}.</p>",
        "<h2>Detection of the noisy samples</h2>", _detection_summary(analysis.detection),
        "<h2>Skipped or undefined</h2>",
        "<ul>" + "".join(f"<li>{esc(m)}</li>" for m in skipped) + "</ul>" if skipped else "<p>Nothing was skipped.</p>",
        "<h2>Figures</h2>",
    ]
    for caption, path in figs:
        parts.append(f"<h3>{esc(caption)}</h3><img src='{esc(path.name)}' alt='{esc(caption)}'>")
    parts.append("</body></html>")
    index = out / "index.html"
    index.write_text("\n".join(parts), encoding="utf-8")
    if notes:
        with open(tables["messages"], "a", encoding="utf-8") as f:
            f.writelines(n + "\n" for n in notes)
    return index
