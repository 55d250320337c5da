"""The live monitor's framework-free core: loss mixture, onset rules, per-epoch signals, files.

No TensorFlow. The signals are checked against ``analyze_run`` over the same rows written to Parquet:
one definition of each number.
"""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from trainstats.analysis import analyze_run, auroc
from trainstats.analysis.live import SIGNAL_COLUMNS, LiveSignals
from trainstats.analysis.mixture import loss_mixture
from trainstats.analysis.monitoring import ONSET_FILE, SIGNALS_FILE, MonitorCore, scalar_tag
from trainstats.analysis.onset import find_onset, onset_epoch
from trainstats.store import RunWriter, ValueColumn, monitor_dir

COLS = [ValueColumn("loss", "float32", head="output", stat="loss"),
        ValueColumn("correct", "bool", head="output", stat="correct"),
        ValueColumn("margin", "float32", head="output", stat="margin"),
        ValueColumn("has_bug", "bool", head=None, stat="has_bug")]


# ---------------------------------------------------------------------------------------- mixture
@pytest.mark.parametrize("family", ["gaussian", "beta"])
@pytest.mark.parametrize("fraction", [0.2, 0.4])
def test_mixture_recovers_a_planted_noisy_fraction(family, fraction):
    rng = np.random.default_rng(1)
    n_noisy = int(fraction * 4000)
    clean = rng.gamma(1.0, 0.15, 4000 - n_noisy)           # fitted: small losses
    noisy = rng.normal(2.5, 0.5, n_noisy).clip(0.0)         # unfitted: large losses
    losses = np.r_[clean, noisy]
    fit = loss_mixture(losses, family=family)
    # measured: gaussian 0.207 / 0.405; beta 0.207 / 0.344 (after Arazo's 10 EM rounds; 0.401 after 100)
    assert fit.noisy_fraction == pytest.approx(fraction, abs=0.02 if family == "gaussian" else 0.07)
    assert fit.noisy_mode_loss == pytest.approx(noisy.mean(), abs=0.3)
    post = fit.noisy_posterior(losses)
    order = np.argsort(losses)
    assert (np.diff(post[order]) >= 0).all() and 0 <= post.min() and post.max() <= 1   # monotone in the loss
    assert auroc(np.r_[np.zeros(len(clean), bool), np.ones(n_noisy, bool)], post) > 0.99


def test_mixture_undefined_and_bad_input():
    assert loss_mixture([0.5] * 50) is None          # no spread
    assert loss_mixture([0.1, 2.0, np.nan]) is None  # too few
    with pytest.raises(ValueError, match="losses must be >= 0"):
        loss_mixture(np.r_[np.ones(20), -1.0])
    with pytest.raises(ValueError, match="Received: family='poisson'"):
        loss_mixture(np.ones(20), family="poisson")


# ------------------------------------------------------------------------------------------ onset
def test_onset_rule_on_series():
    noisy = [0.20, 0.10, 0.08, 0.15, 0.25, 0.40, 0.60]
    heldout = [0.50, 0.60, 0.70, 0.69, 0.70, 0.66, 0.60]
    assert onset_epoch(noisy, heldout, patience=2) == 2
    assert onset_epoch(noisy, heldout, patience=4) == 2
    assert onset_epoch(noisy, [0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9], patience=2) is None   # still generalizing
    assert onset_epoch(noisy, None, patience=2) == 2           # no held-out data: the rise alone
    assert onset_epoch(noisy, heldout, patience=2, min_delta=0.1) == 4   # 2: +0.07; 3: +0.10 is not > 0.1
    assert onset_epoch([0.1, 0.2, 0.15, 0.3], None, patience=2) == 0    # a flat or lower step inside is allowed...
    assert onset_epoch([0.1, 0.2, 0.1, 0.3], None, patience=2) is None  # ... a fall back to the start is not
    assert onset_epoch(noisy[:3], heldout[:3], patience=3) is None      # not enough epochs yet
    for bad in (0, 1.5, True):
        with pytest.raises(ValueError, match="Received: patience="):
            onset_epoch(noisy, heldout, patience=bad)
    with pytest.raises(ValueError, match="Received: min_delta=-0.1"):
        onset_epoch(noisy, heldout, min_delta=-0.1)


