"""Streaming per-sample statistics of one head: the engine behind every per-sample score.

A run can hold tens of millions of rows, so scores are never computed from one big table.
:class:`SampleStats` keeps, for every sample, a few running sums and the state needed for
order-dependent scores (forgetting events, learned epochs), and is fed one chunk of rows at a
time **in training order** (chunks ordered by ``(epoch, step)``; rows inside a chunk in any order).
Memory is O(number of samples), independent of the number of rows.

The public score functions in :mod:`trainstats.analysis.scores` are this class fed a single
chunk, so the streaming path and the reference definitions cannot drift apart.

Inputs are float arrays with NaN meaning null (a recorded ``null`` or a stat the run did not
record); ``correct`` is given as 1.0 / 0.0 / NaN.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

__all__ = ["STATS", "SampleStats", "sort_chunk"]

#: the stats a head's running state can hold (``docs/store.md``, value columns)
STATS: tuple[str, ...] = ("loss", "gold_prob", "correct", "margin")

_UNSEEN = -1  # state code: no appearance with a defined ``correct`` yet


def sort_chunk(index: np.ndarray, epoch: np.ndarray, step: np.ndarray) -> np.ndarray:
    """Permutation ordering rows by (sample index, epoch, step), stable for exact ties."""
    return np.lexsort((step, epoch, index))


def _moved(a: np.ndarray, positions: np.ndarray, n_new: int, fill) -> np.ndarray:
    out = np.full(n_new, fill, a.dtype)
    out[positions] = a
    return out


def _add_grouped(target: np.ndarray, idx: np.ndarray, values: np.ndarray, unique: bool) -> None:
    if unique:
        target[idx] += values
    else:
        np.add.at(target, idx, values)


@dataclass
class _Sums:
    """Per-sample count ``n`` and sum ``s`` of the defined values; with ``spread``, also the running
    mean ``mu`` and the sum of squared deviations from it ``m2`` (for the variance ``m2 / n``).

    ``m2`` is updated chunk by chunk with Chan, Golub and LeVeque's pairwise merge (1979; Welford's
    update when a chunk brings one value): per sample the chunk's own count ``n_b``, mean ``m_b``
    and ``M2_b = sum (v - m_b)^2`` (passes over the chunk: the mean, its correction by the mean
    deviation, the squares), then with ``d = m_b - mu``
    ``mu += d n_b / (n + n_b)`` and ``m2 += M2_b + d^2 n n_b / (n + n_b)``. Unlike ``ss/n - mean^2``
    this loses no digits when the values are nearly equal (p = 0.99 a hundred times gives exactly 0),
    and any split of the rows into chunks gives the same result up to rounding.
    """

    n: np.ndarray
    s: np.ndarray
    mu: np.ndarray | None = None
    m2: np.ndarray | None = None

    @classmethod
    def zeros(cls, n: int, spread: bool = False) -> "_Sums":
        z = (lambda: np.zeros(n, np.float64)) if spread else (lambda: None)  # noqa: E731
        return cls(np.zeros(n, np.int32), np.zeros(n, np.float64), z(), z())

    def arrays(self) -> tuple[str, ...]:
        return ("n", "s") + (("mu", "m2") if self.m2 is not None else ())

    def add(self, idx: np.ndarray, values: np.ndarray, unique: bool) -> None:
        """Add values of rows ``idx`` (ascending when not ``unique``); NaN values are skipped."""
        ok = ~np.isnan(values)
        if ok.all():
            i, v = idx, values
        elif not ok.any():
            return
        else:
            i, v = idx[ok], values[ok]
        if self.m2 is not None:
            self._merge_spread(i, v, unique)
        if unique:
            self.n[i] += 1
        else:
            np.add.at(self.n, i, 1)
        _add_grouped(self.s, i, v, unique)

    def _merge_spread(self, i: np.ndarray, v: np.ndarray, unique: bool) -> None:
        if unique:   # one value per sample: Welford's update
            u, n_b, mean_b, m2_b = i, 1.0, v, 0.0
        else:
            starts = np.flatnonzero(np.r_[True, i[1:] != i[:-1]])
            u = i[starts]
            n_b = np.diff(np.r_[starts, len(i)]).astype(np.float64)
            counts = n_b.astype(np.int64)
            mean_b = np.add.reduceat(v, starts) / n_b
            mean_b += np.add.reduceat(v - np.repeat(mean_b, counts), starts) / n_b   # corrected mean
            dev = v - np.repeat(mean_b, counts)
            m2_b = np.add.reduceat(dev * dev, starts)
        n_a = self.n[u].astype(np.float64)
        total = n_a + n_b
        delta = mean_b - self.mu[u]
        self.mu[u] += delta * (n_b / total)
        self.m2[u] += m2_b + delta * delta * (n_a * n_b / total)

    def mean(self) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.n > 0, self.s / np.maximum(self.n, 1), np.nan)

    def std(self) -> np.ndarray:
        """Population standard deviation ``sqrt(m2 / n)`` (NaN without a value)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.n > 0, np.sqrt(np.maximum(self.m2, 0.0) / np.maximum(self.n, 1)), np.nan)


