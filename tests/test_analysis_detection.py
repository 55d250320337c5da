"""Detector evaluation: AUROC, AUPRC, P@k (with ties), calibrated cut-off, evaluate_detectors edge cases."""
from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest

from trainstats.analysis import (
    DIRECTIONS,
    SCORE_NAMES,
    auroc,
    auroc_ci,
    average_precision,
    average_ranks,
    calibrated_cutoff,
    evaluate_detectors,
    precision_at_k,
    roc_curve,
    suspicion,
)


def brute_auroc(y, s):
    pos = [v for v, t in zip(s, y) if t]
    neg = [v for v, t in zip(s, y) if not t]
    wins = sum((p > n) + 0.5 * (p == n) for p, n in itertools.product(pos, neg))
    return wins / (len(pos) * len(neg))


def test_auroc_by_hand_with_ties():
    assert auroc([0, 1, 0, 1], [0.1, 0.9, 0.5, 0.5]) == 0.875
    assert auroc([1, 0], [0.5, 0.5]) == 0.5  # a pure tie is chance
    assert auroc([1, 1, 0, 0], [2, 2, 1, 1]) == 1.0
    assert auroc([1, 1, 0, 0], [1, 1, 2, 2]) == 0.0


def test_auroc_equals_pairwise_count_and_rank_formula():
    rng = np.random.default_rng(0)
    for _ in range(20):
        n = int(rng.integers(2, 40))
        y = rng.random(n) < 0.4
        if y.all() or not y.any():
            continue
        s = rng.integers(0, 5, n).astype(float)  # many ties
        r = average_ranks(s)[y].sum()
        by_ranks = (r - y.sum() * (y.sum() + 1) / 2) / (y.sum() * (~y).sum())
        assert auroc(y, s) == pytest.approx(brute_auroc(y, s))
        assert auroc(y, s) == pytest.approx(by_ranks)


def brute_delong_se(y, s):
    """DeLong's variance from its definition: placements by all pairwise comparisons (O(n^2))."""
    y, s = np.asarray(y, bool), np.asarray(s, float)
    x, z = s[y], s[~y]
    psi = (x[:, None] > z[None, :]) + 0.5 * (x[:, None] == z[None, :])
    v10, v01 = psi.mean(axis=1), psi.mean(axis=0)
    return math.sqrt(v10.var(ddof=1) / len(x) + v01.var(ddof=1) / len(z))


def test_auroc_ci_by_hand():
    # noisy {0.9, 0.4}, clean {0.6, 0.1}: V10 = (1, 1/2), V01 = (1/2, 1), AUROC 3/4,
    # Var = S10/2 + S01/2 = 0.125/2 + 0.125/2 = 0.125, SE = 0.35355; 0.75 -+ 1.95996 * SE, clipped
    auc, lo, hi = auroc_ci([1, 1, 0, 0], [0.9, 0.4, 0.6, 0.1])
    assert auc == 0.75
    assert lo == pytest.approx(0.75 - 1.959964 * math.sqrt(0.125), abs=1e-6) and hi == 1.0
    # ties: noisy {0.5, 0.5}, clean {0.5, 0.1}: V10 = (3/4, 3/4), V01 = (1/2, 1); Var = 0 + 0.125/2
    auc, lo, hi = auroc_ci([1, 1, 0, 0], [0.5, 0.5, 0.5, 0.1])
    assert auc == 0.75 and lo == pytest.approx(0.75 - 1.959964 * 0.25, abs=1e-6)
    assert auroc_ci([1, 1, 0, 0], [0.9, 0.4, 0.6, 0.1], level=0.5)[1] == pytest.approx(0.75 - 0.674490 * math.sqrt(0.125), abs=1e-6)
    # perfect separation: zero width; one sample of a class: no interval
    assert auroc_ci([1, 1, 0, 0], [4, 3, 2, 1]) == (1.0, 1.0, 1.0)
    auc, lo, hi = auroc_ci([1, 0, 0], [0.9, 0.4, 0.6])
    assert auc == 1.0 and math.isnan(lo) and math.isnan(hi)
    with pytest.raises(ValueError, match="level must be in"):
        auroc_ci([1, 0], [1, 0], level=95)


