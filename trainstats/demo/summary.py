"""The demo's short text summary, from the analysis tables (no TensorFlow)."""
from __future__ import annotations

import math
from typing import Any

import pandas as pd

__all__ = ["summarize", "format_summary"]


def _acc(m: pd.DataFrame, run: str, split: str, group: str, epoch: int | None = None, *,
         head: str = "joint", subset: str = "all") -> float:
    sel = m[(m["run"] == run) & (m["split"] == split) & (m["head"] == head) & (m["subset"] == subset)
            & (m["noise_group"] == group) & (m["metric"] == "accuracy")]
    if not len(sel):
        return math.nan
    ep = sel["epoch"].max() if epoch is None else epoch
    sel = sel[sel["epoch"] == ep]
    return float(sel["value"].iloc[0]) if len(sel) else math.nan


def summarize(analysis) -> list[dict[str, Any]]:
    """One dict per run: noise level, joint accuracies (last epoch) and the best detector.

    Keys: ``run``, ``noise_level``, ``train_acc``, ``train_clean_acc``, ``train_noisy_acc`` (accuracy
    against the *noisy* labels, i.e. memorization), ``train_noisy_acc_first`` (first epoch),
    ``train_noisy_buggy_acc`` / ``_first`` (the noisy samples whose noised label is buggy: with
    ``label`` noise, bug-free code given a made-up bug, which only memorization can fit),
    ``dev_acc``, ``dev_buggy_acc`` / ``dev_bug_free_acc`` (joint accuracy on the buggy / bug-free dev
    examples), ``dev_rep_acc`` (repair accuracy on buggy dev examples), ``best_score`` /
    ``best_head`` / ``best_auroc`` (the detector with the highest AUROC for the noisy samples, pooled
    over kinds); NaN where undefined (e.g. no noisy sample).
    """
    m = analysis.metrics
    det = analysis.detection
    rows = []
    for _, r in analysis.runs.iterrows():
        run = r["run"]
        first = int(m.loc[m["run"] == run, "epoch"].min()) if len(m) else 0
        row = {"run": run, "noise_level": None if pd.isna(r["noise_level"]) else float(r["noise_level"]),
               "train_acc": _acc(m, run, "train", "all"), "train_clean_acc": _acc(m, run, "train", "clean"),
               "train_noisy_acc": _acc(m, run, "train", "noisy"),
               "train_noisy_acc_first": _acc(m, run, "train", "noisy", first),
               "train_noisy_buggy_acc": _acc(m, run, "train", "noisy", subset="buggy"),
               "train_noisy_buggy_acc_first": _acc(m, run, "train", "noisy", first, subset="buggy"),
               "dev_acc": _acc(m, run, "dev", "all"), "dev_rep_acc": _acc(m, run, "dev", "all", head="rep"),
               "dev_buggy_acc": _acc(m, run, "dev", "all", subset="buggy"),
               "dev_bug_free_acc": _acc(m, run, "dev", "all", subset="bug_free"), "best_score": None, "best_head": None, "best_auroc": math.nan}
        if len(det):
            d = det[(det["run"] == run) & (det["noise_kind"] == "all")]
            if len(d):
                best = d.loc[d["auroc"].idxmax()]
                row.update(best_score=str(best["score"]), best_head=str(best["head"]), best_auroc=float(best["auroc"]))
        rows.append(row)
    return rows


def _pct(x: float) -> str:
    return "   -  " if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:5.1f}%"


def format_summary(rows: list[dict[str, Any]]) -> str:
    """A fixed-width table of :func:`summarize`'s rows (accuracies in %; see docs/demo.md)."""
    lines = [
        f"{'noise':>5} | {'train':>6} {'clean':>6} {'noisy':>15} {'noisy->buggy':>15} | {'dev':>6} {'dev':>6} "
        f"{'dev':>6} | best detector",
        f"{'':>5} | {'joint':>6} {'joint':>6} {'1st -> last':>15} {'1st -> last':>15} | {'joint':>6} {'buggy':>6} "
        f"{'repair':>6} | (AUROC)",
    ]
    for r in rows:
        lvl = "?" if r["noise_level"] is None else f"{100 * r['noise_level']:.0f}%"
        noisy = f"{_pct(r['train_noisy_acc_first'])}->{_pct(r['train_noisy_acc'])}"
        nbug = f"{_pct(r['train_noisy_buggy_acc_first'])}->{_pct(r['train_noisy_buggy_acc'])}"
        det = "-" if r["best_score"] is None else f"{r['best_head']}/{r['best_score']} ({r['best_auroc']:.3f})"
        lines.append(f"{lvl:>5} | {_pct(r['train_acc']):>6} {_pct(r['train_clean_acc']):>6} {noisy:>15} {nbug:>15} | "
                     f"{_pct(r['dev_acc']):>6} {_pct(r['dev_buggy_acc']):>6} {_pct(r['dev_rep_acc']):>6} | {det}")
    return "\n".join(lines)
