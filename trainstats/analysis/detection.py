"""How well does each score find the known-noisy samples? AUROC (with a DeLong CI), AUPRC, P@k, a calibrated cut-off.

Every score is turned into a *suspicion* — high means memorized / likely noisy — by the sign in
:data:`DIRECTIONS`, the one place where a score's direction is fixed. Noisy samples (the run's
``noise`` flag) are the positive class. Samples whose score is undefined (NaN) are left out of
that score's evaluation (``n`` says how many were used). ``inf`` (never learned, see
:mod:`trainstats.analysis.scores`) ranks as the most (or, for low-is-noisy scores, least) suspicious.
"""
from __future__ import annotations

from statistics import NormalDist

import numpy as np
import pandas as pd

__all__ = [
    "DIRECTIONS",
    "suspicion",
    "average_ranks",
    "auroc",
    "auroc_ci",
    "average_precision",
    "precision_at_k",
    "roc_curve",
    "calibrated_cutoff",
    "evaluate_detectors",
]

#: score -> +1 if a high score means noisy/memorized, -1 if a low score does
DIRECTIONS: dict[str, int] = {
    "csl": +1,
    "mean_loss": +1,
    "aum": -1,
    "confidence": -1,
    "variability": +1,
    "correctness": -1,
    "forgetting_events": +1,
    "first_learned_epoch": +1,
    "learned_for_good_epoch": +1,
    "final_correct": -1,
}


def suspicion(score: str, values) -> np.ndarray:
    """``DIRECTIONS[score] * values`` (float64): high = suspected noisy / memorized."""
    if score not in DIRECTIONS:
        raise ValueError(f"unknown score {score!r}; expected one of {sorted(DIRECTIONS)}")
    return np.asarray(values, np.float64) * DIRECTIONS[score]


def _check(y, s) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y)
    s = np.asarray(s, np.float64)
    if y.ndim != 1 or s.ndim != 1 or len(y) != len(s):
        raise ValueError(f"labels and scores must be 1-D of equal length; received shapes {y.shape} and {s.shape}")
    if np.isnan(s).any():
        raise ValueError("scores contain NaN; drop undefined samples first")
    if y.dtype != bool:
        if not np.isin(y, (0, 1)).all():
            raise ValueError(f"labels must be boolean or 0/1; received values {np.unique(y)[:5]!r}")
        y = y.astype(bool)
    return y, s


def average_ranks(values) -> np.ndarray:
    """1-based ranks, ties sharing the average of the ranks they span (like ``scipy.stats.rankdata``).

    >>> average_ranks([10, 20, 20, 30]).tolist()
    [1.0, 2.5, 2.5, 4.0]
    """
    v = np.asarray(values, np.float64)
    _, inverse, counts = np.unique(v, return_inverse=True, return_counts=True)
    upper = np.cumsum(counts)  # rank of the last member of each tie group
    avg = upper - (counts - 1) / 2.0
    return avg[inverse.reshape(-1)]


