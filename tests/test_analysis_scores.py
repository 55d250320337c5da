"""Per-sample scores on hand-computed tiny tables, and streaming (chunked) == one-shot."""
from __future__ import annotations

import math

import numpy as np
import pytest

from trainstats.analysis import (
    SampleStats,
    area_under_margin,
    confidence,
    correctness,
    cumulative_sample_loss,
    final_correctness,
    first_learned_epoch,
    forgetting_events,
    learned_for_good_epoch,
    mean_loss,
    variability,
)

NAN = float("nan")
INF = float("inf")


def same(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert (math.isnan(x) and math.isnan(y)) or x == pytest.approx(y), (a, b)


# sample 10: appears 3x, sample 20: 2x, sample 30: 1x (its loss null)
SAMPLE = [10, 20, 10, 30, 20, 10]
EPOCH = [0, 0, 1, 1, 1, 2]
LOSS = [2.0, 1.0, 0.5, NAN, 3.0, 0.25]


def test_csl_and_mean_loss_by_hand():
    csl = cumulative_sample_loss(SAMPLE, LOSS)
    assert csl.index.tolist() == [10, 20, 30]
    same(csl.tolist(), [2.75, 4.0, NAN])
    same(mean_loss(SAMPLE, LOSS).tolist(), [2.75 / 3, 2.0, NAN])


def test_aum_is_mean_margin():
    same(area_under_margin(SAMPLE, [1.0, -2.0, 3.0, 0.5, NAN, -1.0]).tolist(), [1.0, -2.0, 0.5])


def test_confidence_variability_population_std():
    gp = [0.2, 0.9, 0.4, 0.5, 0.7, 0.6]
    same(confidence(SAMPLE, gp).tolist(), [0.4, 0.8, 0.5])
    # sample 10: values .2 .4 .6 -> population std sqrt(((.2)^2 + 0 + (.2)^2)/3)
    same(variability(SAMPLE, gp).tolist(), [math.sqrt(0.08 / 3), 0.1, 0.0])


def test_correctness_skips_null():
    same(correctness(SAMPLE, [1, 0, NAN, 1, 1, 0]).tolist(), [0.5, 0.5, 1.0])


def test_order_scores_follow_epoch_and_step_not_row_order():
    # one sample, rows given out of order: true order by (epoch, step) is C I C I C C
    sample = [1] * 6
    epoch = [2, 0, 1, 0, 1, 2]
    step = [50, 2, 20, 1, 10, 40]
    corr = [1, 0, 0, 1, 1, 1]  # by (epoch, step): (0,1)=1 (0,2)=0 (1,10)=1 (1,20)=0 (2,40)=1 (2,50)=1
    same(forgetting_events(sample, corr, epoch=epoch, step=step).tolist(), [2.0])
    same(first_learned_epoch(sample, corr, epoch=epoch, step=step).tolist(), [0.0])
    same(learned_for_good_epoch(sample, corr, epoch=epoch, step=step).tolist(), [2.0])
    same(final_correctness(sample, corr, epoch=epoch, step=step).tolist(), [1.0])


def test_never_learned_is_inf_and_unseen_is_nan():
    sample = [1, 1, 2, 2, 3]
    corr = [0, 0, 1, 0, NAN]
    epoch = [0, 1, 0, 1, 0]
    same(forgetting_events(sample, corr, epoch=epoch).tolist(), [INF, 1.0, NAN])
    same(first_learned_epoch(sample, corr, epoch=epoch).tolist(), [INF, 0.0, NAN])
    same(learned_for_good_epoch(sample, corr, epoch=epoch).tolist(), [INF, INF, NAN])
    same(final_correctness(sample, corr, epoch=epoch).tolist(), [0.0, 0.0, NAN])


def test_null_correct_does_not_break_a_streak():
    # C, null, I: the null appearance is skipped, so C -> I is one forgetting event
    same(forgetting_events([1, 1, 1], [1, NAN, 0]).tolist(), [1.0])


def test_learned_for_good_after_relapse():
    # I C C I C C C -> learned for good at the epoch of the 5th appearance
    corr = [0, 1, 1, 0, 1, 1, 1]
    same(learned_for_good_epoch([7] * 7, corr, epoch=list(range(7))).tolist(), [4.0])
    same(first_learned_epoch([7] * 7, corr, epoch=list(range(7))).tolist(), [1.0])
    same(forgetting_events([7] * 7, corr).tolist(), [1.0])


@pytest.mark.parametrize("chunks", [1, 2, 3, 7])
def test_streaming_in_chunks_equals_one_shot(chunks):
    rng = np.random.default_rng(chunks)
    n_samples, n_epochs = 40, 6
    rows = [(s, e) for e in range(n_epochs) for s in rng.permutation(n_samples)[:30]]
    # a few samples appear twice in an epoch
    rows += [(3, e) for e in range(n_epochs)] + [(5, 2)]
    rows.sort(key=lambda r: r[1])
    idx = np.array([r[0] for r in rows])
    ep = np.array([r[1] for r in rows])
    step = np.arange(len(rows)) + 1000 * ep
    loss = rng.exponential(1.0, len(rows))
    loss[rng.random(len(rows)) < 0.1] = np.nan
    corr = (rng.random(len(rows)) < 0.6).astype(float)
    corr[rng.random(len(rows)) < 0.1] = np.nan
    gp = rng.random(len(rows))
    margin = rng.normal(size=len(rows))
    one = SampleStats(n_samples)
    one.update(idx, ep, step, loss=loss, gold_prob=gp, correct=corr, margin=margin)
    many = SampleStats(n_samples)
    # chunk boundaries at epoch boundaries only (chunks must come in training order)
    bounds = np.unique(np.r_[0, np.searchsorted(ep, np.linspace(0, n_epochs, chunks + 1)[1:-1].round()), len(rows)])
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        perm = rng.permutation(np.arange(lo, hi))  # any order inside a chunk
        many.update(idx[perm], ep[perm], step[perm], loss=loss[perm], gold_prob=gp[perm], correct=corr[perm],
                    margin=margin[perm])
    for name in ("csl", "mean_loss", "aum", "confidence", "variability", "correctness", "forgetting_events",
                 "first_learned_epoch", "learned_for_good_epoch", "final_correct"):
        np.testing.assert_allclose(getattr(many, name), getattr(one, name), equal_nan=True, err_msg=name)
    # cross-check one order-dependent score against a plain loop
    for s in range(n_samples):
        seq = [c for i, c in zip(idx, corr) if i == s and not np.isnan(c)]  # rows are already in (epoch, step) order
        if not seq:
            assert np.isnan(one.forgetting_events[s])
            continue
        expected = INF if 1 not in seq else sum(a == 1 and b == 0 for a, b in zip(seq, seq[1:]))
        assert one.forgetting_events[s] == expected


def test_validation_messages():
    with pytest.raises(ValueError, match="loss must be >= 0"):
        cumulative_sample_loss([1], [-0.5])
    with pytest.raises(ValueError, match=r"`loss` has 1 rows; expected 2"):
        mean_loss([1, 2], [0.5])
    with pytest.raises(ValueError, match=r"gold_prob must lie in \[0, 1\]"):
        confidence([1], [1.5])
    with pytest.raises(ValueError, match="`correct` must hold 0/1"):
        correctness([1], [0.5])
    with pytest.raises(ValueError, match="must be 1-D"):
        mean_loss([[1]], [[0.5]])
    with pytest.raises(ValueError, match="n_samples"):
        SampleStats(-1)


def test_empty_input_gives_empty_series():
    assert len(cumulative_sample_loss([], [])) == 0


def _exact_pstdev(values) -> float:
    """Population standard deviation in exact rational arithmetic, rounded once at the end."""
    from fractions import Fraction

    vs = [Fraction(v) for v in values]
    mean = sum(vs) / len(vs)
    return math.sqrt(sum((v - mean) ** 2 for v in vs) / len(vs))


def test_variability_keeps_its_digits_on_nearly_constant_probabilities():
    """ss/n - mean^2 gave 2.4e-8 for a constant 0.99 and 0 for steps of 1e-9; the pairwise merge does not."""
    assert variability([1] * 100, [0.99] * 100).tolist() == [0.0]
    assert variability([1] * 7, [1 / 3] * 7).tolist() == [0.0]
    near = [0.999 + k * 1e-9 for k in range(10)]
    got = variability([1] * 10, near).iloc[0]
    assert got == pytest.approx(_exact_pstdev(near), rel=1e-6) and got > 2.8e-9
    # streamed one appearance at a time: the same digits
    st = SampleStats(1)
    for k, p in enumerate(near):
        st.update(np.array([0]), np.array([k]), np.array([k]), gold_prob=np.array([p]))
    assert st.variability[0] == pytest.approx(_exact_pstdev(near), rel=1e-6)
    st = SampleStats(1)
    for k in range(100):
        st.update(np.array([0]), np.array([k]), np.array([k]), gold_prob=np.array([0.99]))
    assert st.variability[0] == 0.0


@pytest.mark.parametrize("split", ["one-by-one", "random"])
def test_streamed_variability_equals_one_chunk_to_rounding(split):
    rng = np.random.default_rng(3)
    n = 3000
    idx = rng.integers(0, 60, n)
    gp = 0.9 + rng.random(n) * 1e-3          # near 1, small spread: where ss/n - mean^2 cancels
    one = SampleStats(60)
    one.update(idx, np.zeros(n, int), np.arange(n), gold_prob=gp)
    many = SampleStats(60)
    cuts = np.arange(n + 1) if split == "one-by-one" else np.unique(np.r_[0, rng.integers(0, n, 25), n])
    for lo, hi in zip(cuts[:-1], cuts[1:]):
        c = np.arange(lo, hi)
        many.update(idx[c], np.zeros(len(c), int), c, gold_prob=gp[c])
    exact = np.array([_exact_pstdev(gp[idx == s]) for s in range(60)])
    np.testing.assert_allclose(one.variability, exact, rtol=1e-9)
    np.testing.assert_allclose(many.variability, one.variability, rtol=1e-9, atol=0)