def test_auroc_ci_matches_pairwise_delong_with_ties():
    rng = np.random.default_rng(3)
    for n in (7, 40, 200):
        y = rng.random(n) < 0.4
        y[:2], y[2:4] = True, False
        s = rng.integers(0, 6, n).astype(float) + y  # many ties
        auc, lo, hi = auroc_ci(y, s)
        se = brute_delong_se(y, s)
        assert auc == pytest.approx(brute_auroc(y, s))
        assert (hi - lo) == pytest.approx(min(1, auc + 1.959964 * se) - max(0, auc - 1.959964 * se), abs=1e-6)


def test_auroc_ci_covers_the_true_auroc_about_95_percent_of_the_time():
    # binormal scores, noisy ~ N(1, 1), clean ~ N(0, 1): true AUROC = Phi(1 / sqrt(2)) = 0.7602
    rng = np.random.default_rng(0)
    true = 0.5 * (1 + math.erf(0.5))
    hits = 0
    reps = 400
    for _ in range(reps):
        y = np.r_[np.ones(100, bool), np.zeros(100, bool)]
        s = np.r_[rng.normal(1, 1, 100), rng.normal(0, 1, 100)]
        _, lo, hi = auroc_ci(y, s)
        hits += lo <= true <= hi
    assert 0.91 <= hits / reps <= 0.98, hits / reps


def test_auroc_handles_inf_and_single_class():
    assert auroc([1, 0, 0], [np.inf, 1.0, 2.0]) == 1.0
    assert math.isnan(auroc([1, 1], [0.1, 0.2]))
    assert math.isnan(auroc([0, 0], [0.1, 0.2]))


def test_average_precision_by_hand():
    # thresholds .9 (P=1, R=.5) .8 (P=.5) .7 (P=2/3, R=1) -> .5*1 + .5*2/3
    assert average_precision([1, 0, 1, 0], [0.9, 0.8, 0.7, 0.1]) == pytest.approx(0.5 + 1 / 3)
    assert average_precision([1, 1, 0], [3, 2, 1]) == 1.0
    assert average_precision([1, 1], [0.3, 0.1]) == 1.0  # every sample noisy
    assert math.isnan(average_precision([0, 0], [0.3, 0.1]))  # no positive: undefined


def test_average_precision_ties_are_one_threshold():
    # all tied: one threshold with precision = base rate, recall 1
    assert average_precision([1, 0, 0, 0], [1, 1, 1, 1]) == 0.25
    # tie between a positive and a negative at the top: P = 1/2 at R = 1/2, then 2/3 at R = 1
    assert average_precision([1, 0, 1], [2, 2, 1]) == pytest.approx(0.5 * 0.5 + 0.5 * 2 / 3)
    # the result does not depend on row order inside the tie
    assert average_precision([0, 1, 1], [2, 2, 1]) == average_precision([1, 0, 1], [2, 2, 1])


def test_precision_at_k_ties_pro_rata():
    assert precision_at_k([1, 0, 1, 0], [0.9, 0.5, 0.5, 0.1]) == 0.75
    assert precision_at_k([1, 1, 0, 0], [4, 3, 2, 1]) == 1.0
    assert precision_at_k([1, 0, 0, 0], [1, 1, 1, 1]) == 0.25
    assert precision_at_k([1, 0, 1, 0], [4, 3, 2, 1], k=3) == pytest.approx(2 / 3)
    assert math.isnan(precision_at_k([0, 0], [1, 2]))
    with pytest.raises(ValueError, match="k must be an int"):
        precision_at_k([1, 0], [1, 2], k=5)


def test_roc_curve_endpoints():
    fpr, tpr = roc_curve([1, 0, 1, 0], [4, 3, 2, 1])
    assert fpr.tolist() == [0, 0, 0.5, 0.5, 1]
    assert tpr.tolist() == [0, 0.5, 0.5, 1, 1]


def test_input_validation():
    with pytest.raises(ValueError, match="equal length"):
        auroc([1, 0], [0.1])
    with pytest.raises(ValueError, match="NaN"):
        auroc([1, 0], [np.nan, 0.1])
    with pytest.raises(ValueError, match="boolean or 0/1"):
        auroc([2, 0], [0.3, 0.1])
    with pytest.raises(ValueError, match="unknown score"):
        suspicion("nope", [1.0])


