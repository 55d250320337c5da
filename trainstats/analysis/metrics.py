"""The study's run-level metrics: accuracy by noise group, generalization gap, Gini of the loss, sorted curves.

All functions are pure (arrays / DataFrames in, numbers / DataFrames out). Metrics tables are long
format: one row per ``(run, split, epoch, head, subset, noise_group, metric)`` with ``value`` and ``n``.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["NOISE_GROUPS", "always_no_bug", "gini", "gini_of_sorted", "mean_defined", "sorted_curve",
           "generalization_gap"]

#: the sample groups every metric is split into: all rows, rows of clean samples, rows of noisy samples
NOISE_GROUPS: tuple[str, ...] = ("all", "clean", "noisy")


def gini(values) -> float:
    """Gini coefficient of non-negative values (e.g. the per-sample training loss of one epoch).

    ``G = sum_i sum_j |x_i - x_j| / (2 n^2 mean(x))``, computed from the ascending sort as
    ``G = 2 sum_i i x_(i) / (n sum_i x_i) - (n + 1) / n`` (i = 1..n). Range [0, 1 - 1/n]:
    0 = every sample has the same loss; towards 1 = a few samples carry all the loss (the
    network fits most samples and a few, e.g. mislabelled ones, stay unfitted). Used on the
    per-sample loss by Arpit et al. 2017 ("A Closer Look at Memorization in Deep Networks") and by
    Rabin et al. 2023 ("Memorization and generalization in neural code intelligence models").
    NaN values are ignored; no values -> NaN; all values equal (including all zero) -> 0.0.

    >>> gini([1, 1, 1, 1])
    0.0
    >>> gini([0, 0, 0, 4])
    0.75
    """
    x = np.asarray(values, np.float64).ravel()
    x = x[~np.isnan(x)]
    if x.size and x.min() < 0:
        raise ValueError(f"gini needs non-negative values; received a minimum of {x.min()!r}")
    return gini_of_sorted(np.sort(x))


def gini_of_sorted(xs: np.ndarray) -> float:
    """:func:`gini` of values already sorted ascending, non-negative and free of NaN (no checks)."""
    n = xs.size
    if n == 0:
        return float("nan")
    total = xs.sum()
    if total == 0 or xs[0] == xs[-1]:
        return 0.0
    global _RANKS
    if len(_RANKS) < n:
        _RANKS = np.arange(1, max(n, 2 * len(_RANKS)) + 1, dtype=np.float64)
    # einsum, not np.dot: BLAS threads busy-wait badly on a loaded 2-core machine
    return float(2.0 * np.einsum("i,i->", _RANKS[:n], xs) / (n * total) - (n + 1.0) / n)


_RANKS = np.arange(1, 1025, dtype=np.float64)  # 1..n, grown on demand (gini is called once per epoch)


def mean_defined(values) -> tuple[float, int]:
    """``(mean, n)`` over the non-NaN values; ``(nan, 0)`` when there are none."""
    x = np.asarray(values, np.float64)
    ok = ~np.isnan(x)
    n = int(ok.sum())
    return (float(x[ok].mean()) if n else float("nan")), n


def sorted_curve(values, *, points: int = 101) -> pd.DataFrame:
    """The ascending-sorted per-sample values, resampled at ``points`` evenly spaced ranks.

    Returns columns ``fraction`` (rank / (n - 1), 0..1) and ``value`` (linear interpolation between
    neighbouring sorted values), so curves of runs with different sample counts overlay. NaN values
    are dropped; no values -> an empty frame.

    >>> sorted_curve([3.0, 1.0, 2.0], points=3)["value"].tolist()
    [1.0, 2.0, 3.0]
    """
    if points < 2:
        raise ValueError(f"points must be >= 2; received {points!r}")
    x = np.asarray(values, np.float64).ravel()
    x = np.sort(x[~np.isnan(x)])
    if x.size == 0:
        return pd.DataFrame({"fraction": pd.Series([], dtype=float), "value": pd.Series([], dtype=float)})
    frac = np.linspace(0.0, 1.0, points)
    if x.size == 1:
        return pd.DataFrame({"fraction": frac, "value": np.full(points, x[0])})
    return pd.DataFrame({"fraction": frac, "value": np.interp(frac * (x.size - 1), np.arange(x.size), x)})


def generalization_gap(metrics: pd.DataFrame, *, train: str = "train", held_out: str = "dev") -> pd.DataFrame:
    """Train accuracy minus held-out accuracy, per run, epoch, head, subset and noise group.

    Args:
        metrics: long metrics table with columns ``split, epoch, head, subset, noise_group, metric,
            value`` (and optionally ``run``); rows with ``metric == "accuracy"`` are used.

    Returns:
        Rows in the same long format with ``split = "train-dev"`` (``f"{train}-{held_out}"``) and
        ``metric = "generalization_gap"``, only where both splits have the accuracy. Positive = the
        model does better on what it trained on.
    """
    need = {"split", "epoch", "head", "subset", "noise_group", "metric", "value"}
    if not need <= set(metrics.columns):
        raise ValueError(f"metrics table lacks {sorted(need - set(metrics.columns))}; has {list(metrics.columns)}")
    acc = metrics[metrics["metric"] == "accuracy"]
    keys = [c for c in ("run", "epoch", "head", "subset", "noise_group") if c in acc.columns]
    a = acc[acc["split"] == train].set_index(keys)["value"]
    b = acc[acc["split"] == held_out].set_index(keys)["value"]
    both = a.index.intersection(b.index)
    gap = (a.loc[both] - b.loc[both]).rename("value").reset_index()
    gap["split"] = f"{train}-{held_out}"
    gap["metric"] = "generalization_gap"
    gap["n"] = np.nan
    return gap[[c for c in metrics.columns if c in gap.columns]]


def always_no_bug(metrics: pd.DataFrame) -> pd.DataFrame:
    """The trivial baseline: accuracy of a predictor that always answers "no bug".

    It is right on every bug-free row and wrong on every buggy one, so its accuracy is the bug-free
    share ``n_bug_free / (n_bug_free + n_buggy)`` of the rows on which the head's ``correct`` is
    defined (the ``n`` of the ``accuracy`` rows of subsets ``bug_free`` and ``buggy``). Defined only
    for heads scored on bug-free rows too (``n_bug_free + n_buggy == n_all``: VarMisuse ``loc`` and
    ``joint``, where "no bug" is pointing at slot 0; not ``rep``, which is undefined on bug-free
    rows) and only with a ``has_bug`` context column (the subsets).

    Args:
        metrics: long metrics table (``split, epoch, head, subset, noise_group, metric, value, n``,
            optionally ``run``).

    Returns:
        Rows in the same long format with ``metric = "always_no_bug"``, ``subset = "all"``, per run,
        split, epoch, head and noise group; ``n`` = rows it was measured on. A dev split half bug-free
        gives 0.5: an accuracy below it is worse than never reporting a bug.
    """
    need = {"split", "epoch", "head", "subset", "noise_group", "metric", "n"}
    if not need <= set(metrics.columns):
        raise ValueError(f"metrics table lacks {sorted(need - set(metrics.columns))}; has {list(metrics.columns)}")
    acc = metrics[metrics["metric"] == "accuracy"]
    keys = [c for c in ("run", "split", "epoch", "head", "noise_group") if c in acc.columns]
    n = acc.pivot_table(index=keys, columns="subset", values="n", aggfunc="sum", observed=True)
    if not {"all", "bug_free", "buggy"} <= set(n.columns):
        return pd.DataFrame(columns=list(metrics.columns))
    # a head scored on bug-free rows at all (in this run and split): rep never is
    scored = n["bug_free"].notna().groupby(level=[k for k in keys if k in ("run", "split", "head")]).transform("any")
    n = n.fillna(0)
    ok = scored & (n["all"] > 0) & (n["bug_free"] + n["buggy"] == n["all"])
    out = (n.loc[ok, "bug_free"] / n.loc[ok, "all"]).rename("value").reset_index()
    out["n"] = n.loc[ok, "all"].to_numpy()
    out["subset"] = "all"
    out["metric"] = "always_no_bug"
    return out[[c for c in metrics.columns if c in out.columns]]
