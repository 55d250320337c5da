"""Analyse one run directory out of core: per-sample scores, per-epoch metrics, loss samples, curves.

One streaming pass per split over its epoch partitions (oldest first, :mod:`trainstats.analysis.scan`):
each epoch is read with only the needed columns, fed to one :class:`SampleStats` per head and
summarised into per-epoch metrics. Memory: O(samples + largest epoch).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from trainstats.analysis.epochs import loss_frame
from trainstats.analysis.columns import RunInfo, context_columns, discover_heads, run_info
from trainstats.analysis.metrics import sorted_curve
from trainstats.analysis.scan import STATS_USED, scan_split
from trainstats.analysis.scores import SCORE_NAMES, SCORE_STATS
from trainstats.store import Run

__all__ = ["RunAnalysis", "analyze_run", "CURVE_SCORES"]

log = logging.getLogger(__name__)

#: per-sample scores whose sorted curve is drawn for held-out splits
CURVE_SCORES: tuple[str, ...] = ("mean_loss", "confidence", "correctness")


@dataclass
class RunAnalysis:
    """Everything analysis computes for one run (pandas DataFrames, see docs/analysis.md)."""

    info: RunInfo
    heads: list[str]
    scores: pd.DataFrame
    metrics: pd.DataFrame
    loss_samples: pd.DataFrame
    curves: pd.DataFrame
    messages: list[str] = field(default_factory=list)
    #: head -> unit of its margin column (``trainstats.store.MARGIN_UNITS``), None when undeclared
    margin_units: dict[str, str | None] = field(default_factory=dict)


class _Messages(dict):
    def add(self, text: str) -> None:
        if text not in self:
            self[text] = None
            log.info(text)


def analyze_run(run_dir: str | Path, *, split: str = "train", max_loss_samples: int = 5000,
                progress: bool = False) -> RunAnalysis:
    """Analyse one run directory written by :class:`trainstats.store.RunWriter`.

    Args:
        run_dir: the run directory.
        split: the split whose rows the per-sample scores use (``"train"``; ``"dev"`` on request).
        max_loss_samples: per ``(epoch, head, noise group)``, how many training losses to keep for
            the loss histograms (every k-th row in sample-key order: a pseudo-random sample).
        progress: show a tqdm bar per split on stderr.

    Returns:
        :class:`RunAnalysis`; ``messages`` lists every metric or score skipped and why.
    """
    if split not in ("train", "dev", "eval"):
        raise ValueError(f"split must be 'train', 'dev' or 'eval'; received {split!r}")
    src = Run(run_dir)
    info = run_info(src.path, src.metadata)
    vcols = src.metadata.get("value_columns") or []
    heads = discover_heads(vcols)
    context = {k: v for k, v in context_columns(vcols).items()}
    msgs = _Messages()
    label = info.run
    if not heads:
        msgs.add(f"{label}: no value column declares a head with a known stat; nothing to score")
    for h in heads.values():
        lacking = [stat for stat in STATS_USED if h.get(stat) is None]
        if lacking:
            skipped = [score for score, stat in SCORE_STATS.items() if stat in lacking]
            msgs.add(f"{label}: head {h.head}: no {', '.join(repr(s) for s in lacking)} column recorded; "
                     f"skipped: {', '.join(skipped)}")
    splits = src.splits()
    if split not in splits:
        msgs.add(f"{label}: no {split} rows; per-sample scores skipped")
    if not any(s != "train" for s in splits):
        msgs.add(f"{label}: no held-out (dev/eval) rows; generalization gap and held-out curves skipped")
    metric_rows: list[dict] = []
    loss_parts: list[tuple] = []
    curve_parts: list[pd.DataFrame] = []
    scores = pd.DataFrame()
    for sp in splits:
        result = scan_split(src.path, sp, heads, context, msgs, metric_rows,
                            loss_parts if sp == "train" else None, max_loss_samples, progress, with_ids=sp == split)
        keys, stats, noise, kinds, ctx = result.keys, result.stats, result.noise, result.kinds, result.context
        if sp != "train":
            for head, st in stats.items():
                for score in CURVE_SCORES:
                    values = getattr(st, score)
                    for group, mask in (("all", None), ("clean", ~noise), ("noisy", noise)):
                        v = values if mask is None else values[mask]
                        if np.isnan(v).all():
                            continue
                        c = sorted_curve(v)
                        c.insert(0, "noise_group", group)
                        c.insert(0, "score", score)
                        c.insert(0, "head", head)
                        c.insert(0, "split", sp)
                        curve_parts.append(c)
        if sp == split:  # last: it releases each head's running state once its columns exist
            scores = _scores_frame(src.path.name, keys, result.ids, stats, noise, kinds, ctx, vcols, heads, msgs)
        del result, stats
    if splits and len(src.epochs(split)) == 1:
        msgs.add(f"{label}: only one {split} epoch recorded; variability and forgetting events use the "
                 "appearances inside that epoch only")
    metrics = pd.DataFrame(metric_rows, columns=["split", "epoch", "head", "subset", "noise_group", "metric",
                                                 "value", "n"])
    loss_samples = loss_frame(loss_parts)
    curves = pd.concat(curve_parts, ignore_index=True) if curve_parts else \
        pd.DataFrame(columns=["split", "head", "score", "noise_group", "fraction", "value"])
    units = {h: c.margin_unit for h, c in heads.items() if c.get("margin") is not None}
    return RunAnalysis(info, list(heads), scores, metrics, loss_samples, curves, list(msgs), units)


def _scores_frame(label, keys, ids, stats, noise, kinds, ctx, vcols, heads, msgs) -> pd.DataFrame:
    missing = ids.null_count
    if missing:
        msgs.add(f"{label}: {missing} of {len(keys)} samples have no sample_id (their ids were never "
                 "registered with the writer; sample_id left null)")
    cols: dict[str, object] = {
        "sample_key": keys,
        "sample_id": pd.arrays.ArrowExtensionArray(ids),
        "noise": noise,
        "noise_kind": pd.Categorical(kinds),
    }
    dtypes = {c["name"]: c.get("dtype") for c in vcols}
    for name, v in ctx.items():
        if dtypes.get(name) == "bool":
            cols[name] = pd.array(np.where(np.isnan(v), None, v == 1), dtype="boolean")
        else:
            cols[name] = v
    for head in list(stats):
        st = stats.pop(head)
        cols[f"{head}_n"] = st.n_appearances.astype(np.float32)
        for score in SCORE_NAMES:
            if heads[head].get(SCORE_STATS[score]) is not None:
                cols[f"{head}_{score}"] = getattr(st, score)
        del st
    return pd.DataFrame(cols, copy=False)  # no block consolidation: no second copy of the scores
