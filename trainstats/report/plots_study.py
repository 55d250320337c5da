"""Figures across the runs of a study, one per noise kind with every noise level in one panel: accuracy
and Gini of the training loss per epoch (each beside the paper's curves), held-out samples sorted by
confidence, generalization gap on clean samples; accuracy against the noise level; AUROC heat map.

Each function takes analysis tables, the runs table and the kind's run names (``runs_by_kind``),
draws one PNG and returns its path, or None when the runs lack what it needs (the caller says why).
Seeds of one level are averaged (the band spans them).
"""
from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.lines import Line2D

from trainstats.analysis.paper import HEADLINE_EPOCH, PAPER_LABEL, headline, published_series
from trainstats.report import style
from trainstats.report.style import BASELINE, HELDOUT, TRAIN

__all__ = ["per_epoch_study", "sorted_confidence", "generalization_gap", "accuracy_vs_noise",
           "auroc_heatmap"]

_PAPER_SPLIT = {"train": "train", "dev": "heldout"}
_PAPER_HEADS = ("loc", "rep")
_TITLES = {"accuracy": "accuracy per epoch", "gini_loss": "Gini coefficient of the per-sample training loss"}
_YLABEL = {"accuracy": "accuracy", "gini_loss": "Gini of per-sample loss (0 = equal)"}


def _has_paper(published, kind, metric, head, split, level) -> bool:
    if headline(kind, metric, head, split, level) is not None:
        return True
    return published is not None and len(published_series(published, noise_kind=kind, metric=metric, head=head,
                                                           split=split, noise_level=level)) > 0


def _paper_panel(ax, published, kind, metric, head, groups, splits) -> bool:
    """Draw the paper's curves (and its epoch-50 marks) for the study's levels; False if it has none."""
    drawn = False
    for lv, _, _, color in groups:
        if lv is None:
            continue
        for split, line in splits:
            psplit = _PAPER_SPLIT[split]
            if published is not None:
                s = published_series(published, noise_kind=kind, metric=metric, head=head, split=psplit,
                                     noise_level=lv)
                if len(s):
                    ax.plot(s["epoch"], s["value"], color=color, **{**line, "lw": 1.2})
                    drawn = True
            v = headline(kind, metric, head, psplit, lv)
            if v is not None:
                ax.plot([HEADLINE_EPOCH], [v], marker="o" if split == "train" else "s", ms=6, mfc="none",
                        mec=color, mew=1.5, ls="none")
                drawn = True
    return drawn


def per_epoch_study(metrics: pd.DataFrame, runs: pd.DataFrame, kind: str | None, names: list[str], out: Path, *,
                    metric: str, published: pd.DataFrame | None = None) -> Path | None:
    """``metric`` (``accuracy`` or ``gini_loss``) per epoch, one line per noise level, one row per head;
    beside each head the paper's GREAT curves for the same kind, metric, head, split and levels
    (from ``published``, :func:`~trainstats.analysis.paper.load_published`) and its epoch-50 figures.

    Accuracy: training rows (scored against their noisy labels, as the paper) solid, held-out dashed,
    the held-out "always no bug" accuracy dotted. Gini: training rows.
    """
    splits = [("train", TRAIN), ("dev", HELDOUT)] if metric == "accuracy" else [("train", TRAIN)]
    m = metrics[(metrics["metric"] == metric) & metrics["run"].isin(names) & (metrics["subset"] == "all")
                & (metrics["noise_group"] == "all")]
    heads = list(dict.fromkeys(m.loc[m["split"].isin([s for s, _ in splits]), "head"]))
    heads = [h for h in heads if h in _PAPER_HEADS] or heads  # the study's heads: loc, rep
    if not heads:
        return None
    groups = style.level_groups(runs, names)
    with_paper = kind is not None and any(_has_paper(published, kind, metric, h, _PAPER_SPLIT[s], lv)
                                          for h in heads for s, _ in splits for lv, *_ in groups if lv is not None)
    fig, axes = style.grid(len(heads), 2 if with_paper else 1, panel=(3.7, 2.2))
    for row, head in enumerate(heads):
        ax = axes[row][0]
        for lv, rs, label, color in groups:
            for split, line in splits:
                style.draw(ax, style.over_seeds(m[(m["split"] == split) & (m["head"] == head)], rs), color, line, label)
        base = style.dev_baseline(metrics, head, names) if metric == "accuracy" else None
        if base is not None:
            ax.axhline(base, **BASELINE)
        ax.set_title(f"{head}: this study ({style.kind_title(kind)})", fontsize=9)
        style.epoch_axis(ax)
        if metric == "accuracy":
            style.percent_axis(ax, f"{head} accuracy")
        else:
            ax.set(ylim=(-0.02, 1.02), ylabel=_YLABEL[metric])
        if with_paper:
            pax = axes[row][1]
            if _paper_panel(pax, published, kind, metric, head, groups, splits):
                pax.set_title(f"{head}: {PAPER_LABEL}", fontsize=9)
            else:
                pax.text(0.5, 0.5, f"the paper published no {head} series\nfor this kind and these levels",
                         ha="center", va="center", fontsize=8, color="0.4", transform=pax.transAxes)
                pax.set_title(f"{head}: paper", fontsize=9)
            pax.set_xlim(0, HEADLINE_EPOCH + 2)
            style.epoch_axis(pax, "paper epoch (250 k training samples each)")
            if metric == "accuracy":
                style.percent_axis(pax, f"{head} accuracy")
            else:
                pax.set(ylim=(-0.02, 1.02), ylabel=_YLABEL[metric])
    handles = [Line2D([], [], color=c, lw=2) for *_, c in groups]
    labels = [lab for _, _, lab, _ in groups]
    h2, l2 = style.style_handles(train="training rows (labels trained on)" if metric == "accuracy" else "training rows",
                                 heldout="held-out (dev)" if metric == "accuracy" else None,
                                 baseline="always 'no bug' (held-out)" if metric == "accuracy" else None)
    if with_paper:
        for split, marker, words in (("train", "o", "training"), ("dev", "s", "held-out")):
            if split in dict(splits):
                h2.append(Line2D([], [], marker=marker, mfc="none", mec="0.2", ls="none"))
                l2.append(f"paper, epoch {HEADLINE_EPOCH}: {words}")
    style.legend_below(fig, handles + h2, labels + l2, ncol=4)
    side = " (left) beside the paper's GREAT on Py150 (right)" if with_paper else ""
    style.suptitle(fig, f"{style.kind_title(kind).capitalize()}: {_TITLES[metric]} at every noise level{side}")
    return style.save(fig, out / f"{metric}_per_epoch_{style.safe_name(kind or 'unknown')}.png")


