"""The GREAT loop's monitor (``GreatMonitor``) fed GREAT rows, and ``--monitor`` argument checks.

No GREAT checkout needed: rows are built with ``row_values`` exactly as the recorder builds them
(repair columns masked on bug-free samples); the loop itself is covered by ``test_great_e2e.py``.
"""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from trainstats.cli import main
from trainstats.great.columns import row_values
from trainstats.store import sample_key
from trainstats.store import monitor_dir  # noqa: E402


def _batch(rng, ids, epoch):
    n = len(ids)
    has_bug = np.array([int(i.rsplit(":", 1)[1]) % 2 == 0 for i in ids])
    noisy = np.array([int(i.rsplit(":", 1)[1]) % 3 == 0 for i in ids])
    fit = rng.random(n) < np.where(noisy, 0.05 + 0.3 * max(epoch - 2, 0), 0.3 + 0.15 * epoch)
    loss = np.where(fit, 0.2, 2.5).astype(np.float32)
    stats = {"has_bug": has_bug, "n_candidates": np.full(n, 3, np.int32)}
    for head in ("loc", "rep"):
        stats.update({f"{head}_loss": loss, f"{head}_gold_prob": np.exp(-loss), f"{head}_pred": np.zeros(n, np.int64),
                      f"{head}_pred_prob": np.full(n, 0.5, np.float32), f"{head}_correct": fit,
                      f"{head}_margin": np.where(fit, 1.0, -1.0).astype(np.float32)})
    stats["joint_correct"] = fit
    return row_values(stats, np.full(n, 20, np.int32)), noisy


@pytest.mark.tf
def test_great_monitor_signals_per_step(tmp_path):
    pytest.importorskip("tensorflow")
    pytest.importorskip("tensorboard")
    from trainstats.great.monitor import GreatMonitor

    ids = [f"train__VARIABLE_MISUSE__SStuB.txt-00000-of-00001:{i}" for i in range(1, 301)]
    noised = [i for i in ids if int(i.rsplit(":", 1)[1]) % 3 == 0]
    manifest = tmp_path / "noise_manifest.parquet"
    pd.DataFrame({"sample_id": noised, "noise_kind": "label"}).to_parquet(manifest)
    monitor = GreatMonitor(tmp_path / "run", noise_manifest=manifest, on_onset="stop")
    rng = np.random.default_rng(0)
    stops = []
    for epoch in range(7):
        for b in range(3):
            chunk = ids[b * 100:(b + 1) * 100]
            values, _ = _batch(rng, chunk, epoch)
            monitor.add_batch("train", sample_key=sample_key(chunk), step=epoch * 3 + b, values=values)
        stops.append(monitor.end_interval(epoch, model=None))
    monitor.close()
    t = monitor.core.table
    assert monitor.core.head == "joint" and monitor.core.acting_rule == "flags"
    assert monitor.core.loss_head == "loc"             # joint records no loss: the loss rule reads loc's
    loss_onset = monitor.core.onsets["loss"]
    assert loss_onset is None or (loss_onset.signal_head == "loc" and loss_onset.head == "joint")
    logs = monitor.core.log_values(3)  # (by epoch 6 every sample is fitted: one loss value, no mixture)
    assert {"monitor_heldout_accuracy", "monitor_noisy_mode_loss", "monitor_auroc_csl"} - set(logs) == {
        "monitor_heldout_accuracy"}                    # no held-out rows fed here; loss signals from loc
    assert set(t["head"]) == {"loc", "rep", "joint"}
    noisy_buggy = t.query("split == 'train' and head == 'joint' and noise_group == 'noisy' and subset == 'buggy' "
                          "and metric == 'accuracy'")
    assert len(noisy_buggy) == 7 and noisy_buggy["n"].iloc[0] == sum(
        1 for i in noised if int(i.rsplit(":", 1)[1]) % 2 == 0)              # noised samples labelled buggy
    rep_bug_free = t.query("head == 'rep' and subset == 'bug_free' and metric == 'accuracy'")
    assert rep_bug_free.empty                                                  # repair is null on bug-free code
    assert stops.index(True) == monitor.onset.detected_at and monitor.onset.epoch >= 1
    doc = json.loads((monitor_dir(tmp_path / "run") / "onset.json").read_text())
    assert doc["checkpoint_step"] == monitor.onset.epoch + 1 and doc["epoch_unit"].startswith("GREAT step")
    assert any(p.name.startswith("events.out.tfevents") for p in monitor_dir(tmp_path / "run").iterdir())


def test_monitor_needs_stats(tmp_path, capsys):
    rc = main(["great", "train", "--checkout", str(tmp_path), "data", "vocab.txt", "config.yml", "--monitor"])
    assert rc == 2 and "--monitor needs --stats" in capsys.readouterr().err


def test_monitor_flags_in_help(capsys):
    with pytest.raises(SystemExit):
        main(["great", "train", "--help"])
    out = capsys.readouterr().out
    for flag in ("--monitor", "--on-onset", "--onset-rule", "--onset-patience"):
        assert flag in out