def _curve(ys: np.ndarray, ss: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cumulative (tp, fp) at the end of each tie group of descending-sorted scores."""
    distinct = np.empty(len(ss), bool)
    distinct[-1] = True
    np.not_equal(ss[1:], ss[:-1], out=distinct[:-1])
    tps = np.cumsum(ys)[distinct].astype(np.float64)
    fps = (np.flatnonzero(distinct) + 1) - tps
    return tps, fps


def _sorted_desc(y: np.ndarray, s: np.ndarray, order: np.ndarray | None = None):
    if order is None:
        order = np.argsort(-s)  # order inside a tie group does not matter: ties are one threshold
    return y[order], s[order]


def _auroc_sorted(tps: np.ndarray, fps: np.ndarray) -> float:
    n_pos, n_neg = tps[-1], fps[-1]
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    t0, f0 = np.r_[0.0, tps[:-1]], np.r_[0.0, fps[:-1]]
    return float(np.sum((fps - f0) * (tps + t0)) / (2.0 * n_pos * n_neg))


def _ap_sorted(tps: np.ndarray, fps: np.ndarray) -> float:
    n_pos = tps[-1]
    if n_pos == 0:
        return float("nan")
    precision = tps / (tps + fps)
    return float(np.sum(np.diff(np.r_[0.0, tps / n_pos]) * precision))


def _patk_sorted(tps: np.ndarray, fps: np.ndarray, k: int) -> float:
    if k == 0:
        return float("nan")
    seen = tps + fps  # rows up to the end of each tie group
    g = int(np.searchsorted(seen, k))  # the tie group holding the k-th row
    above_n = seen[g - 1] if g else 0.0
    above_tp = tps[g - 1] if g else 0.0
    group_n, group_tp = seen[g] - above_n, tps[g] - above_tp
    return float((above_tp + group_tp * (k - above_n) / group_n) / k)


def auroc(y, s) -> float:
    """Area under the ROC curve: ``(R_+ - n_+(n_+ + 1)/2) / (n_+ n_-)`` (Mann-Whitney U).

    ``R_+`` is the sum of the average ranks (:func:`average_ranks`; a tie between a noisy and a
    clean sample counts one half) of the positives; computed as the trapezoidal area under the
    ROC curve with one point per tie group, which is the same number. 0.5 = chance, 1 = every
    noisy sample scores above every clean one. NaN when either class is empty.

    >>> auroc([0, 1, 0, 1], [0.1, 0.9, 0.5, 0.5])
    0.875
    """
    y, s = _check(y, s)
    if len(y) == 0:
        return float("nan")
    return _auroc_sorted(*_curve(*_sorted_desc(y, s)))


def _delong_se_sorted(tps: np.ndarray, fps: np.ndarray, auc: float) -> float:
    """DeLong standard error of the AUROC from the cumulative (tp, fp) of descending tie groups."""
    n_pos, n_neg = tps[-1], fps[-1]
    if n_pos < 2 or n_neg < 2:
        return float("nan")
    pos_g = np.diff(np.r_[0.0, tps])
    neg_g = np.diff(np.r_[0.0, fps])
    v10 = (n_neg - fps + 0.5 * neg_g) / n_neg  # each positive of group g: P(clean below) + P(tie)/2
    v01 = (tps - pos_g + 0.5 * pos_g) / n_pos  # each negative of group g: P(noisy above) + P(tie)/2
    s10 = float(np.sum(pos_g * (v10 - auc) ** 2) / (n_pos - 1))
    s01 = float(np.sum(neg_g * (v01 - auc) ** 2) / (n_neg - 1))
    return float(np.sqrt(max(s10 / n_pos + s01 / n_neg, 0.0)))


def auroc_ci(y, s, *, level: float = 0.95) -> tuple[float, float, float]:
    """AUROC with its DeLong confidence interval: ``(auroc, low, high)``.

    DeLong, DeLong & Clarke-Pearson 1988 ("Comparing the areas under two or more correlated
    receiver operating characteristic curves: a nonparametric approach", Biometrics 44). With the
    placement values of each noisy sample ``V10_i = P(s_clean < s_i) + P(s_clean = s_i)/2`` and of
    each clean sample ``V01_j = P(s_noisy > s_j) + P(s_noisy = s_j)/2``, ``AUROC = mean(V10) =
    mean(V01)`` and ``Var = S10 / n_+ + S01 / n_-`` (``S10``, ``S01`` the sample variances, ddof 1).
    The interval is ``AUROC ± z SE`` with ``z`` the normal quantile of ``(1 + level) / 2`` (1.96 for
    95 %), clipped to [0, 1]; it is the normal approximation, so with few samples of a class or an
    AUROC near 0 or 1 it is only indicative (perfect separation gives a zero-width interval).
    Computed in O(n log n) from one sort (tie groups as in :func:`auroc`). NaN bounds when either
    class has fewer than 2 samples.

    >>> [round(v, 4) for v in auroc_ci([1, 1, 0, 0], [0.9, 0.4, 0.6, 0.1])]
    [0.75, 0.057, 1.0]
    """
    y, s = _check(y, s)
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1); received {level!r}")
    if len(y) == 0:
        return float("nan"), float("nan"), float("nan")
    tps, fps = _curve(*_sorted_desc(y, s))
    auc = _auroc_sorted(tps, fps)
    lo, hi = _interval(auc, _delong_se_sorted(tps, fps, auc), level)
    return auc, lo, hi


def _interval(auc: float, se: float, level: float) -> tuple[float, float]:
    if not np.isfinite(se):
        return float("nan"), float("nan")
    z = NormalDist().inv_cdf(0.5 + level / 2.0)
    return max(0.0, auc - z * se), min(1.0, auc + z * se)


def average_precision(y, s) -> float:
    """Average precision (area under the precision-recall curve), noisy = positive.

    ``AP = sum_j (R_j - R_{j-1}) P_j`` over the distinct score thresholds in descending order, a
    tie group entering as one threshold (as ``sklearn.metrics.average_precision_score``). The
    chance level is the base rate ``n_+ / n``. NaN when there is no positive.

    >>> round(average_precision([1, 0, 1, 0], [0.9, 0.8, 0.7, 0.1]), 4)
    0.8333
    """
    y, s = _check(y, s)
    if not y.any():
        return float("nan")
    return _ap_sorted(*_curve(*_sorted_desc(y, s)))


def precision_at_k(y, s, k: int | None = None) -> float:
    """Fraction of noisy samples among the ``k`` most suspicious (default ``k`` = number of noisy).

    A tie group straddling the k-th place contributes its positives pro rata (the expected value
    under a random order of the tied samples), so the result does not depend on row order.
    NaN when ``k`` is 0.

    >>> precision_at_k([1, 0, 1, 0], [0.9, 0.5, 0.5, 0.1])
    0.75
    """
    y, s = _check(y, s)
    if k is None:
        k = int(y.sum())
    if not isinstance(k, (int, np.integer)) or k < 0 or k > len(y):
        raise ValueError(f"k must be an int in [0, {len(y)}]; received {k!r}")
    if k == 0:
        return float("nan")
    return _patk_sorted(*_curve(*_sorted_desc(y, s)), int(k))


def roc_curve(y, s) -> tuple[np.ndarray, np.ndarray]:
    """ROC points ``(fpr, tpr)``, one per distinct threshold, starting at (0, 0)."""
    y, s = _check(y, s)
    tps, fps = _curve(*_sorted_desc(y, s))
    return np.r_[0.0, fps / max(fps[-1], 1)], np.r_[0.0, tps / max(tps[-1], 1)]


def calibrated_cutoff(y, s, *, recall_target: float = 0.99, seed: int = 0) -> dict[str, float]:
    """Learn a flagging threshold from half of the known-noisy samples, report it on the rest.

    The AUM "threshold samples" idea (Pleiss et al. 2020, section 3): samples known to be
    mislabelled tell where mislabelled samples score. Here the noisy samples are split at random
    (``numpy.random.default_rng(seed)``) into a calibration half ``C`` (``ceil(n_+/2)``) and an
    evaluation half ``E``. The cut-off is ``t = quantile(s[C], 1 - recall_target)``, the empirical
    quantile (numpy ``method="inverted_cdf"``: an actual calibration score, so ``inf`` scores stay
    usable), i.e. the suspicion at or above which about ``recall_target`` of ``C`` lies (Pleiss: the
    99th percentile of the threshold samples' AUM). Samples with ``s >= t`` are flagged. Reported
    on ``E`` plus all clean samples (never used for calibration): precision, recall (on ``E``),
    false-positive rate (on clean), and the evaluation base rate ``|E| / (|E| + n_-)``.

    Returns a dict with keys ``cutoff, n_calibration, n_evaluation, precision, recall, fpr,
    eval_base_rate``; values NaN when fewer than 2 noisy or no clean samples exist.
    """
    y, s = _check(y, s)
    if not 0.0 < recall_target <= 1.0:
        raise ValueError(f"recall_target must be in (0, 1]; received {recall_target!r}")
    pos = np.flatnonzero(y)
    neg = np.flatnonzero(~y)
    nan = float("nan")
    out = dict(cutoff=nan, n_calibration=0.0, n_evaluation=0.0, precision=nan, recall=nan, fpr=nan,
               eval_base_rate=nan)
    if len(pos) < 2 or len(neg) == 0:
        return out
    perm = np.random.default_rng(seed).permutation(pos)
    n_cal = (len(pos) + 1) // 2
    cal, ev = perm[:n_cal], perm[n_cal:]
    t = float(np.quantile(s[cal], 1.0 - recall_target, method="inverted_cdf"))
    tp = int((s[ev] >= t).sum())
    fp = int((s[neg] >= t).sum())
    out.update(cutoff=t, n_calibration=float(len(cal)), n_evaluation=float(len(ev)),
               precision=tp / (tp + fp) if tp + fp else nan, recall=tp / len(ev), fpr=fp / len(neg),
               eval_base_rate=len(ev) / (len(ev) + len(neg)))
    return out


def _kind_array(col: pd.Series) -> np.ndarray:
    """Noise kinds as an object array with "" for null (cheap for categoricals)."""
    if isinstance(col.dtype, pd.CategoricalDtype):
        names = np.append(np.asarray(col.cat.categories, dtype=object).astype(str), "")
        return names[col.cat.codes.to_numpy()]  # code -1 (null) picks the trailing ""
    return col.astype(object).where(col.notna(), "").astype(str).to_numpy(dtype=object)


def evaluate_detectors(scores: pd.DataFrame, *, recall_target: float = 0.99, seed: int = 0,
                       group_by: tuple[str, ...] = ("run", "head")) -> tuple[pd.DataFrame, list[str]]:
    """Evaluate every score column of a per-sample scores table against its ``noise`` flags.

    Args:
        scores: one row per sample (and head), with bool ``noise``, ``noise_kind`` and score columns
            named as in :data:`DIRECTIONS`; the ``group_by`` columns that exist split the evaluation.
        recall_target, seed: see :func:`calibrated_cutoff`.

    Returns:
        ``(table, messages)``: one row per group, score and noise kind (``"all"`` pools every kind;
        per kind, the positives are that kind's noisy samples and the negatives all clean ones);
        ``messages`` says which evaluations were skipped and why (never a row of NaN). Columns:
        ``score, direction, noise_kind, n, n_noisy, base_rate, auroc, auroc_se, auroc_ci_low,
        auroc_ci_high`` (DeLong, 95 %, see :func:`auroc_ci`), ``auprc, k, precision_at_k`` and the
        ``cutoff*`` columns of :func:`calibrated_cutoff`.
    """
    missing = {"noise"} - set(scores.columns)
    if missing:
        raise ValueError(f"scores table lacks column(s) {sorted(missing)}; has {list(scores.columns)}")
    keys = [c for c in group_by if c in scores.columns]
    rows, messages = [], []
    groups = scores.groupby(keys, sort=False, observed=True) if keys else [((), scores)]
    for gkey, g in groups:
        label = ", ".join(f"{k}={v}" for k, v in zip(keys, gkey if isinstance(gkey, tuple) else (gkey,)))
        noise = g["noise"].to_numpy(bool)
        kind_arr = _kind_array(g["noise_kind"]) if "noise_kind" in g else np.full(len(g), "", object)
        kind_names = sorted(k for k in set(kind_arr[noise]) if k)
        if not noise.any():
            messages.append(f"detection skipped for {label or 'all samples'}: no sample is flagged noisy")
            continue
        if noise.all():
            messages.append(f"detection skipped for {label or 'all samples'}: every sample is flagged noisy")
            continue
        for score in DIRECTIONS:
            if score not in g.columns:
                continue
            s_all = suspicion(score, g[score].to_numpy(np.float64, na_value=np.nan))
            defined = ~np.isnan(s_all)
            if not defined.any():
                messages.append(f"{label}: score {score} skipped: no sample has a defined value")
                continue
            order = np.argsort(-s_all)  # NaN last; one sort serves every noise kind
            for kind in ["all"] + (kind_names if len(kind_names) > 1 else []):
                pos = noise if kind == "all" else noise & (kind_arr == kind)
                use = defined & (pos | ~noise)
                y, s = pos[use], s_all[use]
                if y.sum() == 0 or y.all():
                    messages.append(f"{label}: score {score}, noise kind {kind}: skipped: "
                                    f"{int(y.sum())} noisy and {int((~y).sum())} clean samples with a defined value")
                    continue
                o = order[use[order]]
                tps, fps = _curve(pos[o], s_all[o])
                auc = _auroc_sorted(tps, fps)
                se = _delong_se_sorted(tps, fps, auc)
                lo, hi = _interval(auc, se, 0.95)
                cut = calibrated_cutoff(y, s, recall_target=recall_target, seed=seed)
                rows.append({**dict(zip(keys, gkey if isinstance(gkey, tuple) else (gkey,))),
                             "score": score, "direction": DIRECTIONS[score], "noise_kind": kind,
                             "n": int(len(y)), "n_noisy": int(y.sum()), "base_rate": float(y.mean()),
                             "auroc": auc, "auroc_se": se, "auroc_ci_low": lo, "auroc_ci_high": hi,
                             "auprc": _ap_sorted(tps, fps),
                             "k": int(y.sum()), "precision_at_k": _patk_sorted(tps, fps, int(y.sum())),
                             "cutoff_recall_target": recall_target,
                             **{f"cutoff_{k}" if k != "cutoff" else k: v for k, v in cut.items()}})
    return pd.DataFrame(rows), messages