def test_find_onset_reads_a_metrics_table():
    rows = []
    for e, (m, h, nml) in enumerate(zip([0.2, 0.1, 0.05, 0.1, 0.2, 0.4], [0.5, 0.6, 0.7, 0.68, 0.7, 0.65],
                                        [1.0, 1.3, 1.5, 1.4, 1.2, 0.9])):
        rows += [dict(split="train", epoch=e, head="joint", subset="all", noise_group="noisy", metric="accuracy",
                      value=m, n=10),
                 dict(split="train", epoch=e, head="joint", subset="buggy", noise_group="noisy", metric="accuracy",
                      value=1.0 - m, n=5),           # another subset: ignored
                 dict(split="dev", epoch=e, head="joint", subset="all", noise_group="all", metric="accuracy",
                      value=h, n=10),
                 dict(split="train", epoch=e, head="joint", subset="all", noise_group="all",
                      metric="noisy_mode_loss", value=nml, n=10)]
    table = pd.DataFrame(rows)
    flags = find_onset(table, rule="flags", head="joint")
    assert (flags.epoch, flags.detected_at, flags.heldout_split) == (2, 4, "dev")
    loss = find_onset(table, rule="loss", head="joint")
    assert (loss.epoch, loss.detected_at) == (2, 4)
    assert find_onset(table, rule="flags", head="loc") is None
    with pytest.raises(ValueError, match="Received: rule='gini'"):
        find_onset(table, rule="gini", head="joint")


# ----------------------------------------------------------------------------- signals vs analysis
def _rows(rng, keys, epoch, noise, kinds):
    n = len(keys)
    loss = rng.gamma(1.0, 1.0 / (1 + epoch), n).astype(np.float32)
    loss[noise] += 1.0 / (1 + epoch)
    correct = rng.random(n) < 0.4 + 0.1 * epoch
    bug = (keys % 2 == 0)
    loss_masked = np.ma.masked_array(loss, mask=rng.random(n) < 0.05)       # a few nulls
    return {"loss": loss_masked, "correct": correct, "margin": rng.normal(0, 1, n).astype(np.float32),
            "has_bug": bug}


@pytest.fixture(scope="module")
def planted_run(tmp_path_factory):
    """Rows of 4 epochs (two batches each, one sample twice in an epoch) written to a run AND fed to
    LiveSignals; two noise kinds."""
    run = tmp_path_factory.mktemp("live") / "run"
    rng = np.random.default_rng(3)
    keys = np.arange(1, 301, dtype=np.int64) * 7919
    noise = rng.random(len(keys)) < 0.3
    kinds = np.where(noise, np.where(rng.random(len(keys)) < 0.5, "label", "rename"), "").astype(object)
    dev_keys = np.arange(1000, 1100, dtype=np.int64)
    live = LiveSignals(COLS)
    per_epoch = []
    with RunWriter(run, COLS, on_error="raise") as w:
        w.register_samples([str(k) for k in keys], keys=keys)
        step = 0
        for epoch in range(4):
            order = rng.permutation(len(keys))
            order = np.r_[order, order[:1]]        # sample order[0] is seen twice this epoch
            for batch, idx in enumerate(np.array_split(order, 2)):
                values = _rows(rng, keys[idx], epoch, noise[idx], kinds[idx])
                w.write(split="train", epoch=epoch, step=step, batch=batch, sample_key=keys[idx], values=values,
                        noise=noise[idx], noise_kind=[k or None for k in kinds[idx]])
                live.add("train", sample_key=keys[idx], step=step, values=values, noise=noise[idx],
                         noise_kind=kinds[idx])
                step += 1
            dv = _rows(rng, dev_keys, epoch, np.zeros(len(dev_keys), bool), None)
            w.write(split="dev", epoch=epoch, step=step, batch=0, sample_key=dev_keys, values=dv)
            live.add("dev", sample_key=dev_keys, step=step, values=dv)
            w.flush()
            per_epoch.append(live.end_epoch(epoch))
    return run, per_epoch, noise, kinds, keys


