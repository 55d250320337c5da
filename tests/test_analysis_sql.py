"""The plain-aggregate scores as SQL (``trainstats.analysis.sql``): DuckDB and Spark (local mode) give the
engine's scores (``analyze_run``, i.e. ``SampleStats``) on the same run directories — to 1e-9 relative,
and exactly for counts, epochs, 0/1 values, ids and noise flags.

Runs: one real Keras ``fit`` captured by ``PerSampleStats`` (shuffled, some samples twice per epoch, a
dev split), and two runs written through ``RunWriter`` with what real runs have now and then: two heads,
a head null on some samples, a NaN loss, a sample never correct, a constant probability, repeated
appearances within an epoch, keys never registered (null ``sample_id``), a context column."""
from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from trainstats.analysis import analyze_run
from trainstats.analysis.scores import SCORE_NAMES
from trainstats.analysis.sql import ORDER_DEPENDENT, SCORE_SQL, score_sql
from trainstats.store import RunWriter, ValueColumn, sample_key

duckdb = pytest.importorskip("duckdb")

from trainstats.analysis.sql_engines import check_runs, duckdb_scores  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
#: bound on the Spark subprocess (JVM start ~10-20 s, three queries over a few hundred rows)
SPARK_TIMEOUT_S = 240
#: columns compared exactly; every other numeric score to RTOL (sums in another order)
RTOL, ATOL = 1e-9, 1e-12
EXACT_SCORES = ("_n", "_first_learned_epoch", "_final_correct")

EDGE_COLS = [ValueColumn("a_loss", "float32", head="a", stat="loss"),
             ValueColumn("a_p", "float32", head="a", stat="gold_prob"),
             ValueColumn("a_ok", "bool", head="a", stat="correct"),
             ValueColumn("a_m", "float32", head="a", stat="margin", unit="logit"),
             ValueColumn("b_loss", "float64", head="b", stat="loss"),
             ValueColumn("b_ok", "bool", head="b", stat="correct"),
             ValueColumn("has_bug", "bool", head=None, stat="has_bug")]


