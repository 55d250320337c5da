"""Per-run figures: learning curves, loss histograms, data map, score distributions, ROC curves.

Every function takes analysis tables (pandas) for one run, draws one PNG with matplotlib's Agg
backend and returns its path, or returns None when the run lacks what the figure needs (the caller
records why). Legends sit outside the data (below the panels, or right of a panel).
"""
from __future__ import annotations

import math
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from trainstats.analysis import DIRECTIONS, SCORE_UNITS, roc_curve, suspicion
from trainstats.report import style
from trainstats.report.style import BASELINE, COLORS, HELDOUT, TRAIN, safe_name

__all__ = ["COLORS", "safe_name", "learning_curves", "loss_histograms", "data_map", "score_distributions",
           "roc_curves"]

_MAX_POINTS = 20_000


def _panels(n: int, ncols: int, panel: tuple[float, float], gap: tuple[float, float] = (0.85, 0.85),
            right: float = 0.0):
    ncols = max(1, min(ncols, n))
    fig, axes = style.grid(math.ceil(n / ncols), ncols, panel=panel, gap=gap, right=right)
    flat = list(axes.flat)
    for ax in flat[n:]:
        ax.set_visible(False)
    return fig, flat[:n]


def learning_curves(metrics: pd.DataFrame, run: str, out: Path) -> Path | None:
    """Accuracy per epoch, one panel per head: training rows of clean and of noisy samples (solid,
    against the labels trained on) and held-out rows (dashed), with the held-out "always no bug" rate."""
    m = metrics[(metrics["run"] == run) & (metrics["metric"] == "accuracy") & (metrics["subset"] == "all")]
    heads = list(dict.fromkeys(m["head"]))
    if not len(m):
        return None
    fig, axes = _panels(len(heads), 3, (3.0, 2.2))
    for ax, head in zip(axes, heads):
        h = m[m["head"] == head]
        held_out = [s for s in dict.fromkeys(h["split"]) if s != "train"]
        series = [("train", "clean", "clean training samples", TRAIN, COLORS["clean"]),
                  ("train", "noisy", "noisy training samples (vs noisy labels)", TRAIN, COLORS["noisy"])]
        if not (h["noise_group"] == "noisy").any():
            series = [("train", "all", "training samples", TRAIN, COLORS["clean"])]
        for sp in held_out:  # held-out splits carry no noise: their 'clean' rows are all rows
            series.append((sp, "all", f"held-out ({sp})", HELDOUT, COLORS["heldout"]))
        for split, group, label, line, color in series:
            d = h[(h["split"] == split) & (h["noise_group"] == group)]
            style.draw(ax, style.over_seeds(d, [run]), color, line, label)
        base = style.dev_baseline(metrics, head, [run])
        if base is not None:
            ax.axhline(base, label="always 'no bug' (held-out)", **BASELINE)
        ax.set_title(f"{head}", fontsize=9)
        style.epoch_axis(ax)
        style.percent_axis(ax, f"{head} accuracy")
    style.legend_below(fig, ncol=3)
    style.suptitle(fig, f"{run}: accuracy per epoch, clean vs noisy training samples and held-out")
    return style.save(fig, out / f"learning_curves_{safe_name(run)}.png")


def loss_histograms(loss_samples: pd.DataFrame, run: str, out: Path, *, head: str | None = None,
                    max_panels: int = 6) -> Path | None:
    """Training-loss histograms, clean vs noisy, for up to ``max_panels`` evenly spaced epochs.

    The x range ends at the 99.5th percentile of the losses shown; samples beyond it are not piled
    into the last bin but counted in each panel's note."""
    d = loss_samples[loss_samples["run"] == run]
    if not len(d):
        return None
    head = head or d["head"].iloc[0]
    d = d[d["head"] == head]
    epochs = sorted(d["epoch"].unique())
    pick = sorted({epochs[int(round(i))] for i in np.linspace(0, len(epochs) - 1, min(max_panels, len(epochs)))})
    hi = float(np.quantile(d["loss"], 0.995)) if len(d) else 1.0
    bins = np.linspace(0.0, max(hi, 1e-3), 40)
    fig, axes = _panels(len(pick), 3, (2.9, 1.9))
    for ax, e in zip(axes, pick):
        beyond = []
        for group in ("clean", "noisy"):
            v = d[(d["epoch"] == e) & (d["noise_group"] == group)]["loss"].to_numpy()
            if len(v):
                ax.hist(v[v <= bins[-1]], bins=bins, weights=np.full(int((v <= bins[-1]).sum()), 1.0 / len(v)),
                        histtype="stepfilled", alpha=0.5, color=COLORS[group], label=f"{group} samples")
                over = int((v > bins[-1]).sum())
                if over:
                    beyond.append(f"{group}: {over} ({100 * over / len(v):.1f} %)")
        if beyond:
            ax.text(0.98, 0.97, f"> {bins[-1]:.2f} nats, not shown:\n" + "\n".join(beyond), ha="right", va="top",
                    fontsize=6.5, transform=ax.transAxes, color="0.3")
        ax.set(title=f"epoch {e}", xlabel=f"{head} training loss (nats)", ylabel="fraction of samples per bin")
        ax.title.set_fontsize(9)
    style.legend_below(fig, ncol=2)
    style.suptitle(fig, f"{run}: per-sample training loss of clean vs noisy samples (head {head}; a sample of rows)")
    return style.save(fig, out / f"loss_hist_{safe_name(run)}.png")


