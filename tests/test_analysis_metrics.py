"""Gini, sorted curves, generalization gap; and that analysis/report never import TensorFlow."""
from __future__ import annotations

import doctest
import itertools
import math
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

import trainstats.analysis as analysis
from trainstats.analysis import generalization_gap, gini, sorted_curve


def brute_gini(x):
    x = np.asarray(x, float)
    return sum(abs(a - b) for a, b in itertools.product(x, x)) / (2 * len(x) ** 2 * x.mean())


def test_gini_by_hand_and_edge_cases():
    assert gini([1, 1, 1, 1]) == 0.0
    assert gini([0, 0, 0, 0]) == 0.0  # all equal, including all zero
    assert gini([0, 0, 0, 4]) == pytest.approx(0.75)  # max for n = 4 is 1 - 1/4
    assert gini([3.0]) == 0.0
    assert math.isnan(gini([]))
    assert gini([1, np.nan, 3]) == pytest.approx(brute_gini([1, 3]))
    with pytest.raises(ValueError, match="non-negative"):
        gini([1, -1])


def test_gini_matches_pairwise_definition():
    rng = np.random.default_rng(1)
    for n in (2, 5, 17):
        x = rng.exponential(1.0, n)
        assert gini(x) == pytest.approx(brute_gini(x))


def test_sorted_curve():
    c = sorted_curve([4.0, 1.0, np.nan, 2.0, 3.0], points=4)
    assert c["fraction"].tolist() == pytest.approx([0, 1 / 3, 2 / 3, 1])
    assert c["value"].tolist() == pytest.approx([1, 2, 3, 4])
    assert sorted_curve([np.nan]).empty
    assert sorted_curve([2.0], points=3)["value"].tolist() == [2.0, 2.0, 2.0]
    with pytest.raises(ValueError, match="points"):
        sorted_curve([1.0], points=1)


def test_generalization_gap():
    rows = []
    for split, acc in (("train", [0.5, 0.9]), ("dev", [0.4, 0.6])):
        for epoch, v in enumerate(acc):
            rows.append(dict(run="r", split=split, epoch=epoch, head="loc", subset="all", noise_group="all",
                             metric="accuracy", value=v, n=10))
    rows.append(dict(run="r", split="train", epoch=2, head="loc", subset="all", noise_group="all",
                     metric="accuracy", value=1.0, n=10))  # no dev at epoch 2: no gap row
    gap = generalization_gap(pd.DataFrame(rows)).sort_values("epoch")
    assert gap["epoch"].tolist() == [0, 1]
    assert gap["value"].tolist() == pytest.approx([0.1, 0.3])
    assert set(gap["split"]) == {"train-dev"} and set(gap["metric"]) == {"generalization_gap"}
    with pytest.raises(ValueError, match="lacks"):
        generalization_gap(pd.DataFrame({"split": []}))


def test_docstring_examples_run():
    import trainstats.analysis.detection as det
    import trainstats.analysis.metrics as met
    import trainstats.analysis.scores as sc

    for mod in (analysis, sc, det, met):
        result = doctest.testmod(mod, optionflags=doctest.NORMALIZE_WHITESPACE)
        assert result.failed == 0 and result.attempted > 0, mod.__name__


def test_analysis_and_report_do_not_import_tensorflow():
    code = ("import sys, trainstats.analysis, trainstats.report, trainstats.commands.analyze; "
            "bad = [m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras', 'tf_keras')]; "
            "print(bad); sys.exit(1 if bad else 0)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
