"""The figures in which memorization is seen: per run, the training accuracy of the noised samples against
their noisy labels split by what the noise did, beside clean samples and held-out accuracy; and the
first screen's overview, one panel per noise kind with each run's memorization signal and its onset.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd
from matplotlib.lines import Line2D

from trainstats.analysis.memorization import Memorization, noised_subset_label
from trainstats.report import style
from trainstats.report.style import (BASELINE, HELDOUT, TRAIN, dev_baseline, draw, kind_title, level_groups,
                                     over_seeds, select)

__all__ = ["memorization_figure", "overview_figure"]

_SUBSET_COLORS = {"buggy": "C3", "bug_free": "C1", "all": "C3"}
_ONSET = dict(marker="v", ms=9, mec="k", mew=0.8, ls="none")


def _noised_runs(runs: pd.DataFrame, names: list[str], metrics: pd.DataFrame) -> list[str]:
    has_noisy = set(metrics.loc[(metrics["split"] == "train") & (metrics["noise_group"] == "noisy"), "run"])
    r = runs[runs["run"].isin(names) & runs["run"].isin(has_noisy)]
    return list(r.sort_values(["noise_level", "seed"], na_position="last")["run"])


def memorization_figure(metrics: pd.DataFrame, runs: pd.DataFrame, kind: str | None, names: list[str], out: Path,
                        verdicts: dict[str, Memorization] | None = None) -> Path | None:
    """One column per noised run of ``kind``, one row per head: training accuracy against the noisy
    labels of the noised samples, split by what the noise did (``has_bug`` as trained on), of the
    clean training samples, and held-out accuracy (dashed); "always no bug" dotted; the onset of the
    run's memorization verdict as a vertical line on its head."""
    noised = _noised_runs(runs, names, metrics)
    acc = metrics[(metrics["metric"] == "accuracy") & metrics["run"].isin(noised)]
    heads = list(dict.fromkeys(acc.loc[(acc["split"] == "train") & (acc["noise_group"] == "noisy"), "head"]))
    if not noised or not heads:
        return None
    info = runs.set_index("run")
    many_seeds = info.loc[noised, "seed"].nunique() > 1
    fig, axes = style.grid(len(heads), len(noised), panel=(2.7, 2.0))
    for col, run in enumerate(noised):
        a = acc[acc["run"] == run]
        v = (verdicts or {}).get(run)
        for row, head in enumerate(heads):
            ax = axes[row][col]
            subsets = [s for s in ("buggy", "bug_free")
                       if len(select(a, metric="accuracy", split="train", head=head, group="noisy", subset=s))]
            for subset in subsets or ["all"]:
                rows = select(a, metric="accuracy", split="train", head=head, group="noisy", subset=subset)
                d = over_seeds(rows, [run])
                draw(ax, d, _SUBSET_COLORS[subset], TRAIN, f"noised: {noised_subset_label(kind, subset)}")
            draw(ax, over_seeds(select(a, metric="accuracy", split="train", head=head, group="clean"), [run]), "C0",
                  TRAIN, "clean training samples")
            draw(ax, over_seeds(select(a, metric="accuracy", split="dev", head=head), [run]), "0.1", HELDOUT,
                  "held-out (dev)")
            base = dev_baseline(metrics, head, [run])
            if base is not None:
                ax.axhline(base, label="always 'no bug' (held-out)", **BASELINE)
            if v is not None and v.head == head and v.onset is not None:
                ax.axvline(v.onset, color="C3", lw=0.9, ls=(0, (4, 2)), label="memorization onset")
            lv = info.loc[run, "noise_level"]
            title = style.level_label(None if pd.isna(lv) else float(lv), run)
            ax.set_title(f"{head}, {title}" + (f", seed {info.loc[run, 'seed']}" if many_seeds else ""), fontsize=9)
            style.epoch_axis(ax)
            style.percent_axis(ax, f"{head} accuracy (labels trained on)" if col == 0 else "")
    style.legend_below(fig, ncol=4)
    question = "are the noised samples fitted to their noisy labels?" if kind == "label" else \
        "are the noised samples fitted better than the clean ones?"
    style.suptitle(fig, f"{kind_title(kind).capitalize()}: {question} Training accuracy (against the labels trained "
                        "on) by what the noise did, beside clean samples and held-out accuracy")
    return style.save(fig, out / f"memorization_{style.safe_name(kind or 'unknown')}.png")


def overview_figure(metrics: pd.DataFrame, runs: pd.DataFrame, groups: dict[str | None, list[str]],
                    verdicts: dict[str, Memorization], out: Path) -> Path | None:
    """The first screen's figure: one panel per noise kind; per noise level the accuracy of the
    memorization group against its noisy labels (solid), held-out accuracy of the same head (dashed),
    the clean-sample reference where the verdict uses one (dotted), and the onset (a triangle)."""
    panels = [(k, names) for k, names in groups.items() if any(r in verdicts for r in names)]
    if not panels:
        return None
    fig, axes = style.grid(1, len(panels), panel=(4.0, 2.6))
    for ax, (kind, names) in zip(axes[0], panels):
        vs = [verdicts[r] for r in names if r in verdicts]
        head = vs[0].head
        for lv, rs, label, color in level_groups(runs, names):
            mine = [verdicts[r] for r in rs if r in verdicts]
            if mine:
                d = pd.DataFrame([(r.run, e, a) for r in mine for e, a in zip(r.epochs, r.accuracy)],
                                 columns=["run", "epoch", "value"])
                draw(ax, over_seeds(d, rs), color, TRAIN, label)
                if mine[0].reference_kind == "clean":
                    d = pd.DataFrame([(r.run, e, a) for r in mine for e, a in zip(r.epochs, r.reference)],
                                     columns=["run", "epoch", "value"])
                    draw(ax, over_seeds(d, rs), color, dict(ls=":", lw=1.1))
                for r in mine:
                    if r.onset is not None:
                        ax.plot([r.onset], [r.accuracy[r.epochs.index(r.onset)]], color=color, **_ONSET)
            dev = select(metrics, metric="accuracy", split="dev", head=head)
            draw(ax, over_seeds(dev, rs), color, HELDOUT, label)
        base = dev_baseline(metrics, head, names)
        if base is not None:
            ax.axhline(base, **BASELINE)
        ax.set_title(f"{kind_title(kind)}: {head} head, {vs[0].group}", fontsize=9)
        style.epoch_axis(ax)
        style.percent_axis(ax, f"{head} accuracy")
    groups_all = level_groups(runs, [r for _, names in panels for r in names])
    handles = [Line2D([], [], color=c, lw=2) for *_, c in dict(((g[0], g[2]), g) for g in groups_all).values()]
    labels = [lab for _, _, lab, _ in dict(((g[0], g[2]), g) for g in groups_all).values()]
    h2, l2 = style.style_handles(train="noised samples vs their noisy labels", heldout="held-out accuracy",
                                 baseline="always 'no bug' (held-out)" if any(
                                     dev_baseline(metrics, v.head, [v.run]) is not None for v in verdicts.values())
                                 else None)
    if any(v.reference_kind == "clean" for v in verdicts.values()):
        h2.append(Line2D([], [], color="0.2", ls=":", lw=1.1))
        l2.append("clean training samples (reference)")
    h2.append(Line2D([], [], color="0.5", **_ONSET))
    l2.append("memorization onset")
    style.legend_below(fig, handles + h2, labels + l2, ncol=4)
    style.suptitle(fig, "Memorization at a glance: accuracy of the noised training samples against their noisy labels, "
                        "and held-out accuracy")
    return style.save(fig, out / "overview.png")
