"""End to end against a real GREAT checkout (VHellendoorn/ICLR20-Great), tiny configs, GREAT-format dev shards
(the real ones where present, else the suite's built ones).

Needs ``TRAINSTATS_GREAT_CHECKOUT=/path/to/checkout`` (skipped otherwise) and tf-keras. GREAT runs in
subprocesses: it needs the legacy tf-keras, while this pytest process may already use Keras 3.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from trainstats.store import read, read_metadata
from trainstats.varmisuse import iter_examples

CHECKOUT = os.environ.get("TRAINSTATS_GREAT_CHECKOUT")
pytestmark = [
    pytest.mark.skipif(not CHECKOUT, reason="set TRAINSTATS_GREAT_CHECKOUT to a GREAT checkout "
                                            "(github.com/VHellendoorn/ICLR20-Great) to run the GREAT end-to-end tests"),
    pytest.mark.slow,
]
DROP_IN = Path(__file__).resolve().parents[1] / "integrations" / "great" / "run_model_stats.py"

TINY = """\
model:
  configuration: "{family}"
  base: {{hidden_dim: 64, dropout_rate: 0.1, num_edge_types: 24}}
  rnn: {{num_layers: 2}}
  ggnn:
    time_steps: [1, 1]
    residuals: {{"1": [0]}}
    add_type_bias: true
  transformer: {{ff_dim: 128, num_layers: 2, attention_dim: 64, num_heads: 4}}
data:
  max_batch_size: 2000
  max_buffer_size: 5
  max_sequence_length: 256
  valid_interval: 150
  max_valid_samples: 60
  max_token_length: 10
training:
  max_steps: {steps}
  print_freq: 4
  learning_rate: 0.001
"""


@pytest.fixture(scope="module")
def setup(preferred_great_dev_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("great_e2e")
    shards = sorted(preferred_great_dev_dir.iterdir())
    for mode, shard in (("train", shards[0]), ("dev", shards[1]), ("eval", shards[1])):
        (root / "data" / mode).mkdir(parents=True)
        (root / "data" / mode / shard.name).symlink_to(shard)
    for family in ("great", "ggnn"):
        for steps in (1, 2):
            (root / f"{family}-{steps}.yml").write_text(TINY.format(family=family, steps=steps))
    return root


def _run(args, cwd=None):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    proc = subprocess.run([sys.executable, *map(str, args)], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=900)
    if proc.returncode != 0:
        raise AssertionError(f"{args} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}")
    return proc.stdout


def _cli(setup, name, family="great", steps=2, extra=()):
    (setup / name).mkdir(exist_ok=True)  # GREAT appends to log.txt without creating its folder
    return _run(["-m", "trainstats", "great", "train", "--checkout", CHECKOUT, setup / "data",
                 Path(CHECKOUT) / "vocab.txt", setup / f"{family}-{steps}.yml", "-m", setup / name / "models",
                 "-l", setup / name / "log.txt", *extra])


def _log(path):
    """log.txt lines without the wall-clock column: (step, samples, accuracies)."""
    out = []
    for line in Path(path).read_text().splitlines():
        head, accs = line.split(": ")
        step, samples, _seconds = head.split(", ")
        out.append((int(step), int(samples), accs))
    return out


def _progress(stdout):
    return [line for line in stdout.splitlines() if re.match(r"^(MB|Evaluation result|Step)", line)]


def _percent(x):
    return "{0:.2%}".format(x)


def test_batches_equal_greats_own_batcher(setup):
    script = f"""
import random, sys, yaml, numpy as np, tensorflow as tf
sys.path.insert(0, {CHECKOUT!r})
from data import data_loader, vocabulary
from trainstats.great.batching import IdBatcher
from trainstats.store import monitor_dir  # noqa: E402
cfg = yaml.safe_load(open({str(setup / 'great-2.yml')!r}))
dl = data_loader.DataLoader({str(setup / 'data')!r}, cfg['data'], vocabulary.Vocabulary({CHECKOUT!r} + '/vocab.txt'))
for mode, n in (('train', 25), ('dev', 1000)):
    random.seed(3); tf.random.set_seed(3)
    great = [[t.numpy() for t in b] for _, b in zip(range(n), dl.batcher(mode))]
    random.seed(3); tf.random.set_seed(3)
    ours = [[t.numpy() for t in b] for _, b in zip(range(n), IdBatcher(dl).batcher(mode))]
    assert len(great) == len(ours) > 1, (len(great), len(ours))
    for a, b in zip(great, ours):
        assert all(x.shape == y.shape and (x == y).all() for x, y in zip(a, b[:5]))
    print(mode, len(ours), sum(len(b[5]) for b in ours))
