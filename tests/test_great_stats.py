"""Per-sample statistics of GREAT's two pointer heads, on hand-computed tiny logits, and their rows."""
from __future__ import annotations

import json
import math

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

tf = pytest.importorskip("tensorflow")

from trainstats.great.columns import GREAT_COLUMNS, REPAIR_COLUMNS, row_values  # noqa: E402
from trainstats.great.recorder import GreatRecorder, load_updates, save_updates  # noqa: E402
from trainstats.great.stats import STAT_KEYS, per_sample_stats, per_sample_stats_fn  # noqa: E402
from trainstats.store import read, read_metadata  # noqa: E402


def _batch():
    """Two samples, 4 positions. Sample 0: bug at 2, repair target 1; sample 1: bug-free."""
    predictions = np.array([
        [[0.0, 1.0, 2.0, 5.0],    # loc logits; position 3 is padding (masked)
         [1.0, 3.0, 1.0, 9.0]],   # repair logits; position 3 is not a candidate
        [[3.0, 1.0, 0.0, 0.0],    # positions 2, 3 are padding
         [0.0, 2.0, 0.0, 0.0]],
    ], dtype=np.float32)
    token_mask = np.array([[1, 1, 1, 0], [1, 1, 0, 0]], dtype=np.int32)
    error_loc = np.array([2, 0], dtype=np.int32)
    targets = np.array([[0, 1]], dtype=np.int32)
    candidates = np.array([[0, 0], [0, 1], [0, 2], [1, 1]], dtype=np.int32)
    return predictions, token_mask, error_loc, targets, candidates


def _np(stats):
    return {k: v.numpy() for k, v in stats.items()}


@pytest.mark.parametrize("fn", [per_sample_stats, per_sample_stats_fn], ids=["eager", "tf.function"])
def test_hand_computed_stats(fn):
    s = _np(fn(*_batch()))
    assert set(s) == set(STAT_KEYS)
    e = math.exp
    # Sample 0, localization: softmax over [0, 1, 2] (position 3 masked), gold 2.
    z0 = 1 + e(1) + e(2)
    assert s["loc_gold_prob"][0] == pytest.approx(e(2) / z0, rel=1e-5)
    assert s["loc_loss"][0] == pytest.approx(-math.log(e(2) / z0), rel=1e-5)
    assert s["loc_pred"][0] == 2 and s["loc_correct"][0]
    assert s["loc_pred_prob"][0] == pytest.approx(e(2) / z0, rel=1e-5)
    assert s["loc_margin"][0] == pytest.approx(2.0 - 1.0)   # masked logit 5 is ignored
    # Sample 0, repair: candidates 0..2 with logits [1, 3, 1], target 1.
    p = e(3) / (2 * e(1) + e(3))
    assert s["rep_gold_prob"][0] == pytest.approx(p, rel=1e-5)
    assert s["rep_loss"][0] == pytest.approx(-math.log(p + 1e-9), rel=1e-5)
    assert s["rep_pred"][0] == 1 and s["rep_correct"][0]
    assert s["rep_margin"][0] == pytest.approx(3.0 - 1.0)
    assert s["joint_correct"][0] and s["has_bug"][0]
    # Sample 1: bug-free (gold = position 0), two real tokens.
    assert s["loc_gold_prob"][1] == pytest.approx(e(3) / (e(3) + e(1)), rel=1e-5)
    assert s["loc_margin"][1] == pytest.approx(2.0)
    assert not s["has_bug"][1] and s["loc_correct"][1]
    assert s["joint_correct"][1]  # nothing to repair: joint = loc_correct
    assert s["rep_gold_prob"][1] == 0.0 and not s["rep_correct"][1]
    assert np.isnan(s["rep_margin"][1])  # no repair target: undefined
    assert s["n_candidates"].tolist() == [3, 1]


def test_wrong_predictions_and_undefined_margins():
    predictions, token_mask, error_loc, targets, candidates = _batch()
    predictions[0, 0] = [4.0, 1.0, 2.0, 0.0]        # loc now prefers "no bug"
    predictions[0, 1] = [5.0, 0.0, 1.0, 0.0]        # repair prefers a wrong candidate
    token_mask[1] = [1, 0, 0, 0]                    # sample 1 has one token: no "other" position
    s = _np(per_sample_stats(predictions, token_mask, error_loc, targets, candidates))
    assert s["loc_pred"][0] == 0 and not s["loc_correct"][0]
    assert s["loc_margin"][0] == pytest.approx(2.0 - 4.0)
    assert not s["rep_correct"][0] and s["rep_pred"][0] == 0
    assert s["rep_margin"][0] == pytest.approx(0.0 - 5.0)
    assert not s["joint_correct"][0]
    assert np.isnan(s["loc_margin"][1])
    assert s["loc_gold_prob"][1] == pytest.approx(1.0)


