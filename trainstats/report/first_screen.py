"""The first screen of the report: per run, a few sentences that answer the study's questions.

Did the model memorize its noise, and from which epoch (:func:`trainstats.analysis.memorization`)?
Which score finds the noised samples best, with its AUROC and 95 % DeLong interval, and is its
calibrated cut-off usable? How does the run compare with the paper's GREAT on Py150 (its
epoch-50 figures, :data:`trainstats.analysis.paper.HEADLINE`)?
"""
from __future__ import annotations

import html
import math

import pandas as pd

from trainstats.analysis import Analysis, Memorization
from trainstats.analysis.paper import HEADLINE, HEADLINE_EPOCH, PAPER_LABEL, headline

__all__ = ["INVERSE", "MOST_CLEAN", "run_sentences", "best_detector", "first_screen_html"]

#: a calibrated cut-off that flags more than this fraction of the clean samples is called unusable
MOST_CLEAN = 0.5
#: an AUROC below this says a score ranks the noised samples as the *least* suspicious
INVERSE = 0.3


def _pct(x: float | None) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.1f} %"


def _series(m: pd.DataFrame, run: str, split: str, head: str, *, metric: str = "accuracy", group: str = "all",
            subset: str = "all") -> pd.Series:
    sel = m[(m["run"] == run) & (m["split"] == split) & (m["head"] == head) & (m["metric"] == metric)
            & (m["noise_group"] == group) & (m["subset"] == subset)]
    return sel.groupby("epoch")["value"].mean().sort_index()


def best_detector(detection: pd.DataFrame, run: str) -> pd.Series | None:
    """The detection row (noise kind ``all``) with the highest AUROC of ``run``, or None."""
    if not len(detection):
        return None
    d = detection[(detection["run"] == run) & (detection["noise_kind"] == "all")]
    d = d[d["auroc"].notna()]
    return None if not len(d) else d.loc[d["auroc"].idxmax()]


def _verdict(v: Memorization) -> str:
    first, last = v.accuracy[0], v.accuracy[-1]
    if v.reference_kind == "clean":
        what = (f"the {v.group} were fitted {_pct(last)} vs {_pct(v.reference[-1])} for the clean training samples at "
                f"the last epoch ({v.head} head, n = {v.n})")
    else:
        what = (f"{v.group} fitted to its noisy label: {_pct(first)} at epoch {v.epochs[0]} → {_pct(last)} at epoch "
                f"{v.epochs[-1]} ({v.head} head, n = {v.n}"
                + ("; without memorizing about 0 %)" if v.reference_kind == "zero" else ")"))
    if v.memorized:
        when = "already at the first epoch" if v.onset == v.epochs[0] else f"from epoch {v.onset}"
        return f"<b>Yes, {when}</b>: {what}."
    return (f"<b>No</b> (signal {100 * v.signal[-1]:+.1f} points at the last epoch, threshold "
            f"{100 * v.min_gain:.0f}): {what}.")


def _heldout(m: pd.DataFrame, run: str, head: str) -> str | None:
    dev = _series(m, run, "dev", head)
    if not len(dev):
        return None
    base = _series(m, run, "dev", head, metric="always_no_bug")
    b = f" (always “no bug”: {_pct(float(base.mean()))})" if len(base) else ""
    return f"Held-out {head} accuracy {_pct(float(dev.iloc[-1]))} at the last epoch{b}."


def _detector(det: pd.DataFrame, run: str) -> str | None:
    best = best_detector(det, run)
    if best is None:
        return None
    ci = (f"95 % CI {best['auroc_ci_low']:.3f}–{best['auroc_ci_high']:.3f}"
          if "auroc_ci_low" in best and pd.notna(best["auroc_ci_low"]) else "no CI: too few samples")
    text = (f"<b>{html.escape(str(best['score']))}</b> on {html.escape(str(best['head']))}: AUROC "
            f"<b>{best['auroc']:.3f}</b> ({ci}; {int(best['n_noisy'])} noised of {int(best['n'])}).")
    fpr = best.get("cutoff_fpr", float("nan"))
    if pd.notna(fpr):
        text += (f" Its cut-off ({100 * best['cutoff_recall_target']:.0f} % recall target) finds "
                 f"{_pct(best['cutoff_recall'])} of the noised and flags {_pct(fpr)} of the clean samples")
        text += " <span class='warn'>⚠ most clean samples: unusable as a filter</span>." if fpr > MOST_CLEAN else "."
    d = det[(det["run"] == run) & (det["noise_kind"] == "all") & det["auroc"].notna()]
    worst = d.loc[d["auroc"].idxmin()] if len(d) else None
    if worst is not None and worst["auroc"] < INVERSE:
        text += (f" {html.escape(str(worst['score']))} on {html.escape(str(worst['head']))} ranks them the other way "
                 f"round (AUROC {worst['auroc']:.3f}): here the noised samples are the <i>easiest</i> (a "
                 "shortcut), not the hardest.")
    return text


