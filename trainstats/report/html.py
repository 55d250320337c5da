"""Write an analysis to a folder: tables (Parquet/CSV), PNG figures and ``index.html``.

The page is self-contained and works offline: plain HTML and CSS, images beside it, no script and
nothing fetched from the network. It opens with the first screen (:mod:`trainstats.report.first_screen`).
"""
from __future__ import annotations

import html
import logging
import os
from pathlib import Path

import pandas as pd

from trainstats.analysis import DIRECTIONS, Analysis, memorization, runs_by_kind
from trainstats.analysis.paper import PAPER_CITATION, PAPER_LABEL, load_published
from trainstats.report import first_screen

__all__ = ["write_tables", "write_report"]

log = logging.getLogger(__name__)

_CSS = """body{font-family:system-ui,sans-serif;max-width:1250px;margin:auto;padding:1em;line-height:1.4;color:#222}
img{max-width:100%;border:1px solid #ddd}figure{margin:1em 0 2em}figcaption{font-size:13px;color:#444;max-width:1000px}
table.t{border-collapse:collapse;font-size:13px}table.t td,table.t th{padding:2px 8px;border-bottom:1px solid #ddd}
p.run{margin:.5em 0 .8em;max-width:1100px}.tag{background:#eef;border-radius:3px;padding:0 5px;font-weight:600}
.warn{color:#a30}nav a{margin-right:1em}li{margin:.2em 0}
table.glance td{vertical-align:top;font-size:14px;max-width:24em}table.glance td:first-child{white-space:nowrap}"""

_GUIDE = """
<h2 id='guide'>How to read this report</h2>
<ul>
<li><b>Noised</b> samples are those the run's noise flags mark (the noise manifest); <b>clean</b> are the rest.
Training accuracy is scored against the labels the model was trained on, i.e. the <i>noisy</i> labels for noised
samples. A model that <i>memorizes</i> fits noised samples late and only by rote: their accuracy against the noisy
labels rises while held-out accuracy does not improve (or falls).</li>
<li><b>Always “no bug”</b> (dotted grey): the accuracy of a predictor that never reports a bug, the trivial
baseline of the <code>loc</code> and <code>joint</code> heads (the bug-free share of the rows).</li>
<li><b>Generalization gap</b>: training accuracy on the <i>clean</i> training samples minus held-out accuracy, so that
noisy labels cannot shrink it by lowering training accuracy.</li>
<li><b>Gini of the training loss</b> (0 = every sample has the same loss, near 1 = a few samples carry it all).</li>
<li><b>Data map</b>: mean (confidence) and spread (variability) of the probability of the gold label over training.</li>
<li><b>Detection</b>: each score ranks samples from most to least suspicious (direction fixed in
<code>trainstats.analysis.DIRECTIONS</code>). AUROC 0.5 is chance, 1 perfect, with a 95 % DeLong interval; AUPRC
compares with the base rate; P@k is the precision among the k most suspicious, k = number of noised samples. The
calibrated cut-off is learned from a random half of the noised samples (AUM threshold samples) and evaluated on the
other half (recall) and all clean samples (false-positive rate).</li>
<li><b>The paper</b>: """ + html.escape(PAPER_CITATION) + """. Its figures are GREAT trained on Py150, one “epoch”
being one validation interval of 250 k training samples; they are shown in panels of their own, on their own epoch
axis, labelled “""" + html.escape(PAPER_LABEL) + """”.</li>
</ul>
"""


def write_tables(analysis: Analysis, out: str | Path) -> dict[str, Path]:
    """Write ``scores.parquet``, ``metrics.csv``, ``detection.csv``, ``runs.csv``, ``messages.txt``
    (warnings first). Needs no matplotlib."""
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
    """The plotting modules (they import matplotlib): ``(plots_memorization, plots_run, plots_study, kind_title)``."""
    try:
        import matplotlib  # noqa: F401
    except ImportError as exc:
        raise ImportError("trainstats' plots and HTML report need matplotlib: run `pip install "
                          "'trainstats[report]'` (or `trainstats analyze --no-plots` for the tables only)") from exc
    from trainstats.report import plots_memorization, plots_run, plots_study
    from trainstats.report.style import kind_title

    return plots_memorization, plots_run, plots_study, kind_title


class _Figures:
    """Draws figures, never letting one sink the report; remembers what was skipped and why."""

    def __init__(self) -> None:
        self.notes: list[str] = []

    def __call__(self, caption: str, fn, *args, why: str, **kw) -> Path | None:
        try:
            path = fn(*args, **kw)
        except Exception as exc:  # a figure must never sink the report; say what happened
            log.warning("figure %r failed: %s", caption, exc, exc_info=True)
            self.notes.append(f"figure '{caption}' failed: {type(exc).__name__}: {exc}")
            return None
        if path is None:
            self.notes.append(f"figure '{caption}' skipped: {why}")
        return path


