"""The demo's summary: our figures per run at the last epoch beside the paper's (GREAT, epoch 50).

No TensorFlow: everything comes from the analysis tables (``metrics``, ``detection``, ``runs``) and
the cited headline table of :mod:`trainstats.analysis.paper`.
"""
from __future__ import annotations

import math
from typing import Any

import pandas as pd

from trainstats.analysis.memorization import memorization
from trainstats.analysis.paper import HEADLINE_EPOCH, PAPER_LABEL, headline

__all__ = ["SUMMARY_FIGURES", "summarize", "format_summary"]

#: the figures compared with the paper: key -> (metric, head, split, noise group, words)
SUMMARY_FIGURES: dict[str, tuple[str, str, str, str, str]] = {
    "train_loc_acc": ("accuracy", "loc", "train", "all", "training loc accuracy (against the noisy labels)"),
    "dev_loc_acc": ("accuracy", "loc", "dev", "all", "held-out loc accuracy"),
    "train_rep_acc": ("accuracy", "rep", "train", "all", "training rep accuracy (against the noisy labels)"),
    "dev_rep_acc": ("accuracy", "rep", "dev", "all", "held-out rep accuracy"),
    "gini_loc": ("gini_loss", "loc", "train", "all", "Gini of the per-sample training loc loss"),
    "gini_rep": ("gini_loss", "rep", "train", "all", "Gini of the per-sample training rep loss"),
}
_PAPER_SPLIT = {"train": "train", "dev": "heldout"}


def _value(m: pd.DataFrame, run: str, metric: str, head: str, split: str, group: str, *, subset: str = "all",
           epoch: int | None = None) -> float:
    sel = m[(m["run"] == run) & (m["split"] == split) & (m["head"] == head) & (m["subset"] == subset)
            & (m["noise_group"] == group) & (m["metric"] == metric)]
    if not len(sel):
        return math.nan
    ep = sel["epoch"].max() if epoch is None else epoch
    sel = sel[sel["epoch"] == ep]
    return float(sel["value"].iloc[0]) if len(sel) else math.nan


def _none_if_nan(x: float | None) -> float | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else x


def summarize(analysis) -> list[dict[str, Any]]:
    """One dict per run (JSON-ready: NaN becomes None).

    Keys: ``run``, ``noise_kind`` (None for the clean run), ``noise_level`` (fraction), ``epoch`` (the
    last, counted from 0); for every key of :data:`SUMMARY_FIGURES` our value at the last epoch and
    ``paper_<key>``, the paper's GREAT at epoch 50 for this run's kind and level (None where it
    published none; the clean run takes the label-noise figures, which the paper measured on the same
    clean data); ``train_joint_acc``, ``dev_joint_acc``, ``dev_always_no_bug`` (the share of bug-free dev
    examples: what answering "no bug" everywhere scores on loc); the memorization verdict
    (``memorized``, ``memorization_onset``, ``memorization_group``, ``memorization_first`` / ``_last``:
    accuracy of that group against its noisy labels at the first and last epoch); the best detector
    (``best_score``, ``best_head``, ``best_auroc``, ``best_auroc_ci``).
    """
    m = analysis.metrics
    det = analysis.detection
    rows = []
    for _, r in analysis.runs.iterrows():
        run = r["run"]
        level = None if pd.isna(r.get("noise_level")) else float(r["noise_level"])
        kind = None if pd.isna(r.get("noise_kind")) or not level else str(r["noise_kind"])
        run_m = m[m["run"] == run]
        row: dict[str, Any] = {"run": run, "noise_kind": kind, "noise_level": level,
                               "epoch": int(run_m["epoch"].max()) if len(run_m) else None}
        for key, (metric, head, split, group, _) in SUMMARY_FIGURES.items():
            row[key] = _value(m, run, metric, head, split, group)
            paper_kind = kind or "label"
            row[f"paper_{key}"] = (None if level is None else
                                   headline(paper_kind, metric, head, _PAPER_SPLIT[split], level))
        row["train_joint_acc"] = _value(m, run, "accuracy", "joint", "train", "all")
        row["dev_joint_acc"] = _value(m, run, "accuracy", "joint", "dev", "all")
        row["dev_always_no_bug"] = _value(m, run, "always_no_bug", "loc", "dev", "all")
        verdict = memorization(m, run, noise_kind=kind) if kind else None
        row.update(memorized=None if verdict is None else verdict.memorized,
                   memorization_onset=None if verdict is None else verdict.onset,
                   memorization_group=None if verdict is None else f"{verdict.head}: {verdict.group}",
                   memorization_first=None if verdict is None else verdict.accuracy[0],
                   memorization_last=None if verdict is None else verdict.accuracy[-1],
                   best_score=None, best_head=None, best_auroc=None, best_auroc_ci=None)
        if len(det) and kind:
            d = det[(det["run"] == run) & (det["noise_kind"] == "all")]
            if len(d) and d["auroc"].notna().any():
                best = d.loc[d["auroc"].idxmax()]
                ci = [best.get("auroc_ci_low"), best.get("auroc_ci_high")]
                row.update(best_score=str(best["score"]), best_head=str(best["head"]), best_auroc=float(best["auroc"]),
                           best_auroc_ci=None if any(pd.isna(c) for c in ci) else [float(c) for c in ci])
        rows.append({k: _none_if_nan(v) if isinstance(v, float) else v for k, v in row.items()})
    return rows


