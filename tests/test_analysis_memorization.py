"""The memorization verdict, the "always no bug" baseline and the grouping of runs by noise kind, on a
planted VarMisuse study written through the real store (tests/varmisuse_study.py)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from trainstats.analysis import always_no_bug, analyze_runs, memorization, runs_by_kind
from trainstats.store import read
from varmisuse_study import write_study  # tests/ is on sys.path (pytest's default import mode)


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    root = tmp_path_factory.mktemp("study")
    dirs = write_study(root, levels=(0.25, 0.5), epochs=8, n_train=400, n_dev=120)
    return dirs, analyze_runs(dirs)


def test_verdict_finds_the_planted_onset(study):
    _, a = study
    kinds = dict(zip(a.runs["run"], a.runs["noise_kind"]))
    for run in ("label-noise025-seed0", "label-noise050-seed0"):
        m = memorization(a.metrics, run, noise_kind=kinds[run])
        assert (m.head, m.subset, m.reference_kind) == ("loc", "buggy", "zero")
        assert m.memorized and m.onset == 3, m.signal
        assert m.accuracy[:3] == (0.0, 0.0, 0.0) and m.accuracy[-1] > 0.5
        assert m.n == pytest.approx(400 * float(run[11:14]) / 100 / 2, abs=25)  # the bug-free half of the noised
    for run in ("inject-repair-noise025-seed0", "inject-repair-noise050-seed0"):
        m = memorization(a.metrics, run, noise_kind=kinds[run])
        assert (m.head, m.reference_kind) == ("rep", "clean")
        assert m.memorized and m.onset == 3, m.signal
        assert all(s < 0 for s in m.signal[:3]) and all(s > 0.05 for s in m.signal[3:])
    assert memorization(a.metrics, "clean-noise000-seed0", noise_kind=None) is None  # nothing noised


def test_verdict_no_memorization_and_bad_input(study):
    _, a = study
    m = a.metrics.copy()
    sel = (m["run"] == "label-noise050-seed0") & (m["noise_group"] == "noisy") & (m["split"] == "train")
    m.loc[sel & (m["subset"] == "buggy"), "value"] = 0.01  # never fitted
    v = memorization(m, "label-noise050-seed0", noise_kind="label")
    assert not v.memorized and v.onset is None
    with pytest.raises(ValueError, match="min_gain must be a fraction"):
        memorization(m, "label-noise050-seed0", noise_kind="label", min_gain=5)


def test_always_no_bug_is_the_bug_free_share_of_the_rows(study):
    dirs, a = study
    base = a.metrics[a.metrics["metric"] == "always_no_bug"]
    assert set(base["head"]) == {"loc", "joint"}  # rep is not scored on bug-free code
    rows = read(dirs[2], split="train")
    run = dirs[2].name
    for (epoch, group), want in (((0, "all"), 1 - rows[rows["epoch"] == 0]["has_bug"].mean()),
                                 ((5, "noisy"), 1 - rows[(rows["epoch"] == 5) & rows["noise"]]["has_bug"].mean())):
        got = base[(base["run"] == run) & (base["split"] == "train") & (base["epoch"] == epoch)
                   & (base["head"] == "loc") & (base["noise_group"] == group)]["value"]
        assert got.tolist() == pytest.approx([want])
    dev = base[(base["split"] == "dev") & (base["noise_group"] == "all")]["value"]
    assert np.allclose(dev, 0.5)  # the planted dev split is half bug-free
    # without subsets there is no baseline (and no error)
    plain = a.metrics[a.metrics["subset"] == "all"]
    assert always_no_bug(plain).empty


def test_runs_by_kind_shares_the_clean_run():
    runs = pd.DataFrame({"run": ["c", "l25", "i25", "l50"], "noise_level": [0.0, 0.25, 0.25, 0.5],
                         "noise_kind": ["label", "label", "inject-repair", "label"]})
    assert runs_by_kind(runs) == {"label": ["c", "l25", "l50"], "inject-repair": ["c", "i25"]}
    only_clean = pd.DataFrame({"run": ["a", "b"], "noise_level": [0.0, 0.0], "noise_kind": [None, "label"]})
    assert runs_by_kind(only_clean) == {"label": ["a", "b"]}
    unknown = pd.DataFrame({"run": ["x"], "noise_level": [None], "noise_kind": [None]})
    assert runs_by_kind(unknown) == {None: ["x"]}