def _paper(a: Analysis, run: str, kinds: list[str], level: float | None, head_order: list[str]) -> str | None:
    if level is None:
        return None
    m = a.metrics
    bits, kind = [], None
    for kind in kinds:
        for (k, metric, head, split), _ in HEADLINE.items():
            if k != kind or metric != "accuracy" or head not in head_order:
                continue
            paper = headline(kind, metric, head, split, level)
            ours = _series(m, run, "dev" if split == "heldout" else "train", head)
            if paper is None or not len(ours):
                continue
            where = "held-out" if split == "heldout" else "training"
            bits.append((split != "heldout", head_order.index(head),
                         f"{where} {head} {_pct(float(ours.iloc[-1]))} (paper {_pct(paper)})"))
        if bits:
            break
    if not bits:
        return None
    text = "; ".join(b for *_, b in sorted(bits)) + "."
    seed = a.runs.set_index("run").loc[run, "seed"]
    zero = a.runs[a.runs["noise_level"] == 0]
    clean = zero.loc[zero["seed"] == seed, "run"].tolist() + zero.loc[zero["seed"] != seed, "run"].tolist()
    head = next((h for h in head_order if headline(kind, "accuracy", h, "heldout", 0.0) is not None), None)
    if level > 0 and clean and head is not None:
        p0, p1 = headline(kind, "accuracy", head, "heldout", 0.0), headline(kind, "accuracy", head, "heldout", level)
        o0, o1 = _series(m, clean[0], "dev", head), _series(m, run, "dev", head)
        if p1 is not None and len(o0) and len(o1):
            text += (f" Held-out {head} change from the clean run: {100 * (o1.iloc[-1] - o0.iloc[-1]):+.1f} points "
                     f"(paper {100 * (p1 - p0):+.1f}).")
    return text


def run_sentences(a: Analysis, run: str, verdict: Memorization | None, kinds: list[str]) -> dict[str, str]:
    """The first screen's answers about ``run`` (HTML fragments) by question: ``memorized``,
    ``detector``, ``paper``; ``kinds`` = the noise kinds it is shown under (a clean run: all)."""
    info = a.runs.set_index("run").loc[run]
    level = None if pd.isna(info["noise_level"]) else float(info["noise_level"])
    heads = a.heads.get(run, [])
    order = [h for h in ("loc", "rep", "joint") if h in heads] + [h for h in heads if h not in ("loc", "rep", "joint")]
    if verdict is not None:
        memorized = _verdict(verdict)
    elif level == 0:
        memorized = "Clean reference run: no noise to memorize."
    else:
        memorized = "No noised training samples recorded: nothing to memorize."
    head = verdict.head if verdict is not None else (order[0] if order else None)
    held = _heldout(a.metrics, run, head) if head else None
    detector = _detector(a.detection, run) or ("—" if verdict is None else "No detection result (see Skipped).")
    paper = _paper(a, run, kinds, level, order) or "No published figure for this kind and level."
    return {"memorized": memorized + (f" {held}" if held else ""), "detector": detector, "paper": paper}


def first_screen_html(a: Analysis, verdicts: dict[str, Memorization], groups: dict[str | None, list[str]],
                      overview: str | None) -> str:
    """The ``<section>`` at the top of index.html: the overview figure, then one row of answers per run."""
    kinds_of: dict[str, list[str]] = {}
    for kind, names in groups.items():
        for r in names:
            kinds_of.setdefault(r, []).append(kind)
    parts = ["<section id='glance'><h2>At a glance</h2>"]
    if overview:
        groups_seen = list(dict.fromkeys(f"{k or 'unknown'} noise: {v.group}" + (
            ", dotted = the clean training samples they are compared with" if v.reference_kind == "clean" else "")
            for k, v in ((v.noise_kind, v) for v in verdicts.values())))
        gain = next(iter(verdicts.values())).min_gain if verdicts else 0.05
        parts.append(f"<figure><img src='{html.escape(overview)}' alt='memorization at a glance'>"
                     "<figcaption>Solid: accuracy of the noised training samples against their noisy labels in the "
                     f"group where only memorization can raise it ({html.escape('; '.join(groups_seen))}). Dashed: "
                     "held-out accuracy of the same head. ▼: the memorization onset (the signal stays at least "
                     f"{100 * gain:.0f} points above its reference from there on).</figcaption></figure>")
    parts.append("<table class='t glance'><tr><th>run</th><th>Did it memorize the noise? From which epoch?</th>"
                 "<th>Which score finds the noised samples best?</th>"
                 f"<th>This run at its last epoch vs {html.escape(PAPER_LABEL)} at epoch {HEADLINE_EPOCH}</th></tr>")
    runs = a.runs.assign(_lv=a.runs["noise_level"].fillna(-1)).sort_values(["_lv", "noise_kind", "seed"],
                                                                          na_position="first")
    for run, level, kind in zip(runs["run"], runs["noise_level"], runs["noise_kind"]):
        what = "clean" if level == 0 else f"{kind or 'unknown'} noise {100 * level:.0f} %" if pd.notna(level) else \
            (kind or "noise level unknown")
        answers = run_sentences(a, run, verdicts.get(run), [k for k in kinds_of.get(run, []) if k is not None])
        parts.append(f"<tr><td><span class='tag'>{html.escape(what)}</span><br><code>{html.escape(run)}</code></td>"
                     f"<td>{answers['memorized']}</td><td>{answers['detector']}</td><td>{answers['paper']}</td></tr>")
    parts.append("</table></section>")
    return "\n".join(parts)
