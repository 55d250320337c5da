"""Analyse one run directory out of core: per-sample scores, per-epoch metrics, loss samples, curves.

One streaming pass per split over its epoch partitions (oldest first): each epoch is read with only
the needed columns, its rows sorted by ``(sample, step)``, fed to one :class:`SampleStats` per head
and summarised into per-epoch metrics. Memory: O(samples + largest epoch).
"""
from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from trainstats.analysis.accumulate import SampleStats, _moved
from trainstats.analysis.columns import RunInfo, context_columns, discover_heads, run_info
from trainstats.analysis.epochs import epoch_metrics, keep_losses
from trainstats.analysis.metrics import sorted_curve
from trainstats.analysis.scores import SCORE_NAMES
from trainstats.store import Run
from trainstats.analysis.source import as_bool, as_float

__all__ = ["RunAnalysis", "analyze_run", "CURVE_SCORES"]

log = logging.getLogger(__name__)

#: per-sample scores whose sorted curve is drawn for held-out splits
CURVE_SCORES: tuple[str, ...] = ("mean_loss", "confidence", "correctness")
_NEEDS = {"csl": "loss", "mean_loss": "loss", "aum": "margin", "confidence": "gold_prob",
          "variability": "gold_prob", "correctness": "correct", "forgetting_events": "correct",
          "first_learned_epoch": "correct", "learned_for_good_epoch": "correct", "final_correct": "correct"}
_STATS = ("loss", "gold_prob", "correct", "margin")


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
        lacking = [stat for stat in _STATS if h.get(stat) is None]
        if lacking:
            skipped = [score for score, stat in _NEEDS.items() if stat in lacking]
            msgs.add(f"{label}: head {h.head}: no {', '.join(repr(s) for s in lacking)} column recorded; "
                     f"skipped: {', '.join(skipped)}")
    splits = src.splits()
    if split not in splits:
        msgs.add(f"{label}: no {split} rows; per-sample scores skipped")
    if not any(s != "train" for s in splits):
        msgs.add(f"{label}: no held-out (dev/eval) rows; generalization gap and held-out curves skipped")
    metric_rows: list[dict] = []
    loss_parts: list[pd.DataFrame] = []
    curve_parts: list[pd.DataFrame] = []
    scores = pd.DataFrame()
    for sp in splits:
        result = _scan_split(src, sp, heads, context, msgs, metric_rows, loss_parts if sp == "train" else None,
                             max_loss_samples, progress)
        keys, stats, noise, kinds, ctx = result
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
            scores = _scores_frame(src, keys, stats, noise, kinds, ctx, vcols, heads, msgs)
        del result, stats
    if splits and len(src.epochs(split)) == 1:
        msgs.add(f"{label}: only one {split} epoch recorded; variability and forgetting events use the "
                 "appearances inside that epoch only")
    metrics = pd.DataFrame(metric_rows, columns=["split", "epoch", "head", "subset", "noise_group", "metric",
                                                 "value", "n"])
    loss_samples = pd.concat(loss_parts, ignore_index=True) if loss_parts else \
        pd.DataFrame({"epoch": pd.Series([], dtype="int64"), "head": [], "noise_group": [], "loss": []})
    curves = pd.concat(curve_parts, ignore_index=True) if curve_parts else \
        pd.DataFrame(columns=["split", "head", "score", "noise_group", "fraction", "value"])
    units = {h: c.margin_unit for h, c in heads.items() if c.get("margin") is not None}
    return RunAnalysis(info, list(heads), scores, metrics, loss_samples, curves, list(msgs), units)