def test_target_mass_sums_over_targets_and_duplicates_like_great():
    predictions, token_mask, error_loc, _, candidates = _batch()
    targets = np.array([[0, 0], [0, 2], [0, 2]], dtype=np.int32)   # scatter_nd adds duplicates
    s = _np(per_sample_stats(predictions, token_mask, error_loc, targets, candidates))
    z = 2 * math.exp(1) + math.exp(3)
    assert s["rep_gold_prob"][0] == pytest.approx(3 * math.exp(1) / z, rel=1e-5)
    # margin: log-sum-exp over the (distinct) target logits minus the best non-target candidate
    assert s["rep_margin"][0] == pytest.approx(math.log(2 * math.exp(1)) - 3.0, rel=1e-5)


def test_row_values_null_repair_for_bug_free():
    s = _np(per_sample_stats(*_batch()))
    values = row_values(s, np.array([3, 2]))
    assert set(values) == {c.name for c in GREAT_COLUMNS}
    for name in REPAIR_COLUMNS:
        assert isinstance(values[name], np.ma.MaskedArray)
        assert np.ma.getmaskarray(values[name]).tolist() == [False, True]
    assert values["n_tokens"].dtype == np.int32


def test_columns_follow_the_store_conventions():
    by_name = {c.name: c for c in GREAT_COLUMNS}
    for head in ("loc", "rep"):
        for stat in ("loss", "gold_prob", "pred", "pred_prob", "correct", "margin"):
            col = by_name[f"{head}_{stat}"]
            assert (col.head, col.stat) == (head, stat)
    assert (by_name["joint_correct"].head, by_name["joint_correct"].stat) == ("joint", "correct")
    assert by_name["has_bug"].head is None and by_name["has_bug"].dtype == "bool"


def test_recorder_writes_rows_with_nulls_ids_and_noise(tmp_path):
    predictions, token_mask, error_loc, targets, candidates = _batch()
    ids = np.array([b"shard-a:1", b"shard-a:2"], dtype=object)
    manifest = tmp_path / "noise_manifest.parquet"
    pq.write_table(pa.table({"sample_id": ["shard-a:2"], "noise_kind": ["label"]}), manifest)
    run = tmp_path / "run"
    with GreatRecorder(run, config={"x": 1}, noise_manifest=manifest) as rec:
        stats = per_sample_stats_fn(predictions, token_mask, error_loc, targets, candidates)
        rec.write_batch(split="train", epoch=0, step=0, batch=0, sample_ids=ids, n_tokens=[3, 2], stats=stats)
        rec.write_batch(split="dev", epoch=0, step=1, batch=0, sample_ids=ids, n_tokens=[3, 2], stats=stats)
    df = read(run)
    df = df.assign(split=df["split"].astype(str), sample_id=df["sample_id"].astype(str))
    df = df.sort_values(["split", "sample_id"]).reset_index(drop=True)
    assert df["sample_id"].tolist() == ["shard-a:1", "shard-a:2"] * 2
    assert df["split"].tolist() == ["dev", "dev", "train", "train"]
    assert df["rep_loss"].isna().tolist() == [False, True] * 2
    assert df["noise"].tolist() == [False, True] * 2
    assert df["noise_kind"].tolist()[1] == "label"
    assert df["loc_correct"].tolist() == [True, True] * 2
    assert read_metadata(run)["recorder"] == "great"
    # A second recorder continues the run as a new attempt.
    with GreatRecorder(run) as rec2:
        assert rec2.resumed
    with pytest.raises(FileExistsError, match="already holds a run"):
        GreatRecorder(run, fresh=True)


def test_recorder_rejects_missing_manifest(tmp_path):
    with pytest.raises(FileNotFoundError, match="noise manifest not found"):
        GreatRecorder(tmp_path / "run", noise_manifest=tmp_path / "nope.parquet")


def test_update_counts_beside_checkpoints(tmp_path):
    assert load_updates(tmp_path, 1) is None
    save_updates(tmp_path, 1, 11)
    save_updates(tmp_path, 2, 24)
    assert (load_updates(tmp_path, 1), load_updates(tmp_path, 2), load_updates(tmp_path, 3)) == (11, 24, None)
    assert json.loads((tmp_path / "trainstats_updates.json").read_text()) == {"1": 11, "2": 24}