def _pct(x: float | None, width: int = 5) -> str:
    return f"{'-':>{width}}" if x is None else f"{100 * x:{width}.1f}"


def _pair(ours: float | None, paper: float | None) -> str:
    return f"{_pct(ours)} ({_pct(paper, 4) if paper is not None else '   -'})"


def format_summary(rows: list[dict[str, Any]]) -> str:
    """Fixed-width tables of :func:`summarize`'s rows, one per noise kind (the clean run in each).

    Cells are ``ours (paper)`` in percent: ours at the run's last epoch, the paper's GREAT on Py150 at
    epoch 50. See docs/demo.md for every column.
    """
    kinds = list(dict.fromkeys(r["noise_kind"] for r in rows if r["noise_kind"]))
    clean = [r for r in rows if not r["noise_kind"]]
    cols = ["train_loc_acc", "dev_loc_acc", "train_rep_acc", "dev_rep_acc", "gini_loc", "gini_rep"]
    heads = ["train loc", "held-out loc", "train rep", "held-out rep", "Gini loc", "Gini rep"]
    lines = [f"ours at the last epoch ({PAPER_LABEL}, epoch {HEADLINE_EPOCH}), in %"]
    for kind in kinds or [None]:
        lines.append("")
        lines.append(f"{kind or 'no'} noise")
        lines.append(f"{'noise':>5} | " + " | ".join(f"{h:^12}" for h in heads) + " | memorized: group 1st -> last, "
                     "from epoch | best detector (AUROC, 95 % CI)")
        for r in sorted(clean + [r for r in rows if r["noise_kind"] == kind], key=lambda r: r["noise_level"] or 0):
            lvl = "?" if r["noise_level"] is None else f"{100 * r['noise_level']:.0f}%"
            cells = " | ".join(_pair(r[c], r[f"paper_{c}"]) for c in cols)
            if r["memorized"] is None:
                mem = "-"
            else:
                mem = (f"{_pct(r['memorization_first']).strip()} -> {_pct(r['memorization_last']).strip()}, "
                       + (f"from {r['memorization_onset']}" if r["memorized"] else "no"))
            det = "-"
            if r["best_score"] is not None:
                ci = r["best_auroc_ci"]
                det = (f"{r['best_head']}/{r['best_score']} ({r['best_auroc']:.3f}"
                       + (f", {ci[0]:.3f}-{ci[1]:.3f})" if ci else ")"))
            lines.append(f"{lvl:>5} | {cells} | {mem} | {det}")
    if clean:
        c = clean[0]
        lines.append("")
        lines.append(f"clean run: held-out joint accuracy {_pct(c['dev_joint_acc']).strip()} %, loc "
                     f"{_pct(c['dev_loc_acc']).strip()} % (always 'no bug': {_pct(c['dev_always_no_bug']).strip()} %), "
                     f"train - held-out loc {_pct(None if c['train_loc_acc'] is None or c['dev_loc_acc'] is None else c['train_loc_acc'] - c['dev_loc_acc']).strip()} points")
    return "\n".join(lines)