def test_live_signals_equal_analysis_of_the_same_rows(planted_run):
    run, per_epoch, noise, kinds, keys = planted_run
    live = pd.concat([e.table for e in per_epoch], ignore_index=True)
    assert list(live.columns) == list(SIGNAL_COLUMNS)
    analysis = analyze_run(run)
    key = ["split", "epoch", "head", "subset", "noise_group", "metric"]
    a = analysis.metrics.set_index(key)["value"]
    shared = live[live["metric"].isin(["accuracy", "mean_loss", "gini_loss"]) & ~live["noise_group"].str.contains(":")]
    b = shared.set_index(key)["value"]
    assert set(a.index) == set(b.index) and len(b) > 100      # every metric analysis computes, and only those
    np.testing.assert_allclose(b.loc[a.index].to_numpy(), a.to_numpy(), rtol=1e-9, atol=1e-12)
    # running CSL / AUM after the last epoch: AUROC of analysis' per-sample scores
    scores = analysis.scores
    last = live[(live["epoch"] == 3) & (live["split"] == "train")].set_index(["noise_group", "metric"])["value"]
    for score in ("csl", "aum"):
        s = scores[f"output_{score}"].to_numpy() * (1 if score == "csl" else -1)
        assert last[("all", f"auroc_{score}")] == pytest.approx(auroc(scores["noise"].to_numpy(), s))
        lab = scores["noise_kind"].astype(object).to_numpy() == "label"
        use = lab | ~scores["noise"].to_numpy()
        assert last[("noisy:label", f"auroc_{score}")] == pytest.approx(auroc(lab[use], s[use]))
    # newly fitted: analysis' first-learned epoch, per epoch
    first = scores["output_first_learned_epoch"].to_numpy()
    for e in range(4):
        nf = live[(live.epoch == e) & (live.metric == "newly_fitted") & (live.noise_group == "all")]["value"].item()
        assert nf == pytest.approx(np.mean(first[~np.isnan(first)] == e))
    # per-kind accuracy: that kind's rows only
    rows = analysis.metrics
    assert {"noisy:label", "noisy:rename"} <= set(live["noise_group"])
    assert not rows["noise_group"].str.contains(":").any()


def test_live_signals_flags_estimate_and_histograms(planted_run):
    run, per_epoch, noise, kinds, keys = planted_run
    e = per_epoch[-1]
    t = e.table.set_index(["split", "noise_group", "metric"])["value"]
    assert t[("train", "all", "noisy_fraction_flagged")] == pytest.approx(noise.mean(), abs=0.01)
    assert 0.0 <= t[("train", "all", "noisy_fraction_est")] <= 1.0 and t[("train", "all", "noisy_mode_loss")] > 0
    assert set(e.losses) == {("output", "clean"), ("output", "noisy")}
    n_loss = sum(len(v) for v in e.losses.values())
    assert n_loss == pytest.approx(len(keys), abs=0.08 * len(keys))     # one mean loss per sample (nulls dropped)
    assert e.has_flags


def test_live_signals_without_flags():
    live = LiveSignals(COLS)
    rng = np.random.default_rng(0)
    keys = np.arange(200, dtype=np.int64)
    live.add("train", sample_key=keys, step=0, values=_rows(rng, keys, 0, np.zeros(200, bool), None))
    e = live.end_epoch(0)
    metrics = set(e.table["metric"])
    assert {"accuracy", "gini_loss", "newly_fitted", "noisy_fraction_est", "noisy_mode_loss"} <= metrics
    assert not metrics & {"auroc_csl", "auroc_aum", "noisy_fraction_flagged"}
    assert set(e.table["noise_group"]) == {"all", "clean"} and not e.has_flags
    assert list(e.losses) == [("output", "all")]


def test_scalar_tags():
    assert scalar_tag(dict(head="joint", split="train", metric="accuracy", noise_group="noisy", subset="buggy")) \
        == "joint/train/accuracy/noisy/buggy"
    assert scalar_tag(dict(head="loc", split="dev", metric="accuracy", noise_group="all", subset="all")) \
        == "loc/dev/accuracy"
    assert scalar_tag(dict(head="loc", split="train", metric="auroc_csl", noise_group="noisy:label",
                           subset="all")) == "loc/train/auroc_csl/noisy-label"