def _sample(df: pd.DataFrame, n: int, seed: int = 0) -> pd.DataFrame:
    return df if len(df) <= n else df.sample(n, random_state=seed)


def _run_rows(scores: pd.DataFrame, run: str, columns: list[str]) -> pd.DataFrame:
    """The rows of one run with only ``columns`` (no copy of the whole, possibly huge, scores table)."""
    cols = ["noise"] + [c for c in columns if c in scores.columns and c != "noise"]
    if scores["run"].nunique() == 1:
        return scores[cols] if scores["run"].iloc[0] == run else scores.iloc[:0][cols]
    return scores.loc[scores["run"] == run, cols]


def data_map(scores: pd.DataFrame, heads: list[str], run: str, out: Path) -> Path | None:
    """Swayamdipta et al. data map: variability (x) vs confidence (y), coloured by noise flag."""
    s = _run_rows(scores, run, [f"{h}_{x}" for h in heads for x in ("confidence", "variability")])
    heads = [h for h in heads if f"{h}_confidence" in s and s[f"{h}_confidence"].notna().any()]
    if not heads:
        return None
    fig, axes = _panels(len(heads), 3, (3.0, 2.6))
    for ax, head in zip(axes, heads):
        defined = s[s[f"{head}_confidence"].notna()]
        d = _sample(defined, _MAX_POINTS)
        for flag, group in ((False, "clean"), (True, "noisy")):
            g = d[d["noise"] == flag]
            count = int((defined["noise"] == flag).sum())
            if not count:
                continue
            ax.scatter(g[f"{head}_variability"], g[f"{head}_confidence"], s=3, alpha=0.35, color=COLORS[group],
                       label=f"{group} samples", rasterized=True)
            ax.text(0.98, 0.02 + 0.07 * flag, f"{group}: {count}", ha="right", fontsize=7, color=COLORS[group],
                    transform=ax.transAxes)
        ax.set(title=head, xlabel="variability (std of gold probability)", ylabel="confidence (mean gold probability)",
               ylim=(-0.02, 1.02))
        ax.title.set_fontsize(9)
    style.legend_below(fig, ncol=2, markerscale=4)
    style.suptitle(fig, f"{run}: data map (top left easy, bottom left hard to learn, right ambiguous)")
    return style.save(fig, out / f"data_map_{safe_name(run)}.png")


def score_distributions(scores: pd.DataFrame, head: str, run: str, out: Path, *,
                        max_points: int = 200_000) -> Path | None:
    """Histogram of each score, clean vs noisy (inf = never learned, counted in the panel's note).

    Densities are drawn from at most ``max_points`` random samples; the inf counts use all samples;
    values beyond the 99.5th percentile are counted in the note, not piled into the last bin."""
    s = _run_rows(scores, run, [f"{head}_{n}" for n in DIRECTIONS])
    names = [n for n in DIRECTIONS if f"{head}_{n}" in s and s[f"{head}_{n}"].notna().any()]
    if not names:
        return None
    sub = _sample(s, max_points)
    fig, axes = _panels(len(names), 4, (2.4, 1.7), gap=(0.75, 0.8))
    for ax, name in zip(axes, names):
        v_all = s[f"{head}_{name}"].to_numpy(np.float64)
        v = sub[f"{head}_{name}"].to_numpy(np.float64)
        finite = np.isfinite(v)
        ax.set(xlabel=SCORE_UNITS.get(name, name), ylabel="fraction of samples")
        arrow = "high" if DIRECTIONS[name] > 0 else "low"
        ax.set_title(f"{name} ({arrow} = noisy)", fontsize=8.5)
        if not finite.any():
            ax.text(0.5, 0.5, "no finite values", ha="center", transform=ax.transAxes)
            continue
        lo, hi = np.quantile(v[finite], [0.0, 0.995])
        bins = np.linspace(lo, hi if hi > lo else lo + 1, 30)
        text = []
        for flag, group in ((False, "clean"), (True, "noisy")):
            m = sub["noise"].to_numpy() == flag
            x = v[m & finite]
            shown = x[x <= bins[-1]]
            if len(x):
                ax.hist(shown, bins=bins, weights=np.full(len(shown), 1.0 / len(x)), histtype="stepfilled",
                        alpha=0.5, color=COLORS[group], label=f"{group} samples")
            n_inf = int(((s["noise"].to_numpy() == flag) & np.isinf(v_all)).sum())
            if n_inf:
                text.append(f"{group}: {n_inf} never learned (inf)")
            if len(x) - len(shown):
                text.append(f"{group}: {len(x) - len(shown)} > {bins[-1]:.3g}")
        if text:
            ax.text(0.98, 0.97, "\n".join(text), ha="right", va="top", fontsize=6, color="0.3", transform=ax.transAxes)
    style.legend_below(fig, ncol=2)
    style.suptitle(fig, f"{run}: distribution of every score, clean vs noisy samples (head {head})")
    return style.save(fig, out / f"scores_{safe_name(run)}_{safe_name(head)}.png")


