"""Per-sample memorization scores: pure functions over long-format rows (one row per appearance).

Every function takes 1-D arrays of equal length ``n_rows`` — ``sample`` (any integer sample id,
e.g. ``sample_key``), the stat the score needs, and for order-dependent scores ``epoch`` and
``step`` (training order is ``(epoch, step)``) — and returns a ``pandas.Series`` of shape
``[n_samples]`` indexed by the sorted distinct sample ids. NaN in an input means null (skipped);
a sample without any defined value scores NaN. All of them are :class:`SampleStats` fed one chunk,
the same code that streams 25 M-row runs in :func:`trainstats.analysis.analyze_run`.

"Appearance" = one row of the training split: the sample's forward pass in one batch.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import pandas as pd

from trainstats.analysis.accumulate import SampleStats

__all__ = [
    "SCORE_NAMES",
    "SCORE_STATS",
    "SCORE_UNITS",
    "cumulative_sample_loss",
    "mean_loss",
    "area_under_margin",
    "confidence",
    "variability",
    "correctness",
    "forgetting_events",
    "first_learned_epoch",
    "learned_for_good_epoch",
    "final_correctness",
]

#: every per-sample score, in the column order of ``scores.parquet``
SCORE_NAMES: tuple[str, ...] = (
    "csl", "mean_loss", "aum", "confidence", "variability", "correctness",
    "forgetting_events", "first_learned_epoch", "learned_for_good_epoch", "final_correct",
)

#: the per-head stat (``docs/store.md``, value columns) each score is computed from
SCORE_STATS: dict[str, str] = {
    "csl": "loss", "mean_loss": "loss", "aum": "margin", "confidence": "gold_prob", "variability": "gold_prob",
    "correctness": "correct", "forgetting_events": "correct", "first_learned_epoch": "correct",
    "learned_for_good_epoch": "correct", "final_correct": "correct",
}

#: what each score measures and in which unit (axis labels, docs/analysis.md)
SCORE_UNITS: dict[str, str] = {
    "csl": "sum of training losses (nats)",
    "mean_loss": "mean training loss (nats)",
    "aum": "mean margin (logits)",
    "confidence": "mean gold probability (0-1)",
    "variability": "std of gold probability (0-0.5)",
    "correctness": "fraction of appearances correct",
    "forgetting_events": "forgetting events (count)",
    "first_learned_epoch": "first correct epoch",
    "learned_for_good_epoch": "epoch learned for good",
    "final_correct": "correct at last appearance (0/1)",
}


def _array(name: str, values, n: int | None, *, dtype=np.float64) -> np.ndarray:
    try:
        arr = np.asarray(values, dtype=dtype)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"`{name}` must be a 1-D numeric array; received {type(values).__name__}") from exc
    if arr.ndim != 1:
        raise ValueError(f"`{name}` must be 1-D; received shape {arr.shape}")
    if n is not None and len(arr) != n:
        raise ValueError(f"`{name}` has {len(arr)} rows; expected {n} (the length of `sample`)")
    return arr


def _run(sample, *, epoch=None, step=None, check: Callable[[np.ndarray], None] | None = None,
         **values) -> tuple[np.ndarray, SampleStats]:
    s = np.asarray(sample)
    if s.ndim != 1:
        raise ValueError(f"`sample` must be 1-D; received shape {s.shape}")
    n = len(s)
    keys, inverse = np.unique(s, return_inverse=True)
    ep = np.zeros(n, np.int64) if epoch is None else _array("epoch", epoch, n, dtype=np.int64)
    st = np.arange(n, dtype=np.int64) if step is None else _array("step", step, n, dtype=np.int64)
    arrays = {k: _array(k, v, n) for k, v in values.items()}
    for name, arr in arrays.items():
        if check is not None:
            check(arr)
        if name == "correct":
            bad = ~np.isnan(arr) & (arr != 0) & (arr != 1)
            if bad.any():
                raise ValueError(f"`correct` must hold 0/1/True/False or NaN; received {arr[bad][0]!r}")
    stats = SampleStats(len(keys))
    stats.update(inverse.reshape(-1), ep, st, **arrays)
    return keys, stats


def _series(keys: np.ndarray, values: np.ndarray, name: str) -> pd.Series:
    return pd.Series(values, index=pd.Index(keys, name="sample"), name=name)


def _nonneg(arr: np.ndarray) -> None:
    if np.any(arr < 0):
        raise ValueError(f"loss must be >= 0 (nats); received a minimum of {np.nanmin(arr)!r}")


def _prob(arr: np.ndarray) -> None:
    if np.any((arr < 0) | (arr > 1)):
        raise ValueError(f"gold_prob must lie in [0, 1]; received values in [{np.nanmin(arr)}, {np.nanmax(arr)}]")


def cumulative_sample_loss(sample, loss) -> pd.Series:
    """Cumulative sample loss (CSL): ``CSL_i = sum_{t in T_i} loss_{i,t}``.

    ``T_i`` are all recorded training appearances of sample ``i`` (every step it was in a batch).
    Range [0, inf) nats; **high = memorized / likely noisy**: a mislabelled sample keeps a high
    loss until the network memorizes it. Samples with more appearances sum more terms; use
    :func:`mean_loss` when appearance counts differ. Reference: Ravikumar et al. 2025, "Towards
    Memorization Estimation: Fast, Formal and Free" (ICML 2025).

    >>> cumulative_sample_loss([7, 7, 9], [0.5, 0.25, 2.0]).tolist()
    [0.75, 2.0]
    """
    keys, st = _run(sample, check=_nonneg, loss=loss)
    return _series(keys, st.csl, "csl")


def mean_loss(sample, loss) -> pd.Series:
    """Mean training loss: ``CSL_i / |T_i|`` (nats, [0, inf)); **high = likely noisy**.

    >>> mean_loss([7, 7, 9], [0.5, 0.25, 2.0]).tolist()
    [0.375, 2.0]
    """
    keys, st = _run(sample, check=_nonneg, loss=loss)
    return _series(keys, st.mean_loss, "mean_loss")


def area_under_margin(sample, margin) -> pd.Series:
    """Area under the margin (AUM): ``AUM_i = (1/|T_i|) sum_t (z_{i,t}[y_i] - max_{k != y_i} z_{i,t}[k])``.

    The mean over appearances of the recorded margin (gold logit minus the largest other logit).
    Range (-inf, inf); **low = likely mislabelled** (the network keeps preferring another class).
    Reference: Pleiss et al. 2020, "Identifying Mislabeled Data using the Area Under the Margin
    Ranking" (NeurIPS 2020).

    >>> area_under_margin([1, 1, 2], [2.0, -1.0, -3.0]).tolist()
    [0.5, -3.0]
    """
    keys, st = _run(sample, margin=margin)
    return _series(keys, st.aum, "aum")


def confidence(sample, gold_prob) -> pd.Series:
    """Data-map confidence: ``mu_i = (1/|T_i|) sum_t p_t(y_i | x_i)``, range [0, 1]; **low = hard / noisy**.

    Reference: Swayamdipta et al. 2020, "Dataset Cartography" (EMNLP 2020), eq. 1 (they average
    over epochs; with one appearance per epoch this is the same).

    >>> confidence([1, 1], [0.2, 0.6]).tolist()
    [0.4]
    """
    keys, st = _run(sample, check=_prob, gold_prob=gold_prob)
    return _series(keys, st.confidence, "confidence")


def variability(sample, gold_prob) -> pd.Series:
    """Data-map variability: ``sigma_i = sqrt((1/|T_i|) sum_t (p_t(y_i|x_i) - mu_i)^2)`` (population std).

    Range [0, 0.5]; high = ambiguous (the model changes its mind). Reference: Swayamdipta et al.
    2020, eq. 2. Zero for a sample seen once.

    >>> variability([1, 1], [0.2, 0.6]).round(6).tolist()
    [0.2]
    """
    keys, st = _run(sample, check=_prob, gold_prob=gold_prob)
    return _series(keys, st.variability, "variability")


def correctness(sample, correct) -> pd.Series:
    """Data-map correctness: fraction of appearances predicted correctly, range [0, 1]; **low = noisy**.

    Reference: Swayamdipta et al. 2020, section 2.

    >>> correctness([1, 1, 1, 2], [1, 0, 1, 0]).round(4).tolist()
    [0.6667, 0.0]
    """
    keys, st = _run(sample, correct=correct)
    return _series(keys, st.correctness, "correctness")


def forgetting_events(sample, correct, *, epoch=None, step=None) -> pd.Series:
    """Forgetting events: ``F_i = #{t : correct_{i,prev(t)} = 1 and correct_{i,t} = 0}``.

    ``prev(t)`` is the sample's previous appearance in training order ``(epoch, step)`` (rows with
    null ``correct`` are skipped). Range {0, 1, ...} or **inf**: a sample never predicted correctly
    at any appearance is *never learned* and gets ``inf``, as Toneva et al. 2019 ("An Empirical Study
    of Example Forgetting during Deep Neural Network Learning", ICLR 2019) rank unlearned examples as
    the most forgettable. NaN: the sample has no defined ``correct``. **High = noisy / hard.**
    Without ``epoch``/``step`` the row order is the training order.

    >>> forgetting_events([1, 1, 1, 1, 2], [1, 0, 1, 0, 0]).tolist()
    [2.0, inf]
    """
    keys, st = _run(sample, epoch=epoch, step=step, correct=correct)
    return _series(keys, st.forgetting_events, "forgetting_events")


def first_learned_epoch(sample, correct, *, epoch, step=None) -> pd.Series:
    """Epoch of the first appearance predicted correctly. **Later = noisy.**

    ``inf`` = never learned (seen, never correct: it would be learned "after the end of
    training"); NaN = no appearance with a defined ``correct``.

    >>> first_learned_epoch([1, 1, 2], [0, 1, 0], epoch=[0, 1, 0]).tolist()
    [1.0, inf]
    """
    keys, st = _run(sample, epoch=epoch, step=step, correct=correct)
    return _series(keys, st.first_learned_epoch, "first_learned_epoch")


def learned_for_good_epoch(sample, correct, *, epoch, step=None) -> pd.Series:
    """Epoch from which the sample is predicted correctly at **every** later appearance.

    The epoch of the first appearance of the final unbroken run of correct appearances; ``inf`` when
    the last appearance is incorrect (not learned for good by the end of training); NaN = no
    appearance with a defined ``correct``. **Later = noisy** (memorized late). Cf. Toneva et al.
    2019 ("unforgettable" examples have it equal to their first-learned epoch).

    >>> learned_for_good_epoch([1, 1, 1, 1, 2], [1, 0, 1, 1, 0], epoch=[0, 1, 2, 3, 0]).tolist()
    [2.0, inf]
    """
    keys, st = _run(sample, epoch=epoch, step=step, correct=correct)
    return _series(keys, st.learned_for_good_epoch, "learned_for_good_epoch")


def final_correctness(sample, correct, *, epoch=None, step=None) -> pd.Series:
    """Correctness at the last appearance in training order: 1.0, 0.0, or NaN (never defined).

    **0 = noisy** (not fitted by the end of training).

    >>> final_correctness([1, 1, 2], [0, 1, 0]).tolist()
    [1.0, 0.0]
    """
    keys, st = _run(sample, epoch=epoch, step=step, correct=correct)
    return _series(keys, st.final_correct, "final_correct")
