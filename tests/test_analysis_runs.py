"""analyze_run / analyze_runs on real run directories written with trainstats.store.RunWriter."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from trainstats.analysis import (
    analyze_run,
    gini as gini_fn,
    analyze_runs,
    cumulative_sample_loss,
    forgetting_events,
    learned_for_good_epoch,
    run_info,
)
from trainstats.store import RunWriter, ValueColumn, read, sample_key

IDS = [f"train.txt-00000-of-00001:{i}" for i in range(1, 7)]
NOISY = {IDS[4]: "label", IDS[5]: "swap"}


def single_head_cols(margin=True):
    cols = [ValueColumn("loss", "float32", head="output", stat="loss"),
            ValueColumn("gold_prob", "float32", head="output", stat="gold_prob"),
            ValueColumn("correct", "bool", head="output", stat="correct")]
    if margin:
        cols.append(ValueColumn("margin", "float32", head="output", stat="margin"))
    return cols


def write_simple(run_dir, *, epochs=3, noise=NOISY, margin=True, config=None, dev=True, seed=0):
    """6 samples, 2 batches per epoch; noisy samples keep a high loss until the last epoch."""
    rng = np.random.default_rng(seed)
    with RunWriter(run_dir, single_head_cols(margin), config=config or {}, noise_manifest=noise) as w:
        keys = w.register_samples(IDS)
        step = 0
        for e in range(epochs):
            for b, part in enumerate((slice(0, 3), slice(3, 6))):
                k = keys[part]
                noisy = np.array([IDS.index(i) >= 4 for i in np.array(IDS)[part]])
                loss = np.where(noisy, 2.0 if e < epochs - 1 else 0.1, 0.5 / (e + 1)) + rng.random(3) * 0.01
                gp = np.exp(-loss)
                vals = {"loss": loss, "gold_prob": gp, "correct": gp > 0.5}
                if margin:
                    vals["margin"] = np.log(gp) - np.log1p(-gp)
                w.write(split="train", epoch=e, step=step, batch=b, sample_key=k, values=vals)
                step += 1
            if dev:
                dk = w.register_samples(["dev.txt:1", "dev.txt:2"])
                dl = np.array([0.3, 1.5])
                dv = {"loss": dl, "gold_prob": np.exp(-dl), "correct": np.exp(-dl) > 0.5}
                if margin:
                    dv["margin"] = np.array([1.0, -1.0])
                w.write(split="dev", epoch=e, step=step, batch=0, sample_key=dk, values=dv)
            w.flush()
    return run_dir


def test_scores_match_pure_functions_on_the_stored_rows(tmp_path):
    run = write_simple(tmp_path / "r")
    res = analyze_run(run)
    df = read(run, split="train")
    s = res.scores.set_index("sample_key")
    assert len(s) == 6 and s["noise"].sum() == 2
    assert s.loc[df["sample_key"][df["noise"]].unique(), "noise_kind"].astype(str).tolist() in (
        ["label", "swap"], ["swap", "label"])
    loss = df["loss"].astype(float).to_numpy()
    corr = df["correct"].astype(float).to_numpy()
    keys = df["sample_key"].to_numpy()
    np.testing.assert_allclose(s["output_csl"].loc[np.unique(keys)], cumulative_sample_loss(keys, loss), rtol=1e-6)
    np.testing.assert_array_equal(s["output_forgetting_events"].loc[np.unique(keys)],
                                  forgetting_events(keys, corr, epoch=df["epoch"], step=df["step"]))
    np.testing.assert_array_equal(s["output_learned_for_good_epoch"].loc[np.unique(keys)],
                                  learned_for_good_epoch(keys, corr, epoch=df["epoch"], step=df["step"]))
    # noisy samples were wrong until the last epoch: learned (for good) at epoch 2
    assert (s.loc[s["noise"], "output_first_learned_epoch"] == 2).all()
    assert set(res.scores["sample_id"]) == set(IDS)


def test_per_epoch_metrics_split_clean_noisy(tmp_path):
    run = write_simple(tmp_path / "r")
    res = analyze_run(run)
    m = res.metrics
    acc = m[(m["metric"] == "accuracy") & (m["split"] == "train") & (m["subset"] == "all")]
    a = acc.set_index(["epoch", "noise_group"])["value"]
    assert a[(0, "clean")] == 1.0 and a[(0, "noisy")] == 0.0 and a[(0, "all")] == pytest.approx(4 / 6)
    assert a[(2, "noisy")] == 1.0
    g = m[(m["metric"] == "gini_loss") & (m["noise_group"] == "all") & (m["split"] == "train")]
    gini = g.set_index("epoch")["value"]
    assert gini[1] > gini[2]  # the loss is unequal while the noisy samples are unfitted
    rows = read(run, split="train", epochs=1)
    gm = m[(m["metric"] == "gini_loss") & (m["split"] == "train") & (m["epoch"] == 1)].set_index("noise_group")["value"]
    loss = rows["loss"].astype(float).to_numpy()
    noisy = rows["noise"].to_numpy()
    assert gm["all"] == pytest.approx(gini_fn(loss))
    assert gm["clean"] == pytest.approx(gini_fn(loss[~noisy]))
    assert gm["noisy"] == pytest.approx(gini_fn(loss[noisy]))
    assert {"dev"} <= set(m["split"])
    assert len(res.curves) and set(res.curves["split"]) == {"dev"}


def test_study_side_by_side_with_gap_and_detection(tmp_path):
    a = write_simple(tmp_path / "a" / "run", config={"noise_level": 50, "noise_kind": "label", "seed": 1})
    b = write_simple(tmp_path / "b" / "run", noise=None, seed=2)  # same dir name, nothing noisy
    st = analyze_runs([a, b])
    assert st.runs["run"].tolist() == ["a/run", "b/run"]
    assert st.runs["noise_level"].tolist()[0] == 0.5 and st.runs["seed"].tolist()[0] == 1
    assert set(st.scores["run"]) == {"a/run", "b/run"}
    gap = st.metrics[st.metrics["metric"] == "generalization_gap"]
    assert len(gap) and set(gap["run"]) == {"a/run", "b/run"}
    assert set(st.detection["run"]) == {"a/run"}  # b has nothing noisy ...
    assert any(m.startswith("b/run") and "no sample is flagged noisy" in m for m in st.messages)  # ... and says so
    csl = st.detection[(st.detection["score"] == "csl") & (st.detection["noise_kind"] == "all")].iloc[0]
    assert csl["auroc"] == 1.0 and csl["n_noisy"] == 2
    assert set(st.detection["noise_kind"]) == {"all", "label", "swap"}


def test_edge_cases_single_epoch_missing_column_no_dev(tmp_path):
    res = analyze_run(write_simple(tmp_path / "r", epochs=1, margin=False, dev=False))
    text = "\n".join(res.messages)
    assert "no 'margin' column recorded; skipped: aum" in text
    assert "only one train epoch" in text
    assert "no held-out (dev/eval) rows" in text
    assert "output_aum" not in res.scores.columns  # not a silent all-NaN column
    assert res.scores["output_csl"].notna().all()


def test_head_without_defined_values_and_bug_subsets(tmp_path):
    cols = [ValueColumn("loc_loss", "float32", head="loc", stat="loss"),
            ValueColumn("loc_correct", "bool", head="loc", stat="correct"),
            ValueColumn("rep_loss", "float32", head="rep", stat="loss"),
            ValueColumn("rep_correct", "bool", head="rep", stat="correct"),
            ValueColumn("has_bug", "bool", head=None, stat="has_bug")]
    run = tmp_path / "great"
    with RunWriter(run, cols) as w:
        keys = w.register_samples(IDS[:4])
        for e in range(2):
            w.write(split="train", epoch=e, step=e, batch=0, sample_key=keys,
                    values={"loc_loss": [0.1, 0.2, 0.3, 0.4], "loc_correct": [True, True, False, True],
                            "rep_loss": np.ma.masked_all(4), "rep_correct": np.ma.masked_all(4, bool),
                            "has_bug": [True, False, True, False]})
    res = analyze_run(run)
    assert any("head rep: 'loss' is null in every train row" in m for m in res.messages)
    assert res.scores["rep_csl"].isna().all()
    assert dict(zip(res.scores["sample_id"], res.scores["has_bug"])) == {
        IDS[0]: True, IDS[1]: False, IDS[2]: True, IDS[3]: False}
    m = res.metrics[(res.metrics["metric"] == "accuracy") & (res.metrics["noise_group"] == "all")]
    acc = m[m["head"] == "loc"].set_index(["epoch", "subset"])["value"]
    assert acc[(0, "buggy")] == 0.5 and acc[(0, "bug_free")] == 1.0 and acc[(0, "all")] == 0.75
    assert m[m["head"] == "rep"].empty
    assert any("no sample is flagged noisy" in msg for msg in analyze_runs([run]).messages)


def test_run_info_reads_config_then_directory_name(tmp_path):
    assert run_info(tmp_path / "x", {"config": {"noise_level": 0.25, "noise_kind": "swap", "seed": 4}}) == \
        run_info(tmp_path / "x", {"config": {"noise_level": 25, "noise_kind": "swap", "seed": "4"}})
    info = run_info(tmp_path / "great-noise75-seed3", {"config": {}})
    assert (info.noise_level, info.seed, info.noise_kind) == (0.75, 3, None)
    info = run_info(tmp_path / "baseline", {})
    assert (info.noise_level, info.seed) == (None, None)


def test_not_a_run_directory(tmp_path):
    with pytest.raises(ValueError, match="not a trainstats run directory: no run.json"):
        analyze_run(tmp_path)
    with pytest.raises(ValueError, match="split must be"):
        analyze_run(tmp_path, split="test")
    with pytest.raises(ValueError, match="run_dirs is empty"):
        analyze_runs([])


def test_rows_of_a_superseded_attempt_are_ignored(tmp_path):
    run = write_simple(tmp_path / "r", epochs=2, dev=False)
    with RunWriter(run, single_head_cols(), resume=True) as w:  # redo epoch 1 with zero loss
        keys = w.register_samples(IDS)
        w.write(split="train", epoch=1, step=2, batch=0, sample_key=keys,
                values={"loss": np.zeros(6), "gold_prob": np.ones(6), "correct": np.ones(6, bool),
                        "margin": np.ones(6)})
    res = analyze_run(run)
    assert (res.scores["output_n"] == 2).all()
    first = pd.Series(res.scores["output_csl"].to_numpy(), index=res.scores["sample_key"])
    df = read(run, split="train", epochs=0)
    np.testing.assert_allclose(first.loc[df["sample_key"]], df["loss"].astype(float), rtol=1e-6)


def test_samples_first_seen_in_later_epochs(tmp_path):
    """GREAT-style streaming: new samples keep arriving (half never registered with the writer), so the
    per-sample state grows during the scan and must stay aligned."""
    rng = np.random.default_rng(5)
    ids = [f"s.txt:{i}" for i in range(1, 13)]
    run = tmp_path / "grow"
    with RunWriter(run, single_head_cols(), noise_manifest={ids[0]: "label", ids[11]: "label"}) as w:
        w.register_samples(ids[:6])
        keys = sample_key(ids)
        step = 0
        for e in range(4):
            part = rng.permutation(np.arange(3 * e + 3))[: 3 * e + 3]  # epoch e sees samples 0 .. 3e+2
            for b, chunk in enumerate(np.array_split(part, 2)):
                loss = rng.exponential(1.0, len(chunk))
                gp = np.exp(-loss)
                w.write(split="train", epoch=e, step=step, batch=b, sample_key=keys[chunk],
                        values={"loss": loss, "gold_prob": gp, "correct": gp > 0.4,
                                "margin": rng.normal(size=len(chunk))})
                step += 1
    res = analyze_run(run)
    df = read(run, split="train")
    k = df["sample_key"].to_numpy()
    s = res.scores.set_index("sample_key").loc[np.unique(k)]
    np.testing.assert_allclose(s["output_csl"], cumulative_sample_loss(k, df["loss"].astype(float)), rtol=1e-6)
    np.testing.assert_array_equal(s["output_forgetting_events"],
                                  forgetting_events(k, df["correct"].astype(float), epoch=df["epoch"], step=df["step"]))
    assert s["noise"].sum() == 2 and s["output_n"].max() == 4 and s["output_n"].min() == 1
    assert dict(zip(res.scores["sample_id"], res.scores["noise"]))[ids[0]]
    assert res.scores["sample_id"].isna().sum() == 6
    assert any("6 of 12 samples have no sample_id" in m for m in res.messages)