def _scan_split(src, sp, heads, context, msgs, metric_rows, loss_parts, max_loss, progress):
    epochs = src.epochs(sp)
    # sorted sample keys; the per-sample state grows when a chunk brings new ones (GREAT streams its
    # training set, so later epochs bring samples never seen before)
    keys = np.zeros(0, np.int64)
    n = len(keys)
    seen = np.zeros(n, bool)
    stats = {h: SampleStats(n) for h in heads}
    noise = np.zeros(n, bool)
    kind_code = np.full(n, -1, np.int32)
    kinds: list[str] = []
    ctx = {name: np.full(n, np.nan) for name in context.values()}
    present = src.columns()
    wanted = ["sample_key", "step", "noise", "noise_kind"] + [c for h in heads.values() for s in _STATS
                                                             if (c := h.get(s)) in present] + \
        [c for c in context.values() if c in present]
    has_bug = context.get("has_bug")
    defined: dict[tuple[str, str], bool] = {}
    columns = list(dict.fromkeys(wanted))
    tables = _prefetch(src, sp, epochs, columns)
    if progress:
        from tqdm import tqdm

        tables = tqdm(tables, total=len(epochs), desc=f"{src.path.name} {sp}", unit="epoch")
    for epoch, t in tables:
        if t.num_rows == 0:
            continue
        raw = t.column("sample_key").to_numpy()
        step = t.column("step").to_numpy()
        if len(step) < 2 or np.all(step[1:] >= step[:-1]):  # rows already in step order: one stable sort
            order = np.argsort(raw, kind="stable")
        else:
            order = np.lexsort((step, raw))
        sk = raw[order]
        new = _new_keys(keys, sk)
        if len(new):
            merged = np.sort(np.concatenate([keys, new]))
            positions = np.searchsorted(merged, keys)
            for st in stats.values():
                st.grow(positions, len(merged))
            noise, kind_code = _moved(noise, positions, len(merged), False), \
                _moved(kind_code, positions, len(merged), -1)
            ctx = {name: _moved(v, positions, len(merged), np.nan) for name, v in ctx.items()}
            seen = _moved(seen, positions, len(merged), False)
            keys = merged
        idx = np.searchsorted(keys, sk)  # sorted needles: cache-friendly
        seen[idx] = True
        unique = bool(len(idx) < 2 or np.all(idx[1:] != idx[:-1]))
        nz = as_bool(t.column("noise"))[order]
        if unique:
            noise[idx] |= nz
        else:
            np.logical_or.at(noise, idx, nz)
        if nz.any():
            kcol = pc.cast(t.column("noise_kind"), pa.string())
            for k in pc.unique(kcol).to_pylist():
                if k is not None and k not in kinds:
                    kinds.append(k)
            codes = np.asarray(pc.fill_null(pc.index_in(kcol, value_set=pa.array(kinds, pa.string())), -1)
                               .to_numpy())[order]
            kind_code[idx[codes >= 0]] = codes[codes >= 0]
        for name in ctx:
            if name in t.column_names:
                v = as_float(t.column(name), order)
                ok = ~np.isnan(v)
                ctx[name][idx[ok]] = v[ok]
        bug = as_float(t.column(has_bug), order) if has_bug in t.column_names else None
        ep = np.full(len(idx), epoch, np.int64)
        for hname, h in heads.items():
            vals = {s: as_float(t.column(h.get(s)), order) for s in _STATS if h.get(s) in t.column_names}
            stats[hname].update_sorted(idx, ep, unique=unique, **vals)
            for s, v in vals.items():
                defined[(hname, s)] = defined.get((hname, s), False) or bool((~np.isnan(v)).any())
            epoch_metrics(metric_rows, sp, epoch, hname, vals, nz, bug, idx, unique)
            if loss_parts is not None and "loss" in vals:
                keep_losses(loss_parts, epoch, hname, vals["loss"], nz, max_loss)
    for (hname, s), ok in defined.items():
        if not ok:
            msgs.add(f"{src.path.name}: head {hname}: '{s}' is null in every {sp} row; scores and metrics "
                     f"from it skipped")
    if not seen.all():  # registered ids without a row in this split
        for st in stats.values():
            st.keep(seen)
        keys, noise, kind_code = keys[seen], noise[seen], kind_code[seen]
        ctx = {name: v[seen] for name, v in ctx.items()}
    kind_arr = np.array(kinds + [None], dtype=object)[np.where(kind_code >= 0, kind_code, len(kinds))]
    return keys, stats, noise, kind_arr, ctx


def _prefetch(src, sp, epochs, columns):
    """Yield ``(epoch, table)`` in order, reading the next epoch in a thread while this one is processed."""
    if not epochs:
        return
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="trainstats-read") as pool:
        pending = pool.submit(src.scan, sp, epochs[0], columns)
        for i, epoch in enumerate(epochs):
            table = pending.result()
            if i + 1 < len(epochs):
                pending = pool.submit(src.scan, sp, epochs[i + 1], columns)
            yield epoch, table


def _new_keys(keys: np.ndarray, sorted_chunk: np.ndarray) -> np.ndarray:
    """Distinct keys of an ascending-sorted chunk that are not in the sorted ``keys``."""
    u = sorted_chunk
    if len(u) > 1:
        u = u[np.r_[True, u[1:] != u[:-1]]]
    if len(keys) and len(u):
        pos = np.minimum(np.searchsorted(keys, u), len(keys) - 1)
        u = u[keys[pos] != u]
    return u


def _scores_frame(src, keys, stats, noise, kinds, ctx, vcols, heads, msgs) -> pd.DataFrame:
    ids, missing = src.sample_ids(keys)
    if missing:
        msgs.add(f"{src.path.name}: {missing} of {len(keys)} samples have no sample_id (their ids were never "
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
            if heads[head].get(_NEEDS[score]) is not None:
                cols[f"{head}_{score}"] = getattr(st, score)
        del st
    return pd.DataFrame(cols, copy=False)  # no block consolidation: no second copy of the scores
