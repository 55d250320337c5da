"""Figures across runs (noise levels, seeds): accuracy vs noise level, Gini, generalization gap,
held-out sorted curves, and an AUROC heat map."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from trainstats.report.plots_run import COLORS, _grid, _save  # noqa: E402

__all__ = ["accuracy_vs_noise", "per_epoch_lines", "heldout_curves", "auroc_heatmap"]


def _run_colors(runs: pd.DataFrame) -> dict[str, tuple]:
    cmap = plt.get_cmap("viridis")
    levels = runs["noise_level"].astype(float)
    if levels.notna().all() and levels.nunique() > 1:
        lo, hi = levels.min(), levels.max()
        return {r: cmap(0.9 * (lv - lo) / (hi - lo)) for r, lv in zip(runs["run"], levels)}
    tab = plt.get_cmap("tab10")
    return {r: tab(i % 10) for i, r in enumerate(runs["run"])}


def _run_label(runs: pd.DataFrame) -> dict[str, str]:
    out = {}
    for _, r in runs.iterrows():
        bits = [r["run"]]
        if pd.notna(r["noise_level"]):
            bits.append(f"noise {100 * r['noise_level']:.0f}%")
        out[r["run"]] = " · ".join(bits)
    return out


def accuracy_vs_noise(metrics: pd.DataFrame, runs: pd.DataFrame, out: Path) -> Path | None:
    """Last-epoch accuracy per head against the noise level (mean over seeds, bars = min..max)."""
    m = metrics[(metrics["metric"] == "accuracy") & (metrics["subset"] == "all")]
    if not len(m):
        return None
    last = m.loc[m.groupby(["run", "split", "head", "noise_group"])["epoch"].idxmax()]
    levels = runs.set_index("run")["noise_level"]
    use_levels = levels.notna().all()
    last = last.assign(x=last["run"].map(levels) * 100 if use_levels else last["run"])
    heads = list(dict.fromkeys(last["head"]))
    fig, axes = _grid(len(heads))
    series = [("train", "clean", "-"), ("train", "noisy", "-"), ("dev", "all", "--"), ("dev", "clean", ":")]
    for ax, head in zip(axes, heads):
        h = last[last["head"] == head]
        for split, group, ls in series:
            d = h[(h["split"] == split) & (h["noise_group"] == group)]
            if not len(d):
                continue
            g = d.groupby("x", sort=True)["value"].agg(["mean", "min", "max"])
            ax.errorbar(g.index, g["mean"], yerr=[g["mean"] - g["min"], g["max"] - g["mean"]], ls=ls, marker="o",
                        ms=4, capsize=3, color=COLORS[group] if split == "train" or group == "clean" else "0.2",
                        label=f"{split} {group}")
        ax.set(title=f"{head}: last-epoch accuracy", xlabel="noise level (%)" if use_levels else "run",
               ylabel="accuracy", ylim=(-0.02, 1.02))
        if not use_levels:
            ax.tick_params(axis="x", labelrotation=30, labelsize=7)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle("Across runs: accuracy at the last epoch (mean over seeds; bars span the seeds)", fontsize=10)
    return _save(fig, out / "accuracy_vs_noise.png")


def per_epoch_lines(metrics: pd.DataFrame, runs: pd.DataFrame, out: Path, *, metric: str, split: str,
                    title: str, ylabel: str, filename: str) -> Path | None:
    """One line per run of ``metric`` (subset all, noise group all) against the epoch, one panel per head."""
    m = metrics[(metrics["metric"] == metric) & (metrics["split"] == split) & (metrics["subset"] == "all")
                & (metrics["noise_group"] == "all")]
    if not len(m):
        return None
    colors, labels = _run_colors(runs), _run_label(runs)
    heads = list(dict.fromkeys(m["head"]))
    fig, axes = _grid(len(heads))
    for ax, head in zip(axes, heads):
        for run, d in m[m["head"] == head].groupby("run", sort=False):
            d = d.sort_values("epoch")
            ax.plot(d["epoch"], d["value"], color=colors.get(run), lw=1.3, label=labels.get(run, run),
                    marker="o" if len(d) < 20 else None, ms=3)
        ax.set(title=f"{head}", xlabel="epoch", ylabel=ylabel)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole numbers
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6)
    fig.suptitle(title, fontsize=10)
    return _save(fig, out / filename)


def heldout_curves(curves: pd.DataFrame, runs: pd.DataFrame, out: Path, *, score: str = "mean_loss") -> Path | None:
    """Sorted per-sample mean score on held-out rows, one line per run, one panel per head."""
    if not len(curves):
        return None
    c = curves[(curves["score"] == score) & (curves["noise_group"] == "all") & (curves["split"] != "train")]
    if not len(c):
        return None
    colors, labels = _run_colors(runs), _run_label(runs)
    heads = list(dict.fromkeys(c["head"]))
    fig, axes = _grid(len(heads))
    for ax, head in zip(axes, heads):
        for (run, split), d in c[c["head"] == head].groupby(["run", "split"], sort=False):
            ax.plot(d["fraction"], d["value"], color=colors.get(run), lw=1.3, label=f"{labels.get(run, run)} ({split})")
        ax.set(title=f"{head}: sorted per-sample {score}", xlabel="fraction of held-out samples (sorted)",
               ylabel=score)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6)
    fig.suptitle(f"Held-out samples sorted by their mean {score} over epochs", fontsize=10)
    return _save(fig, out / f"heldout_sorted_{score}.png")


def auroc_heatmap(detection: pd.DataFrame, out: Path) -> Path | None:
    """AUROC of every score (columns) for every run and head (rows), noise kind ``all``."""
    if not len(detection):
        return None
    d = detection[detection["noise_kind"] == "all"]
    table = d.pivot_table(index=["run", "head"], columns="score", values="auroc", sort=False)
    if table.empty:
        return None
    fig, ax = plt.subplots(figsize=(2.5 + 0.75 * table.shape[1], 3.0 + 0.35 * table.shape[0]))
    im = ax.imshow(table.to_numpy(np.float64), cmap="RdYlGn", vmin=0.0, vmax=1.0, aspect="auto")
    ax.set_xticks(range(table.shape[1]), table.columns, rotation=40, ha="right", fontsize=8)
    ax.set_yticks(range(table.shape[0]), [f"{r} / {h}" for r, h in table.index], fontsize=7)
    for (i, j), v in np.ndenumerate(table.to_numpy(np.float64)):
        if np.isfinite(v):
            ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=7)
    fig.colorbar(im, ax=ax, label="AUROC (0.5 = chance)")
    ax.set_title("How well each score separates noisy from clean samples", fontsize=10)
    return _save(fig, out / "auroc_heatmap.png", tight=True)