def _figure(path: Path | None, caption: str, note: str = "") -> str:
    if path is None:
        return ""
    cap = f"<b>{html.escape(caption)}.</b> {note}" if note else f"<b>{html.escape(caption)}.</b>"
    return (f"<figure><img src='{html.escape(path.name)}' alt='{html.escape(caption)}'>"
            f"<figcaption>{cap}</figcaption></figure>")


def _detection_table(det: pd.DataFrame) -> str:
    if not len(det):
        return "<p>No detection results (see the skipped list).</p>"
    d = det[det["noise_kind"] == "all"]
    best = d.loc[d.groupby(["run", "head"], sort=False)["auroc"].idxmax()].copy()
    best["AUROC [95 % CI]"] = [f"{a:.3f} [{lo:.3f}, {hi:.3f}]" if pd.notna(lo) else f"{a:.3f}"
                               for a, lo, hi in zip(best["auroc"], best["auroc_ci_low"], best["auroc_ci_high"])]
    best["cut-off: recall / FPR"] = [
        f"{r:.2f} / {f:.2f}" + (" ⚠" if f > first_screen.MOST_CLEAN else "")
        if pd.notna(f) else "—" for r, f in zip(best["cutoff_recall"], best["cutoff_fpr"])]
    cols = ["run", "head", "score", "AUROC [95 % CI]", "auprc", "base_rate", "precision_at_k", "k",
            "cut-off: recall / FPR", "cutoff_precision"]
    return ("<p>Best score per run and head by AUROC (all scores: <a href='detection.csv'>detection.csv</a>). "
            "The cut-off's recall is measured on the held-back half of the noised samples, its false-positive rate "
            "(FPR) on all clean samples; a cut-off that flags most clean samples is marked ⚠.</p>"
            + best[cols].to_html(index=False, float_format=lambda v: f"{v:.3f}", border=0, classes="t"))


def _published(paper) -> pd.DataFrame | None:
    if paper is None or isinstance(paper, pd.DataFrame):
        return paper
    return load_published(paper)