def roc_curves(scores: pd.DataFrame, heads: list[str], run: str, out: Path, *,
               detection: pd.DataFrame | None = None, max_points: int = 200_000) -> Path | None:
    """ROC curve of every score (noisy = positive), one panel per head, legend right of each panel.

    Curves are drawn from at most ``max_points`` randomly chosen samples (indistinguishable by eye);
    the AUROC and its 95 % CI in the legend are the exact ones from ``detection`` when given, and the
    calibrated cut-off of each score is a dot at its (false-positive rate, recall).
    """
    s = _run_rows(scores, run, [f"{h}_{n}" for h in heads for n in DIRECTIONS])
    if len(s) > max_points:
        s = s.sample(max_points, random_state=0)
    noise = s["noise"].to_numpy(bool)
    if not noise.any() or noise.all():
        return None
    panels = [h for h in heads if any(f"{h}_{n}" in s for n in DIRECTIONS)]
    if not panels:
        return None
    exact = {}
    if detection is not None and len(detection):
        d = detection[(detection["run"] == run) & (detection["noise_kind"] == "all")]
        exact = {(r.head, r.score): r for r in d.itertuples(index=False)}
    fig, axes = _panels(len(panels), 2, (2.8, 2.8), gap=(2.9, 0.85), right=2.9)  # the legends sit in the gaps
    cmap = plt.get_cmap("tab10")
    for ax, head in zip(axes, panels):
        for i, name in enumerate(n for n in DIRECTIONS if f"{head}_{n}" in s):
            sus = suspicion(name, s[f"{head}_{name}"].to_numpy(np.float64))
            ok = ~np.isnan(sus)
            y = noise[ok]
            if not y.any() or y.all():
                continue
            fpr, tpr = roc_curve(y, sus[ok])
            row = exact.get((head, name))
            if len(fpr) > 2000:  # thin very long curves; keep both ends
                keep = np.unique(np.linspace(0, len(fpr) - 1, 2000).astype(int))
                fpr, tpr = fpr[keep], tpr[keep]
            if row is not None and np.isfinite(row.auroc_ci_low):
                label = f"{name}  {row.auroc:.3f} [{row.auroc_ci_low:.2f}, {row.auroc_ci_high:.2f}]"
            else:
                label = f"{name}  {row.auroc if row is not None else np.trapezoid(tpr, fpr):.3f}"
            ax.plot(fpr, tpr, color=cmap(i % 10), lw=1.2, label=label)
            if row is not None and np.isfinite(row.cutoff_fpr):
                ax.plot([row.cutoff_fpr], [row.cutoff_recall], "o", color=cmap(i % 10), ms=4)
        ax.plot([0, 1], [0, 1], color="0.6", ls=":", lw=1, label="chance")
        ax.set(title=f"{head}", xlabel="false-positive rate (clean samples flagged)",
               ylabel="true-positive rate (noisy found)", xlim=(0, 1), ylim=(0, 1.01), aspect="equal")
        ax.title.set_fontsize(9)
        style.legend_right(ax, fontsize=6.5, title="score  AUROC [95 % CI]")
    style.suptitle(fig, f"{run}: ROC of each score for finding the noisy samples (dot = calibrated cut-off)")
    return style.save(fig, out / f"roc_{safe_name(run)}.png")
