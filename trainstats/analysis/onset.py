"""Onset of memorization: the epoch after which the network starts fitting its noise, from per-epoch signals.

Each rule watches a *memorization signal* ``m`` (rising = the network fits the noise) and the
held-out accuracy ``H``. With ``patience = p`` and ``min_delta = d``, the onset is the first epoch
``e`` (in epoch order; ``e + j`` is the ``j``-th recorded epoch after ``e``) such that

* ``m`` rose from ``e`` and stayed up for ``p`` epochs: ``m[e+j] - m[e] > d`` for every ``j = 1..p``
  (a flat step inside the window is allowed, a fall back to or below ``m[e]`` is not), and
* ``H`` stopped rising: ``max(H[e+1..e+p]) <= max(H[..e]) + d`` (no epoch after ``e`` in the window
  beats the best held-out accuracy so far by more than ``d``). Without held-out rows this
  condition is dropped.

The onset is known at epoch ``e + p`` (``Onset.detected_at``); ``e`` is the last epoch before the
rise, whose weights ``on_onset="restore"`` brings back. Rules (:data:`ONSET_RULES`):

* ``flags`` (needs noise flags): ``m`` = training accuracy of the noised samples against their
  noised labels (``accuracy``, ``split=train``, ``noise_group=noisy``, subset ``all``): it can only
  rise by memorizing labels that contradict what the clean data teach.
* ``loss`` (no flags, a real user's case): ``m = -noisy_mode_loss``, the mean loss of the high-loss
  component of the two-component loss mixture (:mod:`trainstats.analysis.mixture`), i.e. where the
  samples the network has not fitted sit. While the network learns what the clean data teach, the
  unfitted (mostly mislabelled) samples' losses grow; once it memorizes them they fall. Early in
  training the held-out condition keeps the rule quiet.

Inputs are signals tables in the long format of ``metrics.csv`` (``docs/analysis.md``): the live
monitor's ``signals.parquet`` or ``trainstats analyze``'s ``metrics.csv`` (the ``flags`` rule).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

__all__ = ["ONSET_RULES", "Onset", "OnsetRule", "check_onset_args", "find_onset", "onset_epoch", "onset_from_series",
           "memorization_series", "heldout_series"]


@dataclass(frozen=True)
class OnsetRule:
    """One onset rule: the memorization signal it watches (``sign`` * metric) and what it needs."""

    name: str
    metric: str
    noise_group: str
    sign: int
    needs_flags: bool
    description: str


#: the onset rules, by name (module docstring)
ONSET_RULES: dict[str, OnsetRule] = {
    "flags": OnsetRule("flags", "accuracy", "noisy", +1, True,
                       "noised samples' training accuracy against their noised labels rises for `patience` epochs "
                       "while held-out accuracy stays at or below its best"),
    "loss": OnsetRule("loss", "noisy_mode_loss", "all", -1, False,
                      "the loss of the loss mixture's high-loss (unfitted) component falls for `patience` epochs "
                      "while held-out accuracy stays at or below its best"),
}


@dataclass(frozen=True)
class Onset:
    """A detected onset: ``epoch`` (last epoch before the memorization signal rises), the epoch it was
    detected at (``epoch + patience`` recorded epochs), the rule, the head whose held-out accuracy was
    used, the settings, the held-out split, and the head the memorization signal came from."""

    epoch: int
    detected_at: int
    rule: str
    head: str
    patience: int
    min_delta: float
    heldout_split: str | None
    signal_head: str | None = None

    def to_json(self) -> dict:
        return asdict(self)


def onset_epoch(memorization: Sequence[float], heldout: Sequence[float] | None, *, patience: int = 2,
                min_delta: float = 0.0) -> int | None:
    """Index of the onset in per-epoch series (module docstring), or None.

    ``memorization[i]`` and ``heldout[i]`` are the values of the ``i``-th epoch (NaN: unknown, which
    breaks a rise); ``heldout`` None drops the held-out condition.

    >>> onset_epoch([0.1, 0.05, 0.04, 0.1, 0.2, 0.3], [0.5, 0.6, 0.7, 0.7, 0.69, 0.68], patience=2)
    2
    >>> onset_epoch([0.1, 0.2, 0.3], [0.5, 0.6, 0.7], patience=2) is None      # held-out still rising
    True
    """
    check_onset_args(patience, min_delta)
    m = np.asarray(memorization, np.float64)
    h = None if heldout is None else np.asarray(heldout, np.float64)
    if h is not None and len(h) != len(m):
        raise ValueError(f"memorization and heldout need one value per epoch; received {len(m)} and {len(h)}")
    for e in range(len(m) - patience):
        if not (m[e + 1:e + 1 + patience] - m[e] > min_delta).all():  # NaN compares False
            continue
        if h is not None:
            best = np.nanmax(h[:e + 1]) if np.isfinite(h[:e + 1]).any() else -np.inf
            if np.nanmax(np.r_[h[e + 1:e + 1 + patience], -np.inf]) > best + min_delta:
                continue
        return e
    return None


def check_onset_args(patience: int, min_delta: float) -> None:
    """Raise ValueError unless ``patience`` is an int >= 1 and ``min_delta`` a number >= 0."""
    if not isinstance(patience, (int, np.integer)) or isinstance(patience, bool) or patience < 1:
        raise ValueError(f"Invalid value for argument `patience`. Received: patience={patience!r}. "
                         "Expected an int >= 1.")
    if not isinstance(min_delta, (int, float)) or not min_delta >= 0:
        raise ValueError(f"Invalid value for argument `min_delta`. Received: min_delta={min_delta!r}. "
                         "Expected a number >= 0.")


def _series(table: pd.DataFrame, *, split: str, head: str, metric: str, noise_group: str) -> pd.Series:
    sel = table[(table["split"] == split) & (table["head"] == head) & (table["metric"] == metric)
                & (table["subset"] == "all") & (table["noise_group"] == noise_group)]
    return sel.groupby("epoch")["value"].last().sort_index()


def heldout_series(table: pd.DataFrame, head: str, split: str | None = None) -> tuple[pd.Series | None, str | None]:
    """Held-out accuracy per epoch of ``head`` (``split``: ``dev`` if present, else ``eval``) and the split."""
    splits = set(table["split"])
    if split is None:
        split = next((s for s in ("dev", "eval") if s in splits), None)
    if split is None:
        return None, None
    s = _series(table, split=split, head=head, metric="accuracy", noise_group="all")
    return (s if len(s) else None), split


def memorization_series(table: pd.DataFrame, rule: str, head: str) -> pd.Series:
    """The rule's memorization signal per epoch (``sign * value``; rising = memorizing)."""
    r = _rule(rule)
    return r.sign * _series(table, split="train", head=head, metric=r.metric, noise_group=r.noise_group)