"""
    out = _run(["-c", script])
    assert re.search(r"^train 25 \d+$", out, re.M) and re.search(r"^dev \d+ 60$", out, re.M), out
    print(out)


def test_instrumented_run_matches_plain_great_and_its_rows_agree_with_the_log(setup):
    train_ids = [sid for sid, _ in iter_examples(next(iter((setup / "data" / "train").iterdir())))]
    noised = train_ids[:40:2]
    manifest = setup / "noise_manifest.parquet"
    pq.write_table(pa.table({"sample_id": noised, "noise_kind": ["label"] * len(noised)}), manifest)

    for name in ("plain", "inst"):
        (setup / name).mkdir()
    plain_out = _run(["-m", "trainstats.great.plain", CHECKOUT, setup / "data", Path(CHECKOUT) / "vocab.txt",
                      setup / "great-2.yml", "-m", setup / "plain" / "models", "-l", setup / "plain" / "log.txt",
                      "--seed", "7"])
    # The drop-in runs from a copy of the checkout (the user's checkout is never written to).
    copy = setup / "checkout-copy"
    shutil.copytree(CHECKOUT, copy, ignore=shutil.ignore_patterns(".git", "*.png"))
    shutil.copy(DROP_IN, copy / "running" / "run_model_stats.py")
    stats_out = _run(["running/run_model_stats.py", setup / "data", "vocab.txt", setup / "great-2.yml",
                      "-m", setup / "inst" / "models", "-l", setup / "inst" / "log.txt", "--stats", setup / "inst" / "run",
                      "--noise-manifest", manifest, "--seed", "7"], cwd=copy)
    print("plain GREAT log.txt:\n" + (setup / "plain" / "log.txt").read_text())
    print("instrumented log.txt:\n" + (setup / "inst" / "log.txt").read_text())

    log = _log(setup / "inst" / "log.txt")
    assert log == _log(setup / "plain" / "log.txt") and len(log) == 2
    assert _progress(stats_out) == _progress(plain_out) and len(_progress(stats_out)) > 4
    inst_files = {p.name for p in (setup / "inst" / "models").iterdir()}
    assert inst_files - {"trainstats_updates.json"} == {p.name for p in (setup / "plain" / "models").iterdir()}

    df = read(setup / "inst" / "run")
    df["sample_id"] = df["sample_id"].astype(str)
    df["split"] = df["split"].astype(str)
    assert not df.duplicated(["split", "epoch", "step", "sample_key"]).any()
    train, dev = df[df.split == "train"], df[df.split == "dev"]
    samples = [0] + [s for _, s, _ in log]
    for epoch, (step, _, accs) in enumerate(log):
        t = train[train.epoch == epoch]
        assert len(t) == samples[epoch + 1] - samples[epoch]
        d = dev[dev.epoch == epoch]
        assert len(d) == 60 and d["step"].nunique() == 1 and d["step"].iloc[0] == t["step"].max() + 1
        bug, clean = d[d.has_bug], d[~d.has_bug]
        ours = ", ".join(_percent(x) for x in (clean.loc_correct.mean(), bug.loc_correct.mean(),
                                               bug.rep_correct.mean(), bug.joint_correct.mean()))
        assert ours == accs, (epoch, ours, accs)
    assert train["step"].min() == 0 and train.groupby("step")["batch"].nunique().eq(1).all()
    assert set(train.sample_id) <= set(train_ids)
    assert (df["rep_loss"].isna() == ~df["has_bug"]).all() and df["loc_loss"].notna().all()
    assert (df["n_tokens"] <= 256).all() and (df["n_candidates"] >= 0).all()
    flagged = train[train.sample_id.isin(noised)]
    assert len(flagged) and flagged["noise"].all() and (flagged["noise_kind"] == "label").all()
    assert not train[~train.sample_id.isin(noised)]["noise"].any()
    meta = read_metadata(setup / "inst" / "run")
    assert meta["recorder"] == "great" and meta["config"]["great_config"]["model"]["configuration"] == "great"
    print(f"rows: {len(train)} train, {len(dev)} dev; {len(flagged)} noised train rows")


def test_ggnn_records_rows(setup):
    out = _cli(setup, "ggnn", family="ggnn", extra=["--stats", setup / "ggnn" / "run", "--seed", "1"])
    df = read(setup / "ggnn" / "run")
    log = _log(setup / "ggnn" / "log.txt")
    assert len(log) == 2 and "Evaluation result" in out
    assert sorted(df["epoch"].unique().tolist()) == [0, 1]
    assert len(df[df["split"].astype(str) == "train"]) == log[-1][1]
    assert np.isfinite(df["loc_loss"]).all()


def test_resume_continues_the_run_without_duplicate_rows(setup):
    run = setup / "resume" / "run"
    _cli(setup, "resume", steps=1, extra=["--stats", run, "--seed", "3"])
    backup = setup / "resume-after-step-1"
    shutil.copytree(setup / "resume", backup, ignore=shutil.ignore_patterns("run"))
    _cli(setup, "resume", steps=2, extra=["--stats", run])           # attempt 2 trains step 2 ...
    for name in ("models", "log.txt"):                                # ... then "crashes" before its checkpoint
        target = setup / "resume" / name
        shutil.rmtree(target) if target.is_dir() else target.unlink()
        (shutil.copytree if (backup / name).is_dir() else shutil.copy)(backup / name, target)
    out = _cli(setup, "resume", steps=2, extra=["--stats", run])      # attempt 3 resumes from checkpoint 1
    assert "Restored from step: 2" in out
    df = read(run)
    df["split"] = df["split"].astype(str)
    assert not df.duplicated(["split", "epoch", "step", "sample_key"]).any()
    assert not df.duplicated(["split", "epoch", "batch", "sample_key"]).any()
    assert sorted(df[df.epoch == 0]["attempt"].unique()) == [1]
    assert sorted(df[df.epoch == 1]["attempt"].unique()) == [3]
    log = _log(setup / "resume" / "log.txt")
    train = df[df.split == "train"]
    assert len(train[train.epoch == 1]) == log[1][1] - log[0][1]
    assert train[train.epoch == 1]["step"].min() == train[train.epoch == 0]["step"].max() + 1
    assert len(read_metadata(run)["attempts"]) == 3

    # -e: the best checkpoint on the eval split, into its own run directory.
    _cli(setup, "resume", steps=2, extra=["-e", "1", "--stats", setup / "resume" / "eval-run"])
    ev = read(setup / "resume" / "eval-run")
    eval_shard = next(iter((setup / "data" / "eval").iterdir()))
    expected = {sid for sid, ex in iter_examples(eval_shard) if len(ex["source_tokens"]) <= 256}
    assert set(ev["split"].astype(str)) == {"eval"}
    assert sorted(ev["sample_id"].astype(str)) == sorted(expected)


def test_monitor_signals_per_great_step_match_the_log(setup):
    """``--monitor``: TensorBoard events and signals per GREAT step; the monitor's held-out accuracies are
    GREAT's own numbers in log.txt (no-bug = loc on bug-free, joint = joint on buggy)."""
    import json

    import pandas as pd

    train_ids = [sid for sid, _ in iter_examples(next(iter((setup / "data" / "train").iterdir())))]
    manifest = setup / "monitor-manifest.parquet"
    pq.write_table(pa.table({"sample_id": train_ids[::3], "noise_kind": ["label"] * len(train_ids[::3])}), manifest)
    run = setup / "monitor" / "run"
    out = _cli(setup, "monitor", steps=2, extra=["--stats", run, "--noise-manifest", manifest, "--seed", "5",
                                                "--monitor", "--on-onset", "stop"])
    assert "Evaluation result" in out
    signals = pd.read_parquet(monitor_dir(run) / "signals.parquet")
    assert sorted(signals["epoch"].unique()) == [0, 1] and set(signals["head"]) == {"loc", "rep", "joint"}
    dev = signals[(signals.split == "dev") & (signals.metric == "accuracy") & (signals.noise_group == "all")]
    for epoch, (_, _, accs) in enumerate(_log(setup / "monitor" / "log.txt")):
        acc = dev[dev.epoch == epoch].set_index(["head", "subset"])["value"]
        no_bug, loc, rep, joint = accs.split(", ")
        assert _percent(acc[("loc", "bug_free")]) == no_bug and _percent(acc[("joint", "buggy")]) == joint
        assert _percent(acc[("rep", "buggy")]) == rep
    noisy = signals[(signals.split == "train") & (signals.noise_group == "noisy")]
    assert len(noisy) and (signals.metric == "auroc_csl").any()
    doc = json.loads((monitor_dir(run) / "onset.json").read_text())
    assert doc["head"] == "joint" and doc["acting_rule"] == "flags" and doc["epochs_monitored"] == 2
    assert any(p.name.startswith("events.out.tfevents") for p in monitor_dir(run).iterdir())
