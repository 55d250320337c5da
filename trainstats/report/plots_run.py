"""Per-run figures: learning curves, loss histograms, data map, score distributions, ROC curves.

Every function takes analysis tables (pandas) for one run, draws one PNG with matplotlib's Agg
backend and returns its path, or returns None when the run lacks what the figure needs (the caller
records why).
"""
from __future__ import annotations

import math
import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from trainstats.analysis import DIRECTIONS, roc_curve, suspicion  # noqa: E402

__all__ = ["COLORS", "safe_name", "learning_curves", "loss_histograms", "data_map", "score_distributions",
           "roc_curves"]

COLORS = {"clean": "tab:blue", "noisy": "tab:red", "all": "0.3"}
_MAX_POINTS = 20_000


def safe_name(text: str) -> str:
    """A file-name-safe version of a run name."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "run"


def _grid(n: int, ncols: int = 3, size: tuple[float, float] = (4.2, 3.2)):
    ncols = max(1, min(ncols, n))
    nrows = math.ceil(n / ncols)
    # at least 7 inches wide so the figure title (the run name and what is shown) fits on one line
    fig, axes = plt.subplots(nrows, ncols, figsize=(max(size[0] * ncols, 7.0), size[1] * nrows), squeeze=False)
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    return fig, list(axes.flat[:n])


def _save(fig, path: Path, *, tight: bool = False) -> Path:
    if tight:
        fig.tight_layout()
    else:  # fixed margins in inches: tight_layout costs a full extra draw per figure
        w, h = fig.get_size_inches()
        fig.subplots_adjust(left=0.75 / w, right=1 - 0.2 / w, bottom=0.6 / h, top=1 - 0.65 / h,
                            wspace=0.4, hspace=0.6)
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


def learning_curves(metrics: pd.DataFrame, run: str, out: Path) -> Path | None:
    """Accuracy per epoch, train (solid) and dev (dashed), clean vs noisy samples, one panel per head."""
    m = metrics[(metrics["run"] == run) & (metrics["metric"] == "accuracy") & (metrics["subset"] == "all")]
    heads = list(dict.fromkeys(m["head"]))
    if not len(m):
        return None
    fig, axes = _grid(len(heads))
    for ax, head in zip(axes, heads):
        h = m[m["head"] == head]
        for (split, group), d in h.groupby(["split", "noise_group"], sort=False):
            if group == "all" and split == "train":
                continue
            d = d.sort_values("epoch")
            ax.plot(d["epoch"], d["value"], color=COLORS[group], ls="-" if split == "train" else "--",
                    marker="o" if len(d) < 20 else None, ms=3, label=f"{split} {group}")
        ax.set(title=f"{head}: accuracy", xlabel="epoch", ylabel="accuracy", ylim=(-0.02, 1.02))
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole numbers
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(f"{run}: learning curves (solid = train, dashed = held-out)", fontsize=10)
    return _save(fig, out / f"learning_curves_{safe_name(run)}.png")


def loss_histograms(loss_samples: pd.DataFrame, run: str, out: Path, *, head: str | None = None,
                    max_panels: int = 6) -> Path | None:
    """Training-loss histograms, clean vs noisy, for up to ``max_panels`` evenly spaced epochs."""
    d = loss_samples[loss_samples["run"] == run]
    if not len(d):
        return None
    head = head or d["head"].iloc[0]
    d = d[d["head"] == head]
    epochs = sorted(d["epoch"].unique())
    pick = sorted({epochs[int(round(i))] for i in np.linspace(0, len(epochs) - 1, min(max_panels, len(epochs)))})
    hi = float(np.quantile(d["loss"], 0.995)) if len(d) else 1.0
    bins = np.linspace(0.0, max(hi, 1e-3), 40)
    fig, axes = _grid(len(pick))
    for ax, e in zip(axes, pick):
        for group in ("clean", "noisy"):
            v = d[(d["epoch"] == e) & (d["noise_group"] == group)]["loss"].to_numpy()
            if len(v):
                ax.hist(np.clip(v, 0, bins[-1]), bins=bins, density=True, histtype="stepfilled", alpha=0.5,
                        color=COLORS[group],
                        label=f"{group} (n={len(v)})")
        ax.set(title=f"epoch {e}", xlabel=f"{head} loss (nats)", ylabel="density")
        ax.legend(fontsize=7)
    fig.suptitle(f"{run}: per-sample training loss, clean vs noisy (head {head})", fontsize=10)
    return _save(fig, out / f"loss_hist_{safe_name(run)}.png")


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
    fig, axes = _grid(len(heads), size=(4.6, 4.0))
    for ax, head in zip(axes, heads):
        defined = s[s[f"{head}_confidence"].notna()]
        d = _sample(defined, _MAX_POINTS)
        for flag, group in ((False, "clean"), (True, "noisy")):
            g = d[d["noise"] == flag]
            ax.scatter(g[f"{head}_variability"], g[f"{head}_confidence"], s=3, alpha=0.35, color=COLORS[group],
                       label=f"{group} ({int((defined['noise'] == flag).sum())})", rasterized=True)
        ax.set(title=f"{head}: data map", xlabel="variability (std of gold prob)", ylabel="confidence (mean gold prob)",
               ylim=(-0.02, 1.02))
        ax.legend(fontsize=7, markerscale=3)
    fig.suptitle(f"{run}: data map (top-left easy, bottom-left hard-to-learn, right ambiguous)", fontsize=10)
    return _save(fig, out / f"data_map_{safe_name(run)}.png")


def score_distributions(scores: pd.DataFrame, head: str, run: str, out: Path, *,
                        max_points: int = 200_000) -> Path | None:
    """Histogram of each score, clean vs noisy (inf = never learned, counted in the text box).

    Densities are drawn from at most ``max_points`` random samples; the inf counts use all samples.
    """
    s = _run_rows(scores, run, [f"{head}_{n}" for n in DIRECTIONS])
    names = [n for n in DIRECTIONS if f"{head}_{n}" in s and s[f"{head}_{n}"].notna().any()]
    if not names:
        return None
    sub = _sample(s, max_points)
    fig, axes = _grid(len(names), ncols=4, size=(3.6, 2.8))
    for ax, name in zip(axes, names):
        v_all = s[f"{head}_{name}"].to_numpy(np.float64)
        v = sub[f"{head}_{name}"].to_numpy(np.float64)
        finite = np.isfinite(v)
        if not finite.any():
            ax.text(0.5, 0.5, "no finite values", ha="center", transform=ax.transAxes)
            continue
        lo, hi = np.quantile(v[finite], [0.0, 0.995])
        bins = np.linspace(lo, hi if hi > lo else lo + 1, 40)
        text = []
        for flag, group in ((False, "clean"), (True, "noisy")):
            m = (sub["noise"].to_numpy() == flag)
            x = v[m & finite]
            if len(x):
                ax.hist(np.clip(x, bins[0], bins[-1]), bins=bins, density=True, histtype="stepfilled", alpha=0.5,
                        color=COLORS[group],
                        label=group)
            n_inf = int(((s["noise"].to_numpy() == flag) & np.isinf(v_all)).sum())
            if n_inf:
                text.append(f"{group}: {n_inf} inf")
        if text:
            ax.text(0.98, 0.6, "\n".join(text), ha="right", fontsize=7, transform=ax.transAxes)
        arrow = "high" if DIRECTIONS[name] > 0 else "low"
        ax.set_title(f"{name} ({arrow} = noisy)", fontsize=9)
        ax.legend(fontsize=7)
    fig.suptitle(f"{run}: score distributions, head {head}", fontsize=10)
    return _save(fig, out / f"scores_{safe_name(run)}_{safe_name(head)}.png")


def roc_curves(scores: pd.DataFrame, heads: list[str], run: str, out: Path, *,
               detection: pd.DataFrame | None = None, max_points: int = 200_000) -> Path | None:
    """ROC curve of every score (noisy = positive), one panel per head.

    Curves are drawn from at most ``max_points`` randomly chosen samples (indistinguishable by eye);
    the AUROC in the legend is the exact one from ``detection`` when given.
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
        exact = {(h, sc): v for h, sc, v in zip(d["head"], d["score"], d["auroc"])}
    fig, axes = _grid(len(panels), size=(4.4, 4.0))
    cmap = plt.get_cmap("tab10")
    for ax, head in zip(axes, panels):
        for i, name in enumerate(n for n in DIRECTIONS if f"{head}_{n}" in s):
            sus = suspicion(name, s[f"{head}_{name}"].to_numpy(np.float64))
            ok = ~np.isnan(sus)
            y = noise[ok]
            if not y.any() or y.all():
                continue
            fpr, tpr = roc_curve(y, sus[ok])
            auc = exact.get((head, name), float(np.trapezoid(tpr, fpr)))
            if len(fpr) > 2000:  # thin very long curves; keep both ends
                keep = np.unique(np.linspace(0, len(fpr) - 1, 2000).astype(int))
                fpr, tpr = fpr[keep], tpr[keep]
            ax.plot(fpr, tpr, color=cmap(i % 10), lw=1.2, label=f"{name} {auc:.3f}")
        ax.plot([0, 1], [0, 1], color="0.6", ls=":", lw=1)
        ax.set(title=f"{head}: ROC (noisy = positive)", xlabel="false-positive rate", ylabel="true-positive rate")
        ax.legend(fontsize=6, title="score  AUROC", title_fontsize=7)
    fig.suptitle(f"{run}: how well each score finds the noisy samples", fontsize=10)
    return _save(fig, out / f"roc_{safe_name(run)}.png")