# ------------------------------------------------------------------------------------------ core
def _feed(core, epoch, rng, noisy_acc, dev_acc, n=400):
    keys = np.arange(n, dtype=np.int64)
    noise = keys < n // 2
    correct = np.where(noise, rng.random(n) < noisy_acc, rng.random(n) < 0.9)
    loss = np.where(correct, 0.1, 2.0).astype(np.float32)
    core.add("train", sample_key=keys, step=epoch, values={"loss": loss, "correct": correct,
                                                           "margin": np.zeros(n, np.float32)},
             noise=noise, noise_kind="label")
    dk = np.arange(10_000, 10_000 + n, dtype=np.int64)
    core.add("dev", sample_key=dk, step=epoch, values={"loss": np.ones(n, np.float32),
                                                       "correct": np.arange(n) < round(dev_acc * n),
                                                       "margin": np.zeros(n, np.float32)})
    return core.end_epoch(epoch)


def test_core_detects_writes_and_resumes(tmp_path):
    out = monitor_dir(tmp_path / "run")
    assert out == tmp_path / "run" / "_trainstats" / "monitor"  # where Parquet readers of the run do not look
    core = MonitorCore(COLS, out_dir=out, head=None, rule="auto", patience=2, min_delta=0.0,
                       settings={"on_onset": "log"})
    rng = np.random.default_rng(0)
    noisy = [0.3, 0.1, 0.05, 0.3, 0.6, 0.9]
    dev = [0.5, 0.6, 0.7, 0.65, 0.6, 0.55]
    results = []
    for e in range(6):
        results.append(_feed(core, e, rng, noisy[e], dev[e]))
        core.write_files()
    assert core.head == "output" and core.acting_rule == "flags"
    assert [r.onset is not None for r in results] == [False, False, False, False, True, False]
    assert (results[4].onset.epoch, results[4].onset.detected_at) == (2, 4)
    assert ("onset/flags", 2.0) in results[4].scalars and not any(t.startswith("onset/") for t, _ in
                                                                  results[3].scalars)
    assert ("output/dev/accuracy", pytest.approx(0.7)) in results[2].scalars
    logs = core.log_values(5)
    assert logs["monitor_heldout_accuracy"] == pytest.approx(0.55) and logs["monitor_onset"] == 1.0
    assert {"monitor_noisy_accuracy", "monitor_auroc_csl", "monitor_noisy_fraction_est"} <= set(logs)
    table = pq.read_table(out / SIGNALS_FILE).to_pandas()
    assert len(table) == len(core.table) and sorted(table["epoch"].unique()) == list(range(6))
    doc = json.loads((out / ONSET_FILE).read_text())
    assert doc["onsets"]["flags"]["epoch"] == 2 and doc["acting_rule"] == "flags" and doc["on_onset"] == "log"
    # a resumed run (new monitor on the same folder) restarting at epoch 3 keeps epochs 0-2 from the file
    again = MonitorCore(COLS, out_dir=out, head=None, rule="auto", patience=2, min_delta=0.0)
    _feed(again, 3, rng, 0.3, 0.65)
    assert sorted(again.table["epoch"].unique()) == [0, 1, 2, 3]
    assert again.series("dev", "accuracy") == pytest.approx({0: 0.5, 1: 0.6, 2: 0.7, 3: 0.65})


def test_core_refuses_an_unknown_head():
    with pytest.raises(ValueError, match="Received: head='rep'.*recorded heads \\['output'\\]"):
        MonitorCore(COLS, out_dir=None, head="rep", rule="auto", patience=2, min_delta=0.0)


def test_float_rounding_below_zero_loss_is_tolerated():
    live = LiveSignals(COLS)
    keys = np.arange(50, dtype=np.int64)
    loss = np.r_[np.full(25, -1.2e-7), np.full(25, 2.0)].astype(np.float32)   # float32 cross-entropy of a fit sample
    live.add("train", sample_key=keys, step=0, values={"loss": loss, "correct": loss < 1})
    t = live.end_epoch(0).table.set_index("metric")["value"]
    assert t["noisy_fraction_est"] == pytest.approx(0.5, abs=0.01)