def write_report(analysis: Analysis, out: str | Path, *, title: str = "trainstats memorization report",
                 paper: str | os.PathLike | pd.DataFrame | None = None) -> Path:
    """Write tables, figures and ``index.html`` into ``out``; return the path of ``index.html``.

    ``paper``: the study's per-epoch CSV (a path, or :func:`~trainstats.analysis.paper.load_published`'s
    frame), drawn beside this study's curves; without it the paper's epoch-50 figures are shown as marks.
    """
    out = Path(out)
    pm, pr, ps, kind_title = _plots()   # fails before anything is written when matplotlib is missing
    published = _published(paper)
    tables = write_tables(analysis, out)
    a = analysis
    groups = runs_by_kind(a.runs) if len(a.runs) else {}
    kind_of = dict(zip(a.runs["run"], a.runs["noise_kind"]))
    verdicts = {}
    if len(a.metrics):
        for run in a.runs["run"]:
            v = memorization(a.metrics, run, noise_kind=None if pd.isna(kind_of[run]) else kind_of[run])
            if v is not None:
                verdicts[run] = v
    fig = _Figures()
    overview = fig("Memorization at a glance", pm.overview_figure, a.metrics, a.runs, groups, verdicts, out,
                   why="no run has noised training samples with an accuracy")
    body = [first_screen.first_screen_html(a, verdicts, groups, overview.name if overview else None)]
    body += [f"<p class='warn'><b>Warning:</b> {html.escape(w)}</p>" for w in a.warnings]
    body.append("<h2 id='memorization'>Memorization: the noised samples against their noisy labels</h2>")
    for kind, names in groups.items():
        body.append(_figure(fig(f"Memorization, {kind_title(kind)}", pm.memorization_figure, a.metrics, a.runs, kind,
                                names, out, verdicts, why="no noised run of this kind"),
                            f"Memorization, {kind_title(kind)}",
                            "Training accuracy against the labels trained on, per epoch. Label noise: bug-free code "
                            "given a made-up bug can only be fitted by memorizing it (always “no bug” scores 0 % "
                            "there, and 100 % on buggy code made bug-free). Inject-repair: marked samples carry the "
                            "answer in their tokens."))
    body.append("<h2 id='study'>The study's figures, beside the paper's</h2>")
    note = ("Right: " + html.escape(PAPER_LABEL) + (", per-epoch curves from the CSV given with --paper, " if
            published is not None else ", ") + "open markers = its epoch-50 figures; its epochs are 250 k-sample "
            "validation intervals, so only the shapes and end points compare.")
    for kind, names in groups.items():
        for metric, cap in (("accuracy", "Accuracy per epoch"), ("gini_loss", "Gini of the per-sample training loss")):
            body.append(_figure(fig(f"{cap}, {kind_title(kind)}", ps.per_epoch_study, a.metrics, a.runs, kind, names,
                                    out, metric=metric, published=published, why=f"no {metric} recorded"),
                                f"{cap}, {kind_title(kind)}", note))
        body.append(_figure(fig(f"Sorted confidence, {kind_title(kind)}", ps.sorted_confidence, a.curves, a.runs,
                                kind, names, out, why="no held-out rows with a gold probability"),
                            f"Held-out samples sorted by confidence, {kind_title(kind)}",
                            "The study's score curves: each held-out sample's mean predicted probability of the gold "
                            "answer over the epochs, sorted ascending. The paper's own curves of this kind are not in "
                            "its per-epoch CSV, so none is drawn beside them."))
    body.append("<h2 id='generalization'>Generalization</h2>")
    for kind, names in groups.items():
        body.append(_figure(fig(f"Generalization gap, {kind_title(kind)}", ps.generalization_gap, a.metrics, a.runs,
                                kind, names, out, why="needs accuracy on both train and dev rows"),
                            f"Generalization gap on clean samples, {kind_title(kind)}"))
    body.append(_figure(fig("Accuracy against the noise level", ps.accuracy_vs_noise, a.metrics, a.runs, groups, out,
                            why="needs two or more noise levels"),
                        "Accuracy at the last epoch against the noise level"))
    body.append("<h2 id='detection'>Detection of the noised samples</h2>")
    body.append(_detection_table(a.detection))
    body.append(_figure(fig("AUROC of every score", ps.auroc_heatmap, a.detection, out,
                            why="no detection result (nothing noisy?)"), "AUROC of every score"))
    body.append("<h2 id='runs'>Runs and tables</h2>")
    body.append(a.runs.to_html(index=False, border=0, classes="t", na_rep="—"))
    body.append(f"<p>Tables: <a href='{tables['scores'].name}'>scores.parquet</a> (one row per sample), "
                "<a href='metrics.csv'>metrics.csv</a> (per run, split, epoch, head), <a href='detection.csv'>"
                "detection.csv</a>, <a href='runs.csv'>runs.csv</a>, <a href='messages.txt'>messages.txt</a>.</p>")
    body.append(_GUIDE)
    dirs = ", ".join(f"{k} {'high' if v > 0 else 'low'}" for k, v in DIRECTIONS.items())
    body.append(f"<p>Score directions (which end means noisy): {html.escape(dirs)}.</p>")
    body.append("<h2 id='per-run'>Per run</h2>")
    for run in a.runs["run"]:
        heads = a.heads.get(run, [])
        body.append(f"<h3>{html.escape(run)}</h3>")
        items = [("learning curves", pr.learning_curves, (a.metrics, run, out), {}, "no accuracy recorded"),
                 ("training-loss histograms", pr.loss_histograms, (a.loss_samples, run, out), {},
                  "no training loss recorded")]
        if len(a.scores):
            items += [("data map", pr.data_map, (a.scores, heads, run, out), {}, "no gold_prob recorded"),
                      ("ROC curves", pr.roc_curves, (a.scores, heads, run, out), {"detection": a.detection},
                       "needs both noisy and clean samples")]
            items += [(f"score distributions, head {h}", pr.score_distributions, (a.scores, h, run, out), {},
                       f"no score defined for head {h}") for h in heads]
        for caption, fn, args, kw, why in items:
            body.append(_figure(fig(f"{run}: {caption}", fn, *args, why=why, **kw), f"{run}: {caption}"))
    skipped = a.messages + fig.notes
    body.append("<h2 id='skipped'>Skipped or undefined</h2>")
    body.append("<ul>" + "".join(f"<li>{html.escape(m)}</li>" for m in skipped) + "</ul>" if skipped
                else "<p>Nothing was skipped.</p>")
    nav = "".join(f"<a href='#{i}'>{t}</a>" for i, t in (
        ("glance", "At a glance"), ("memorization", "Memorization"), ("study", "Study vs paper"),
        ("generalization", "Generalization"), ("detection", "Detection"), ("runs", "Runs"), ("guide", "How to read"),
        ("per-run", "Per run"), ("skipped", "Skipped")))
    page = ["<!doctype html><html lang='en'><head><meta charset='utf-8'>",
            "<meta name='viewport' content='width=device-width, initial-scale=1'>",
            f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>",
            f"<h1>{html.escape(title)}</h1><nav>{nav}</nav>"] + [b for b in body if b] + ["</body></html>"]
    index = out / "index.html"
    index.write_text("\n".join(page), encoding="utf-8")
    if fig.notes:
        with open(tables["messages"], "a", encoding="utf-8") as f:
            f.writelines(n + "\n" for n in fig.notes)
    return index