class SampleStats:
    """Running per-sample statistics of one head over ``n_samples`` samples (dense indices 0..n-1).

    Feed chunks with :meth:`update` in training order; read results with the ``*`` properties.
    Every result is a float64 array of shape ``[n_samples]``; NaN means undefined (null).
    ``stats``: the stats this head records (default all of :data:`STATS`); the others take no memory
    and their scores are NaN (a ``joint`` head with only ``correct`` needs a third of the state).
    """

    def __init__(self, n_samples: int, *, stats: Sequence[str] = STATS):
        if not isinstance(n_samples, (int, np.integer)) or n_samples < 0:
            raise ValueError(f"n_samples must be a non-negative int; received {n_samples!r}")
        unknown = sorted(set(stats) - set(STATS))
        if unknown:
            raise ValueError(f"stats must be among {STATS}; received {unknown}")
        n = int(n_samples)
        self.n_samples = n
        self.stats = tuple(st for st in STATS if st in stats)
        size = {st: n if st in self.stats else 0 for st in STATS}
        self.loss = _Sums.zeros(size["loss"])
        self.margin = _Sums.zeros(size["margin"])
        self.gold_prob = _Sums.zeros(size["gold_prob"], spread=True)
        self.correct = _Sums.zeros(size["correct"])
        self._last = np.full(n, _UNSEEN, np.int8)
        self._forget = np.zeros(n, np.int32)
        self._first_learned = np.full(n, -1, np.int32)
        self._for_good = np.full(n, -1, np.int32)

    def grow(self, positions: np.ndarray, n_new: int) -> None:
        """Re-index to ``n_new`` samples: old sample ``i`` moves to ``positions[i]``; the rest start empty."""
        for sums in self._tracked():
            for attr in sums.arrays():
                setattr(sums, attr, _moved(getattr(sums, attr), positions, n_new, 0))
        for attr, fill in (("_last", _UNSEEN), ("_forget", 0), ("_first_learned", -1), ("_for_good", -1)):
            setattr(self, attr, _moved(getattr(self, attr), positions, n_new, fill))
        self.n_samples = int(n_new)

    def keep(self, mask: np.ndarray) -> None:
        """Drop the samples where ``mask`` is False (e.g. registered ids that never appeared)."""
        for sums in self._tracked():
            for attr in sums.arrays():
                setattr(sums, attr, getattr(sums, attr)[mask])
        for attr in ("_last", "_forget", "_first_learned", "_for_good"):
            setattr(self, attr, getattr(self, attr)[mask])
        self.n_samples = int(mask.sum())

    def _tracked(self) -> list[_Sums]:
        return [getattr(self, st) for st in self.stats]

    def _result(self, stat: str, compute) -> np.ndarray:
        return compute() if stat in self.stats else np.full(self.n_samples, np.nan)

    # ------------------------------------------------------------------ feeding
    def update(
        self,
        index: np.ndarray,
        epoch: np.ndarray,
        step: np.ndarray,
        *,
        loss: np.ndarray | None = None,
        gold_prob: np.ndarray | None = None,
        correct: np.ndarray | None = None,
        margin: np.ndarray | None = None,
    ) -> None:
        """Add one chunk of rows (any order inside the chunk; chunks must come in training order)."""
        order = sort_chunk(index, epoch, step)
        take = lambda a: None if a is None else np.asarray(a, np.float64)[order]  # noqa: E731
        idx = np.asarray(index)[order]
        self.update_sorted(idx, np.asarray(epoch)[order], loss=take(loss), gold_prob=take(gold_prob),
                           correct=take(correct), margin=take(margin))

    def update_sorted(
        self,
        idx: np.ndarray,
        epoch: np.ndarray,
        *,
        loss: np.ndarray | None = None,
        gold_prob: np.ndarray | None = None,
        correct: np.ndarray | None = None,
        margin: np.ndarray | None = None,
        unique: bool | None = None,
    ) -> None:
        """:meth:`update` for rows already ordered by (index, epoch, step) (see :func:`sort_chunk`)."""
        if len(idx) == 0:
            return
        if unique is None:
            unique = bool(len(idx) < 2 or np.all(idx[1:] != idx[:-1]))
        for stat, values in (("loss", loss), ("margin", margin), ("gold_prob", gold_prob), ("correct", correct)):
            if values is None:
                continue
            if stat not in self.stats:
                raise ValueError(f"this SampleStats does not track {stat!r} (stats={self.stats}); received its values")
            getattr(self, stat).add(idx, values, unique)
        if correct is not None:
            self._transitions(idx, epoch, correct, unique)

    def _transitions(self, idx: np.ndarray, epoch: np.ndarray, correct: np.ndarray, unique: bool = False) -> None:
        ok = ~np.isnan(correct)
        if not ok.all():
            idx, epoch, correct = idx[ok], epoch[ok], correct[ok]
        if len(idx) == 0:
            return
        c = (correct > 0.5).astype(np.int8)
        if unique:
            self._transitions_once(idx, epoch, c)
            return
        first = np.empty(len(idx), bool)
        first[0] = True
        np.not_equal(idx[1:], idx[:-1], out=first[1:])
        last = np.empty(len(idx), bool)
        last[-1] = True
        last[:-1] = first[1:]
        prev = np.empty(len(idx), np.int8)
        prev[1:] = c[:-1]
        prev[first] = self._last[idx[first]]
        # forgetting: correct at the previous appearance, incorrect now
        forgot = idx[(prev == 1) & (c == 0)]
        if len(forgot):
            u, cnt = np.unique(forgot, return_counts=True)
            self._forget[u] += cnt
        # first learned: first correct appearance ever
        learned = c == 1
        li, le = idx[learned], epoch[learned]
        if len(li):
            head = np.empty(len(li), bool)
            head[0] = True
            np.not_equal(li[1:], li[:-1], out=head[1:])
            li, le = li[head], le[head]
            new = self._first_learned[li] < 0
            self._first_learned[li[new]] = le[new]
        # learned for good: start of the final unbroken run of correct appearances
        starts = learned & (prev != 1)
        si, se = idx[starts], epoch[starts]
        if len(si):
            tail = np.empty(len(si), bool)
            tail[-1] = True
            np.not_equal(si[1:], si[:-1], out=tail[:-1])
            self._for_good[si[tail]] = se[tail]
        self._for_good[idx[last & (c == 0)]] = -1
        self._last[idx[last]] = c[last]

    def _transitions_once(self, idx: np.ndarray, epoch: np.ndarray, c: np.ndarray) -> None:
        """:meth:`_transitions` for a chunk in which each sample appears once (rows in any order)."""
        prev = self._last[idx]
        learned = c == 1
        self._forget[idx[(prev == 1) & ~learned]] += 1
        li, le = idx[learned], epoch[learned]
        new = self._first_learned[li] < 0
        self._first_learned[li[new]] = le[new]
        starts = learned & (prev != 1)
        self._for_good[idx[starts]] = epoch[starts]
        self._for_good[idx[~learned]] = -1
        self._last[idx] = c

    # ------------------------------------------------------------------ results
    @property
    def n_appearances(self) -> np.ndarray:
        """Appearances with a defined ``correct`` (or loss when correct is absent) per sample."""
        counts = [getattr(self, st).n for st in ("correct", "loss") if st in self.stats]
        if not counts:
            return np.zeros(self.n_samples)
        return (np.maximum(*counts) if len(counts) == 2 else counts[0]).astype(np.float64)

    @property
    def csl(self) -> np.ndarray:
        return self._result("loss", lambda: np.where(self.loss.n > 0, self.loss.s, np.nan))

    @property
    def mean_loss(self) -> np.ndarray:
        return self._result("loss", self.loss.mean)

    @property
    def aum(self) -> np.ndarray:
        return self._result("margin", self.margin.mean)

    @property
    def confidence(self) -> np.ndarray:
        return self._result("gold_prob", self.gold_prob.mean)

    @property
    def variability(self) -> np.ndarray:
        return self._result("gold_prob", self.gold_prob.std)

    @property
    def correctness(self) -> np.ndarray:
        return self._result("correct", self.correct.mean)

    @property
    def forgetting_events(self) -> np.ndarray:
        seen = self._last != _UNSEEN
        never = seen & (self._first_learned < 0)
        out = self._forget.astype(np.float64)
        out[never] = np.inf
        out[~seen] = np.nan
        return out

    @property
    def first_learned_epoch(self) -> np.ndarray:
        out = np.where(self._first_learned >= 0, self._first_learned, np.inf).astype(np.float64)
        out[self._last == _UNSEEN] = np.nan
        return out

    @property
    def learned_for_good_epoch(self) -> np.ndarray:
        out = np.where(self._for_good >= 0, self._for_good, np.inf).astype(np.float64)
        out[self._last == _UNSEEN] = np.nan
        return out

    @property
    def final_correct(self) -> np.ndarray:
        return np.where(self._last == _UNSEEN, np.nan, self._last).astype(np.float64)
