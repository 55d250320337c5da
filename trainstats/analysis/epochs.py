"""Per-epoch summaries of one chunk of rows: accuracy / mean loss by subset and noise group, the Gini
coefficient of the per-sample loss, and a sample of losses for the histograms."""
from __future__ import annotations

import numpy as np
import pandas as pd

from trainstats.analysis.metrics import gini_of_sorted

__all__ = ["epoch_metrics", "keep_losses", "loss_frame"]


def epoch_metrics(rows, sp, epoch, head, vals, noise, bug, idx, unique):
    """Accuracy and mean loss per (subset, noise group) via one bincount over 6 cells, and the Gini
    coefficient of the per-sample loss per noise group from one sort."""
    # cell = bug code (0 bug-free, 1 buggy, 2 unknown) * 2 + noisy
    if bug is None:
        cell = 4 + noise.astype(np.int64)
    else:
        cell = np.where(bug > 0.5, 3, 1).astype(np.int64) - (~noise)  # NaN > 0.5 is False: fixed below
        unknown = np.isnan(bug)
        if unknown.any():
            cell[unknown] = 4 + noise[unknown]
    subsets = [("all", slice(None))] + ([("buggy", 1), ("bug_free", 0)] if bug is not None else [])
    groups = (("all", slice(None)), ("clean", 0), ("noisy", 1))
    for metric, stat in (("accuracy", "correct"), ("mean_loss", "loss")):
        v = vals.get(stat)
        if v is None:
            continue
        ok = ~np.isnan(v)
        c_ok, v_ok = (cell, v) if ok.all() else (cell[ok], v[ok])
        cnt = np.bincount(c_ok, minlength=6).reshape(3, 2)
        tot = np.bincount(c_ok, weights=v_ok, minlength=6).reshape(3, 2)
        for subset, si in subsets:
            for group, gi in groups:
                c = int(cnt[si][..., gi].sum())
                if c:
                    rows.append(dict(split=sp, epoch=epoch, head=head, subset=subset, noise_group=group,
                                     metric=metric, value=float(tot[si][..., gi].sum() / c), n=c))
    loss = vals.get("loss")
    if loss is None:
        return
    ok = ~np.isnan(loss)
    if not ok.any():
        return
    every = bool(ok.all())
    if unique:
        per_sample, flag = (loss, noise) if every else (loss[ok], noise[ok])
    else:  # a sample seen several times in the epoch: its mean loss there
        i = idx[ok]
        starts = np.flatnonzero(np.r_[True, i[1:] != i[:-1]])
        per_sample = np.add.reduceat(loss[ok], starts) / np.diff(np.r_[starts, len(i)])
        flag = noise[ok][starts]
    clean, noisy = _sorted(per_sample[~flag]), _sorted(per_sample[flag])
    for group, x in (("all", _merge_sorted(clean, noisy)), ("clean", clean), ("noisy", noisy)):
        if len(x):
            rows.append(dict(split=sp, epoch=epoch, head=head, subset="all", noise_group=group,
                             metric="gini_loss", value=gini_of_sorted(x), n=int(len(x))))


def _sorted(x: np.ndarray) -> np.ndarray:
    """``np.sort(x)``; float64 values that are all float32 (recorded losses) sort as float32, twice as fast."""
    x32 = x.astype(np.float32)
    if np.array_equal(x32, x):
        return np.sort(x32).astype(np.float64)
    return np.sort(x)


def _merge_sorted(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Merge two ascending arrays (cheaper than sorting their concatenation again)."""
    if not len(b):
        return a
    if not len(a):
        return b
    out = np.empty(len(a) + len(b), np.result_type(a, b))
    pos_b = np.searchsorted(a, b, side="right") + np.arange(len(b))
    mask = np.ones(len(out), bool)
    mask[pos_b] = False
    out[pos_b] = b
    out[mask] = a
    return out


def keep_losses(parts, epoch, head, loss, noise, max_loss):
    """Keep at most ``max_loss`` losses per noise group: every k-th row in the order given.

    Callers give the rows in (approximately) sample-key order; keys are hashes of the sample ids, so
    this stride is a pseudo-random sample (and deterministic, with no random-number cost on 25 M
    rows). Appends ``(epoch, head, noise_group, float32 losses)`` to ``parts`` (see :func:`loss_frame`)."""
    for group, mask in (("clean", ~noise), ("noisy", noise)):
        v = loss[mask]
        v = v[~np.isnan(v)]
        if len(v) == 0:
            continue
        if len(v) > max_loss:
            v = v[:: -(-len(v) // max_loss)][:max_loss]
        parts.append((epoch, head, group, v.astype(np.float32)))


def loss_frame(parts) -> pd.DataFrame:
    """The ``loss_samples`` table (``epoch, head, noise_group, loss``) of :func:`keep_losses`' parts."""
    if not parts:
        return pd.DataFrame({"epoch": pd.Series([], dtype="int64"), "head": [], "noise_group": [], "loss": []})
    sizes = [len(p[3]) for p in parts]
    return pd.DataFrame({"epoch": np.repeat(np.array([p[0] for p in parts], np.int64), sizes),
                         "head": np.repeat(np.array([p[1] for p in parts], dtype=object), sizes),
                         "noise_group": np.repeat(np.array([p[2] for p in parts], dtype=object), sizes),
                         "loss": np.concatenate([p[3] for p in parts])})