def _rule(rule: str) -> OnsetRule:
    if rule not in ONSET_RULES:
        raise ValueError(f"Invalid onset rule. Received: rule={rule!r}. Expected one of {sorted(ONSET_RULES)}.")
    return ONSET_RULES[rule]


def find_onset(table: pd.DataFrame, *, rule: str, head: str, patience: int = 2, min_delta: float = 0.0,
               heldout_split: str | None = None, signal_head: str | None = None) -> Onset | None:
    """Apply onset rule ``rule`` to ``head``'s signals in ``table`` (long metrics format).

    ``signal_head``: head whose memorization signal is read (default ``head``; e.g. ``loc`` for the
    ``loss`` rule when ``head`` is VarMisuse's ``joint``, which records no loss). Epochs are those with a
    memorization value; held-out values are aligned to them (an epoch without one is NaN). Returns
    None when no onset is found yet.
    """
    m = memorization_series(table, rule, signal_head or head)
    h, split = heldout_series(table, head, heldout_split)
    return onset_from_series(dict(zip(m.index.tolist(), m.tolist())),
                             None if h is None else dict(zip(h.index.tolist(), h.tolist())),
                             rule=rule, head=head, patience=patience, min_delta=min_delta, heldout_split=split,
                             signal_head=signal_head or head)


def onset_from_series(memorization: Mapping[int, float], heldout: Mapping[int, float] | None, *, rule: str,
                      head: str, patience: int = 2, min_delta: float = 0.0, heldout_split: str | None = None,
                      signal_head: str | None = None) -> Onset | None:
    """:func:`find_onset` on ``{epoch: value}`` series (``memorization`` already signed, rising =
    memorizing; the live monitor keeps its signals this way)."""
    check_onset_args(patience, min_delta)
    _rule(rule)
    epochs = sorted(memorization)
    if len(epochs) <= patience:
        return None
    h = None if not heldout else [heldout.get(e, np.nan) for e in epochs]
    e = onset_epoch([memorization[e] for e in epochs], h, patience=patience, min_delta=min_delta)
    if e is None:
        return None
    return Onset(int(epochs[e]), int(epochs[e + patience]), rule, head, int(patience), float(min_delta),
                 heldout_split if h is not None else None, signal_head or head)