def sorted_confidence(curves: pd.DataFrame, runs: pd.DataFrame, kind: str | None, names: list[str],
                      out: Path) -> Path | None:
    """The study's score curves: held-out samples sorted by their mean predicted probability of the
    gold answer (over epochs), y = that mean; one line per noise level, one panel per head."""
    if not len(curves):
        return None
    c = curves[(curves["score"] == "confidence") & (curves["noise_group"] == "all") & (curves["split"] != "train")
               & curves["run"].isin(names)]
    heads = list(dict.fromkeys(c["head"]))
    if not heads:
        return None
    groups = style.level_groups(runs, names)
    fig, axes = style.grid(1, len(heads), panel=(3.0, 2.3))
    for ax, head in zip(axes[0], heads):
        h = c[c["head"] == head]
        for _, rs, label, color in groups:
            d = h[h["run"].isin(rs)].groupby("fraction")["value"].mean()
            if len(d):
                ax.plot(100 * d.index, d.to_numpy(), color=color, label=label, **TRAIN)
        ax.set_title(f"{head}", fontsize=9)
        ax.set_xlabel("held-out samples, sorted (%)")
        style.percent_axis(ax, "mean P(gold answer) over epochs")
        ax.grid(alpha=0.3)
    style.legend_below(fig, ncol=6)
    style.suptitle(fig, f"{style.kind_title(kind).capitalize()}: held-out samples sorted by the model's mean "
                        "probability of the right answer")
    return style.save(fig, out / f"sorted_confidence_{style.safe_name(kind or 'unknown')}.png")


def generalization_gap(metrics: pd.DataFrame, runs: pd.DataFrame, kind: str | None, names: list[str],
                       out: Path) -> Path | None:
    """Training accuracy on the **clean** training samples minus held-out accuracy, per epoch and level
    (scored against true labels on both sides, so noise cannot shrink it by lowering train accuracy)."""
    m = metrics[(metrics["metric"] == "generalization_gap") & (metrics["subset"] == "all")
                & (metrics["noise_group"] == "clean") & metrics["run"].isin(names)]
    heads = list(dict.fromkeys(m["head"]))
    if not heads:
        return None
    groups = style.level_groups(runs, names)
    fig, axes = style.grid(1, len(heads), panel=(3.0, 2.3))
    for ax, head in zip(axes[0], heads):
        for _, rs, label, color in groups:
            d = style.over_seeds(m[m["head"] == head], rs)
            style.draw(ax, d.assign(**{k: 100 * d[k] for k in ("mean", "lo", "hi")}), color, TRAIN, label)
        ax.axhline(0, color="0.5", lw=0.8)
        ax.set_title(head, fontsize=9)
        ax.set_ylabel("clean train − held-out accuracy (points)")
        style.epoch_axis(ax)
    style.legend_below(fig, ncol=6)
    style.suptitle(fig, f"{style.kind_title(kind).capitalize()}: generalization gap on clean samples "
                        "(train accuracy on clean training samples minus held-out accuracy)")
    return style.save(fig, out / f"generalization_gap_{style.safe_name(kind or 'unknown')}.png")