def _edge_run(path: Path, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    n = 60
    ids = [f"edge.txt:{i + 1}" for i in range(n)]
    has_bug = rng.random(n + 2) < 0.5
    noisy = np.r_[rng.random(n) < 0.3, False, False]
    kinds = np.where(noisy, "label", None)
    with RunWriter(path, EDGE_COLS, config={"noise_level": 0.3, "noise_kind": "label", "seed": seed}) as w:
        keys = np.r_[w.register_samples(ids), np.int64(1000 + seed), np.int64(-7)]  # 2 keys never registered
        step = 0

        def write(split, epoch, j, batch):
            m = len(j)
            p = rng.uniform(0.01, 0.99, m).astype(np.float32)
            p[j == 0] = 0.7                       # a constant probability: variability exactly 0
            ok = p > 0.5
            ok[j == 1] = False                    # never correct: first_learned_epoch = inf
            loss = -np.log(p)
            loss[(j == 2) & (epoch == 1)] = np.nan  # NaN: undefined, skipped like null
            null_b = ~has_bug[j]                  # head b only on buggy samples (null otherwise)
            values = {"a_loss": loss, "a_p": p, "a_ok": ok, "a_m": np.log(p / (1 - p)),
                      "b_loss": np.ma.array(rng.exponential(1.0, m), mask=null_b),
                      "b_ok": np.ma.array(rng.random(m) < 0.5, mask=null_b), "has_bug": has_bug[j]}
            w.write(split=split, epoch=epoch, step=step, batch=batch, sample_key=keys[j], values=values,
                    noise=noisy[j], noise_kind=kinds[j].tolist())

        for epoch in range(3):
            order = rng.permutation(n + 2)
            for b, lo in enumerate(range(0, n + 2, 16)):
                write("train", epoch, order[lo:lo + 16], b)
                step += 1
            write("train", epoch, rng.choice(n + 2, 10, replace=False), 4)  # 10 samples a second time
            step += 1
            write("dev", epoch, np.arange(20), 0)
            w.flush()
    return path


def _keras_run(path: Path) -> Path:
    tf = pytest.importorskip("tensorflow")
    keras = pytest.importorskip("keras")
    from trainstats.keras import PerSampleStats, with_ids

    n, d, c = 80, 6, 3
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, d)).astype("float32")
    y = x[:, :c].argmax(1).astype("int64")
    noisy = rng.random(n) < 0.25
    y[noisy] = (y[noisy] + 1) % c
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((d,)), keras.layers.Dense(16, activation="relu"),
                              keras.layers.Dense(c, name="output")])
    model.compile(keras.optimizers.Adam(0.05), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    ds = with_ids(tf.data.Dataset.from_tensor_slices((x, y)), [f"toy.txt:{i + 1}" for i in range(n)],
                  noise=noisy, noise_kind="label")
    ds = ds.shuffle(n, seed=1).concatenate(ds.take(12)).batch(16)  # 12 samples twice per epoch, in batch 6
    val = with_ids((x[:20], y[:20]), [f"val.txt:{i + 1}" for i in range(20)])
    model.fit(ds, epochs=4, verbose=0, validation_data=val, callbacks=[PerSampleStats(path)])
    return path


@pytest.fixture(scope="module")
def keras_run(tmp_path_factory) -> Path:
    return _keras_run(tmp_path_factory.mktemp("sql") / "keras-run")


@pytest.fixture(scope="module")
def edge_runs(tmp_path_factory) -> list[Path]:
    root = tmp_path_factory.mktemp("sql-edge")
    return [_edge_run(root / f"edge-seed{s}", s) for s in (0, 1)]


def _normalised(sql: pd.DataFrame) -> pd.DataFrame:
    """SQL scores keyed like the engine's: ``sample_key`` filled from the id where it is not stored."""
    stored = sql["sample_key"]
    keys = [int(k) if not pd.isna(k) else sample_key(i) for k, i in zip(stored, sql["sample_id"])]
    return sql.assign(sample_key=np.array(keys, np.int64)).sort_values("sample_key").reset_index(drop=True)


def _assert_agree(engine: pd.DataFrame, sql: pd.DataFrame, what: str) -> None:
    sql = _normalised(sql)
    engine = engine.sort_values("sample_key").reset_index(drop=True)
    assert len(sql) == len(engine) > 0, what
    np.testing.assert_array_equal(sql["sample_key"], engine["sample_key"], err_msg=what)
    assert [None if pd.isna(i) else i for i in sql["sample_id"]] == \
        [None if pd.isna(i) else i for i in engine["sample_id"]], what
    assert sql["noise"].astype(bool).tolist() == engine["noise"].astype(bool).tolist(), what
    assert [None if pd.isna(k) else k for k in sql["noise_kind"]] == \
        [None if pd.isna(k) else k for k in engine["noise_kind"]], what
    skip = {"sample_key", "sample_id", "noise", "noise_kind"}
    expected = [c for c in engine.columns if c not in skip and not c.endswith(tuple(ORDER_DEPENDENT))]
    assert sorted(c for c in sql.columns if c not in skip | {"run"}) == sorted(expected), what
    for col in expected:
        e = engine[col].to_numpy(dtype=np.float64, na_value=np.nan)
        s = sql[col].to_numpy(dtype=np.float64, na_value=np.nan)
        if col.endswith(EXACT_SCORES) or col == "has_bug":
            np.testing.assert_array_equal(s, e, err_msg=f"{what}: {col}")
        else:
            np.testing.assert_allclose(s, e, rtol=RTOL, atol=ATOL, err_msg=f"{what}: {col}")


def test_every_score_is_sql_or_order_dependent():
    assert set(SCORE_SQL) | set(ORDER_DEPENDENT) == set(SCORE_NAMES)
    assert not set(SCORE_SQL) & set(ORDER_DEPENDENT)
    assert set(ORDER_DEPENDENT) == {"forgetting_events", "learned_for_good_epoch"}


@pytest.mark.tf
@pytest.mark.slow
def test_duckdb_gives_the_engines_scores_on_a_keras_run(keras_run):
    engine = analyze_run(keras_run).scores
    (n_col,) = [c for c in engine.columns if c.endswith("_n")]  # one head
    assert set(np.unique(engine[n_col])) == {4.0, 8.0}  # 4 epochs; 12 samples twice per epoch (repeats)
    assert engine["noise"].sum() > 0 and engine["sample_id"].notna().all()
    _assert_agree(engine, duckdb_scores(keras_run), "duckdb, keras run")


def test_duckdb_gives_the_engines_scores_on_edge_runs(edge_runs):
    both = duckdb_scores(edge_runs)
    assert sorted(both["run"].unique()) == sorted(map(str, edge_runs))
    for d in edge_runs:
        engine = analyze_run(d).scores
        assert engine["sample_id"].isna().sum() == 2  # the two keys never registered
        assert np.isinf(engine["a_first_learned_epoch"]).any() and (engine["a_variability"] == 0).any()
        _assert_agree(engine, both[both["run"] == str(d)].drop(columns="run"), f"duckdb, {d.name}")
    dev = duckdb_scores(edge_runs[0], split="dev")
    _assert_agree(analyze_run(edge_runs[0], split="dev").scores, dev, "duckdb, dev split")


def _spark_missing() -> str | None:
    if importlib.util.find_spec("pyspark") is None:
        return "pyspark is not installed (pip install 'trainstats[spark]')"
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        return "no Java runtime for Spark (apt-get install default-jre-headless)"
    return None


@pytest.mark.slow
@pytest.mark.tf
def test_spark_gives_the_engines_scores(keras_run, edge_runs, tmp_path):
    missing = _spark_missing()
    if missing:
        pytest.skip(missing)
    outs = [tmp_path / "keras", tmp_path / "edge"]
    args = [str(outs[0]), str(keras_run), "--", str(outs[1]), *map(str, edge_runs)]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
               PYSPARK_PYTHON=sys.executable)
    try:
        proc = subprocess.run([sys.executable, str(REPO / "tests" / "spark_scores.py"), *args], env=env,
                              capture_output=True, text=True, timeout=SPARK_TIMEOUT_S)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"Spark did not finish in {SPARK_TIMEOUT_S} s; its stderr: {(exc.stderr or b'')[-3000:]!r}")
    assert proc.returncode == 0, proc.stderr[-4000:]

    def read(out: Path) -> pd.DataFrame:  # nullable int64 keys stay exact
        return pq.read_table(out).to_pandas(types_mapper={pa.int64(): pd.Int64Dtype()}.get)

    _assert_agree(analyze_run(keras_run).scores, read(outs[0]).drop(columns="run"), "spark, keras run")
    edge = read(outs[1])
    for d in edge_runs:
        _assert_agree(analyze_run(d).scores, edge[edge["run"] == str(d)].drop(columns="run"), f"spark, {d.name}")


def test_mixed_layouts_and_bad_arguments_are_refused(edge_runs, tmp_path):
    other = tmp_path / "other"
    with RunWriter(other, [ValueColumn("loss", "float32", head="out", stat="loss")]) as w:
        w.write(split="train", epoch=0, step=0, batch=0, sample_key=w.register_samples(["o.txt:1"]),
                values={"loss": np.array([0.5], np.float32)})
    with pytest.raises(ValueError, match=r"other declares the value columns \[\('loss', 'float32'\)\]"):
        duckdb_scores([edge_runs[0], other])
    with pytest.raises(ValueError, match="run_dirs is empty"):
        check_runs([])
    cols = check_runs(edge_runs[0])[1]
    with pytest.raises(ValueError, match="dialect must be one of \\['duckdb', 'spark'\\]; received 'sqlite'"):
        score_sql(cols, dialect="sqlite")
    with pytest.raises(ValueError, match="split must be 'train', 'dev' or 'eval'; received 'test'"):
        score_sql(cols, split="test")
    with pytest.raises(ValueError, match="column name 'a-loss' cannot be used in SQL"):
        score_sql([{"name": "a-loss", "dtype": "float32", "head": "a", "stat": "loss"}])
