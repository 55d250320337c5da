"""The live monitor's signals: per-epoch memorization signals from the rows of one epoch, in memory.

:class:`LiveSignals` is the framework-free core of :class:`trainstats.keras.MemorizationMonitor` and
of the GREAT loop's ``--monitor``: a recorder hands it each batch's rows as numpy arrays (the same
columns it writes to the store), and at the end of an epoch it summarises them with the functions
``trainstats analyze`` runs over the Parquet, so a number seen live equals the number analysed later:

* :func:`trainstats.analysis.epochs.epoch_metrics`: ``accuracy`` and ``mean_loss`` per subset
  (``all``/``buggy``/``bug_free``) and noise group (``all``/``clean``/``noisy``), ``gini_loss``;
* the running per-sample state :class:`trainstats.analysis.SampleStats` over every training
  appearance so far, giving ``auroc_csl`` / ``auroc_aum``: :func:`trainstats.analysis.auroc` of the
  running CSL and AUM (directions from :data:`trainstats.analysis.DIRECTIONS`) against the flags, and
  ``newly_fitted``: the share of this epoch's samples whose first correct appearance is in this epoch;
* ``noisy_fraction_est`` and ``noisy_mode_loss``: :func:`trainstats.analysis.mixture.loss_mixture`
  on this epoch's per-sample loss (no flags needed): the estimated share of unfitted samples and
  their mean loss; with flags, ``noisy_fraction_flagged`` (the true share) beside them.

Rows of several noise kinds also get the noise groups ``noisy:<kind>`` (accuracy, mean loss, AUROCs).
The output is the long format of ``metrics.csv`` (``docs/analysis.md``): one row per ``(split, epoch,
head, subset, noise_group, metric)`` with ``value`` and ``n``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from trainstats.analysis.accumulate import SampleStats, _moved
from trainstats.analysis.columns import context_columns, discover_heads
from trainstats.analysis.detection import auroc, suspicion
from trainstats.analysis.epochs import epoch_metrics
from trainstats.analysis.mixture import loss_mixture

__all__ = ["EpochSignals", "LiveSignals", "SIGNAL_COLUMNS"]

#: columns of the signals table (the long format of analysis' ``metrics.csv``)
SIGNAL_COLUMNS: tuple[str, ...] = ("split", "epoch", "head", "subset", "noise_group", "metric", "value", "n")
_STATS = ("loss", "gold_prob", "correct", "margin")
#: per-sample losses the loss mixture is fitted on per epoch and head (every k-th in sample-key order)
MIXTURE_FIT_SAMPLES = 20_000


@dataclass
class EpochSignals:
    """One epoch's signals: the rows of the long table and the per-sample training losses for histograms.

    ``rows`` are dicts with the keys :data:`SIGNAL_COLUMNS`; ``losses[(head, group)]`` (group
    ``clean``/``noisy`` with flags, else ``all``) holds each training sample's mean loss in this
    epoch (nats, float32)."""

    epoch: int
    rows: list[dict]
    losses: dict[tuple[str, str], np.ndarray] = field(default_factory=dict)
    has_flags: bool = False

    @property
    def table(self) -> pd.DataFrame:
        """The rows as a DataFrame (columns :data:`SIGNAL_COLUMNS`)."""
        return pd.DataFrame(self.rows, columns=list(SIGNAL_COLUMNS))


def _as_float(values: Any) -> np.ndarray:
    """A column as float64 (bool -> 1.0/0.0), masked entries -> NaN."""
    if isinstance(values, np.ma.MaskedArray):
        out = np.asarray(values.data, np.float64).copy()
        out[np.ma.getmaskarray(values)] = np.nan
        return out
    return np.asarray(values, np.float64)


class LiveSignals:
    """Collect one epoch's rows per split, then compute that epoch's signals (module docstring).

    Args:
        value_columns: the run's value column declarations (``ValueColumn`` objects or their JSON
            dicts, as in ``run.json``); heads and the ``has_bug`` context column are found in them.

    Feed with :meth:`add`, then call :meth:`end_epoch` once per epoch (in training order). Memory:
    the rows of one epoch plus O(#training samples) running state.
    """

    def __init__(self, value_columns: Sequence[Any]):
        vcols = [c.to_json() if hasattr(c, "to_json") else dict(c) for c in value_columns]
        self.heads = discover_heads(vcols)
        self.has_bug = context_columns(vcols).get("has_bug")
        self._pending: dict[str, list[dict[str, np.ndarray]]] = {}
        self._keys = np.zeros(0, np.int64)                       # sorted training sample keys
        self._stats = {h: SampleStats(0) for h in self.heads}
        self._noise = np.zeros(0, bool)
        self._kind = np.zeros(0, object)
        self.kinds: list[str] = []

    # ------------------------------------------------------------------ feeding
    def add(self, split: str, *, sample_key, step, values: Mapping[str, Any], noise=None, noise_kind=None) -> None:
        """Hold one chunk of rows of the current epoch.

        Args:
            split: ``train``, ``dev`` or ``eval``.
            sample_key: int64 ``[n]``; step: int ``[n]`` or one int.
            values: ``{column name: [n] array}`` (masked or NaN = null), at least the heads' columns.
            noise: bool ``[n]`` or None (no flags: every row counts as clean);
            noise_kind: ``[n]`` kinds (None/"" for clean rows) or one str for all noisy rows.
        """
        keys = np.asarray(sample_key, np.int64).reshape(-1)
        n = len(keys)
        chunk = {"sample_key": keys, "step": np.broadcast_to(np.asarray(step, np.int64), (n,))}
        wanted = {c for h in self.heads.values() for s in _STATS if (c := h.get(s))} | {self.has_bug}
        for name in wanted:
            if name is not None and name in values:
                chunk[name] = _as_float(values[name]).reshape(-1)
        flags = np.zeros(n, bool) if noise is None else np.asarray(noise, bool).reshape(-1)
        chunk["noise"] = flags
        if isinstance(noise_kind, str) or noise_kind is None:
            kinds = np.where(flags, noise_kind or "", "").astype(object)
        else:
            kinds = np.array(["" if k is None else str(k) for k in noise_kind], dtype=object)
        chunk["noise_kind"] = kinds
        self._pending.setdefault(split, []).append(chunk)

    # ------------------------------------------------------------------ one epoch
    def end_epoch(self, epoch: int) -> EpochSignals:
        """Signals of the rows added since the last call (all of them tagged ``epoch``)."""
        rows: list[dict] = []
        pending, self._pending = self._pending, {}
        losses: dict[tuple[str, str], np.ndarray] = {}
        has_flags = False
        for split in sorted(pending, key=lambda s: (s != "train", s)):
            parts = pending[split]
            data = {k: np.concatenate([p[k] for p in parts]) if all(k in p for p in parts) else None
                    for k in parts[0]}
            data = {k: v for k, v in data.items() if v is not None}
            order = np.lexsort((data["step"], data["sample_key"]))
            data = {k: v[order] for k, v in data.items()}
            if split == "train":
                has_flags = bool(data["noise"].any())
                self._summarise_train(rows, losses, epoch, data)
            else:
                self._summarise(rows, split, epoch, data, *_local_index(data["sample_key"]))
        return EpochSignals(int(epoch), rows, losses, has_flags)

    def _head_values(self, head: str, data: dict) -> dict[str, np.ndarray]:
        h = self.heads[head]
        return {s: data[c] for s in _STATS if (c := h.get(s)) is not None and c in data}

    def _summarise(self, rows, split, epoch, data, idx, unique) -> None:
        noise, bug = data["noise"], data.get(self.has_bug) if self.has_bug else None
        kinds = sorted(set(data["noise_kind"][noise]) - {""})
        for head in self.heads:
            vals = self._head_values(head, data)
            epoch_metrics(rows, split, epoch, head, vals, noise, bug, idx, unique)
            if len(kinds) > 1:  # per kind: that kind's rows against the clean ones
                for kind in kinds:
                    keep = ~noise | (data["noise_kind"] == kind)
                    part: list[dict] = []
                    sub_idx, sub_unique = _local_index(data["sample_key"][keep])
                    epoch_metrics(part, split, epoch, head, {s: v[keep] for s, v in vals.items()}, noise[keep],
                                  None if bug is None else bug[keep], sub_idx, sub_unique)
                    rows.extend(dict(r, noise_group=f"noisy:{kind}") for r in part
                                if r["noise_group"] == "noisy" and r["metric"] != "gini_loss")

    def _summarise_train(self, rows, losses, epoch, data) -> None:
        self._grow(data["sample_key"])
        idx = np.searchsorted(self._keys, data["sample_key"])
        unique = bool(len(idx) < 2 or np.all(idx[1:] != idx[:-1]))
        self._summarise(rows, "train", epoch, data, idx, unique)
        nz = data["noise"]
        if unique:
            self._noise[idx] |= nz
        else:
            np.logical_or.at(self._noise, idx, nz)
        hit = nz & (data["noise_kind"] != "")
        self._kind[idx[hit]] = data["noise_kind"][hit]
        for k in sorted(set(data["noise_kind"][hit])):
            if k not in self.kinds:
                self.kinds.append(k)
        first = np.r_[True, idx[1:] != idx[:-1]] if len(idx) else np.zeros(0, bool)
        seen = idx[first]  # this epoch's samples
        flagged = self._noise[seen]
        ep = np.full(len(idx), epoch, np.int64)
        for head in self.heads:
            vals = self._head_values(head, data)
            st = self._stats[head]
            st.update_sorted(idx, ep, unique=unique, **vals)
            groups = [("all", slice(None))] + ([("clean", ~flagged), ("noisy", flagged)] if flagged.any() else [])
            if "correct" in vals:
                fl = st.first_learned_epoch[seen]
                for group, mask in groups:
                    f = fl[mask]
                    f = f[~np.isnan(f)]
                    if len(f):
                        rows.append(_row("train", epoch, head, group, "newly_fitted", float(np.mean(f == epoch)),
                                         len(f)))
            if "loss" in vals:
                # a cross-entropy computed in float32 can come out a few ulp below 0 for a fitted sample
                per_sample = np.maximum(_per_sample_mean(vals["loss"], first), 0.0)
                ok = ~np.isnan(per_sample)
                fit = loss_mixture(per_sample[ok], max_fit=MIXTURE_FIT_SAMPLES)
                if fit is not None:
                    rows.append(_row("train", epoch, head, "all", "noisy_fraction_est", fit.noisy_fraction, fit.n))
                    rows.append(_row("train", epoch, head, "all", "noisy_mode_loss", fit.noisy_mode_loss, fit.n))
                if flagged.any():
                    rows.append(_row("train", epoch, head, "all", "noisy_fraction_flagged",
                                     float(flagged[ok].mean()), int(ok.sum())))
                    losses[(head, "clean")] = per_sample[ok & ~flagged].astype(np.float32)
                    losses[(head, "noisy")] = per_sample[ok & flagged].astype(np.float32)
                else:
                    losses[(head, "all")] = per_sample[ok].astype(np.float32)
            self._running_aurocs(rows, epoch, head, st)

    def _running_aurocs(self, rows, epoch, head, st: SampleStats) -> None:
        if not self._noise.any() or self._noise.all():
            return
        for score, values in (("csl", st.csl), ("aum", st.aum)):
            s = suspicion(score, values)
            ok = ~np.isnan(s)
            for kind in ["all"] + (self.kinds if len(self.kinds) > 1 else []):
                pos = self._noise if kind == "all" else self._noise & (self._kind == kind)
                use = ok & (pos | ~self._noise)
                y = pos[use]
                if y.any() and not y.all():
                    rows.append(_row("train", epoch, head, "all" if kind == "all" else f"noisy:{kind}",
                                     f"auroc_{score}", auroc(y, s[use]), int(use.sum())))

    def _grow(self, sorted_keys: np.ndarray) -> None:
        u = sorted_keys[np.r_[True, sorted_keys[1:] != sorted_keys[:-1]]] if len(sorted_keys) else sorted_keys
        if len(self._keys):
            pos = np.minimum(np.searchsorted(self._keys, u), len(self._keys) - 1)
            u = u[self._keys[pos] != u]
        if not len(u):
            return
        merged = np.sort(np.concatenate([self._keys, u]))
        positions = np.searchsorted(merged, self._keys)
        for st in self._stats.values():
            st.grow(positions, len(merged))
        self._noise = _moved(self._noise, positions, len(merged), False)
        self._kind = _moved(self._kind, positions, len(merged), "")
        self._keys = merged


def _local_index(sorted_keys: np.ndarray) -> tuple[np.ndarray, bool]:
    """Dense sample index of key-sorted rows and whether every sample appears once."""
    if not len(sorted_keys):
        return np.zeros(0, np.int64), True
    first = np.r_[True, sorted_keys[1:] != sorted_keys[:-1]]
    return np.cumsum(first) - 1, bool(first.all())


def _per_sample_mean(values: np.ndarray, first: np.ndarray) -> np.ndarray:
    """Mean of each sample's rows (rows sorted by sample; ``first`` marks each sample's first row)."""
    starts = np.flatnonzero(first)
    ok = ~np.isnan(values)
    total = np.add.reduceat(np.where(ok, values, 0.0), starts) if len(starts) else np.zeros(0)
    count = np.add.reduceat(ok.astype(np.int64), starts) if len(starts) else np.zeros(0, np.int64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def _row(split, epoch, head, group, metric, value, n) -> dict:
    return dict(split=split, epoch=int(epoch), head=head, subset="all", noise_group=group, metric=metric,
                value=float(value), n=int(n))