def accuracy_vs_noise(metrics: pd.DataFrame, runs: pd.DataFrame, groups: dict[str | None, list[str]],
                      out: Path) -> Path | None:
    """Last-epoch accuracy against the noise level, one row per kind and one column per head: training
    rows against their noisy labels, clean training samples, held-out; the paper's epoch-50 figures
    as open markers (mean over seeds, bars span them)."""
    m = metrics[(metrics["metric"] == "accuracy") & (metrics["subset"] == "all")]
    levels = runs.set_index("run")["noise_level"]
    if not len(m) or levels.isna().any() or levels.nunique() < 2:
        return None
    last = m.loc[m.groupby(["run", "split", "head", "noise_group"], observed=True)["epoch"].idxmax()]
    last = last.assign(x=100 * last["run"].map(levels).astype(float))
    heads = list(dict.fromkeys(last["head"]))
    known = _PAPER_HEADS + ("joint",)
    heads = [h for h in known if h in heads] + [h for h in heads if h not in known]
    fig, axes = style.grid(len(groups), len(heads), panel=(2.9, 2.2))
    series = [("train", "all", TRAIN, "C3", "training rows (labels trained on)"),
              ("train", "clean", TRAIN, "C0", "clean training samples"),
              ("dev", "all", HELDOUT, "0.15", "held-out (dev)")]
    for row, (kind, names) in enumerate(groups.items()):
        for ax, head in zip(axes[row], heads):
            h = last[(last["head"] == head) & last["run"].isin(names)]
            for split, group, line, color, label in series:
                d = h[(h["split"] == split) & (h["noise_group"] == group)]
                if len(d):
                    g = d.groupby("x")["value"].agg(["mean", "min", "max"])
                    ax.errorbar(g.index, g["mean"], yerr=[g["mean"] - g["min"], g["max"] - g["mean"]], color=color,
                                marker="o", ms=4, capsize=3, label=label, **line)
            for split, marker in (("train", "o"), ("heldout", "s")):
                pts = [(p, headline(kind, "accuracy", head, split, p / 100)) for p in (0, 25, 50, 75, 100)]
                pts = [(p, v) for p, v in pts if v is not None] if kind is not None else []
                if pts:
                    ax.plot(*zip(*pts), marker=marker, mfc="none", ms=6, color="C3" if split == "train" else "0.15",
                            ls=(0, (1, 3)), lw=1, label=f"{PAPER_LABEL}, epoch {HEADLINE_EPOCH}, {split}")
            base = style.dev_baseline(metrics, head, names)
            if base is not None:
                ax.axhline(base, label="always 'no bug' (held-out)", **BASELINE)
            ax.set_title(f"{head}: {style.kind_title(kind)}", fontsize=9)
            ax.set_xlabel("noise level (% of training samples)")
            ax.set_xlim(-5, 105)
            style.percent_axis(ax, f"{head} accuracy, last epoch")
            ax.grid(alpha=0.3)
    style.legend_below(fig, ncol=3)
    style.suptitle(fig, "Accuracy at the last epoch against the noise level (this study: filled; the paper: open)")
    return style.save(fig, out / "accuracy_vs_noise.png")


def auroc_heatmap(detection: pd.DataFrame, out: Path) -> Path | None:
    """AUROC of every score (columns) for every run and head (rows), noise kind ``all``."""
    if not len(detection):
        return None
    d = detection[detection["noise_kind"] == "all"]
    table = d.pivot_table(index=["run", "head"], columns="score", values="auroc", sort=False)
    if table.empty:
        return None
    fig, ax = plt.subplots(figsize=(2.5 + 0.75 * table.shape[1], 1.6 + 0.3 * table.shape[0]), layout="constrained")
    im = ax.imshow(table.to_numpy(np.float64), cmap="RdYlGn", vmin=0.0, vmax=1.0, aspect="auto")
    ax.set_xticks(range(table.shape[1]), table.columns, rotation=40, ha="right", fontsize=8)
    ax.set_yticks(range(table.shape[0]), [f"{r} / {h}" for r, h in table.index], fontsize=7)
    for (i, j), v in np.ndenumerate(table.to_numpy(np.float64)):
        if np.isfinite(v):
            ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=7)
    fig.colorbar(im, ax=ax, label="AUROC (0.5 = chance)")
    ax.set_xlabel("score (direction fixed: see DIRECTIONS)")
    ax.set_title("AUROC of each score for finding the noised training samples (run / head)", fontsize=10)
    return style.save(fig, out / "auroc_heatmap.png")