def test_directions_cover_every_score_and_flip_low_is_noisy():
    assert set(DIRECTIONS) == set(SCORE_NAMES)
    assert suspicion("aum", [2.0, -1.0]).tolist() == [-2.0, 1.0]
    assert suspicion("csl", [2.0]).tolist() == [2.0]


def test_calibrated_cutoff_by_hand():
    # 4 noisy with scores 10, 20, 30, 40; clean 0..9
    y = np.r_[np.ones(4, bool), np.zeros(10, bool)]
    s = np.r_[[10.0, 20.0, 30.0, 40.0], np.arange(10.0)]
    out = calibrated_cutoff(y, s, recall_target=1.0, seed=3)
    perm = np.random.default_rng(3).permutation(np.flatnonzero(y))
    cal, ev = perm[:2], perm[2:]
    assert out["cutoff"] == s[cal].min()
    assert out["n_calibration"] == 2 and out["n_evaluation"] == 2
    assert out["recall"] == (s[ev] >= out["cutoff"]).mean()
    assert out["fpr"] == 0.0  # every clean score is below 10
    assert out["eval_base_rate"] == pytest.approx(2 / 12)
    too_few = calibrated_cutoff([1, 0, 0], [1.0, 0.0, 0.5])
    assert math.isnan(too_few["cutoff"])
    with pytest.raises(ValueError, match="recall_target"):
        calibrated_cutoff(y, s, recall_target=0.0)


def _table(noise, kinds, csl, aum=None):
    d = {"noise": noise, "noise_kind": pd.Categorical(kinds), "csl": csl}
    if aum is not None:
        d["aum"] = aum
    return pd.DataFrame(d)


def test_evaluate_detectors_per_kind_and_nan_scores():
    t = _table([True, True, False, False, False, True],
               ["label", "swap", None, None, None, "label"],
               [5.0, 1.0, 0.5, 0.2, np.nan, 4.0],
               aum=[np.nan] * 6)
    det, msgs = evaluate_detectors(t, group_by=())
    assert set(det["score"]) == {"csl"}
    assert any("aum skipped: no sample has a defined value" in m for m in msgs)
    row = det[det["noise_kind"] == "all"].iloc[0]
    assert row["n"] == 5 and row["n_noisy"] == 3  # the NaN sample left out
    assert row["auroc"] == pytest.approx(brute_auroc([1, 1, 0, 0, 1], [5, 1, 0.5, 0.2, 4]))
    assert row["base_rate"] == pytest.approx(0.6)
    swap = det[det["noise_kind"] == "swap"].iloc[0]
    assert swap["n"] == 3 and swap["n_noisy"] == 1 and swap["auroc"] == 1.0


def test_evaluate_detectors_reports_the_delong_interval():
    rng = np.random.default_rng(1)
    noise = rng.random(300) < 0.3
    table = pd.DataFrame({"noise": noise, "noise_kind": np.where(noise, "label", None),
                          "csl": rng.normal(size=300) + noise})
    det, _ = evaluate_detectors(table, group_by=())
    row = det[det["score"] == "csl"].iloc[0]
    auc, lo, hi = auroc_ci(noise, table["csl"].to_numpy())
    assert (row["auroc"], row["auroc_ci_low"], row["auroc_ci_high"]) == pytest.approx((auc, lo, hi))
    assert row["auroc_se"] == pytest.approx(brute_delong_se(noise, table["csl"].to_numpy()))


def test_evaluate_detectors_nothing_noisy_is_a_message_not_a_nan_table():
    det, msgs = evaluate_detectors(_table([False] * 3, [None] * 3, [1.0, 2.0, 3.0]), group_by=())
    assert det.empty
    assert msgs == ["detection skipped for all samples: no sample is flagged noisy"]
    det, msgs = evaluate_detectors(_table([True] * 2, ["label"] * 2, [1.0, 2.0]), group_by=())
    assert det.empty and "every sample is flagged noisy" in msgs[0]
    with pytest.raises(ValueError, match="lacks column"):
        evaluate_detectors(pd.DataFrame({"csl": [1.0]}))
