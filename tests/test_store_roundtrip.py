"""Round trip through RunWriter -> Parquet -> read / open_dataset, on real files in a temp dir."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from trainstats.store import (
    NotARunDirectory,
    RunWriter,
    UnsupportedSchemaVersion,
    ValueColumn,
    open_dataset,
    read,
    read_metadata,
    sample_key,
)

COLS = [
    ValueColumn("loss", "float32", head="output", stat="loss", unit="nats"),
    ValueColumn("correct", "bool", head="output", stat="correct"),
    ValueColumn("pred", "int64", head="output", stat="pred"),
]
IDS = [f"train__VARIABLE_MISUSE__SStuB.txt-00001-of-00300:{i + 1}" for i in range(6)]


def test_sample_key_is_stable_and_vectorised():
    assert sample_key("a:1") == sample_key(["a:1"])[0]
    # Pinned: the key of an id is part of the on-disk format and must never change.
    import hashlib

    expect = int.from_bytes(hashlib.blake2b(b"a:1", digest_size=8).digest(), "little", signed=True)
    assert sample_key("a:1") == expect
    assert sample_key(IDS).dtype == np.int64 and len(set(sample_key(IDS))) == len(IDS)
    with pytest.raises(TypeError, match="strings"):
        sample_key([1, 2])


def test_values_nulls_ids_and_noise_round_trip(tmp_path):
    run = tmp_path / "run"
    with RunWriter(run, COLS, recorder="test", config={"lr": 0.1}, noise_manifest={IDS[1]: "label", IDS[4]: "inject-repair"}) as w:
        keys = w.register_samples(IDS)
        w.write(split="train", epoch=0, step=0, batch=0, sample_key=keys[:3],
                values={"loss": [0.5, np.nan, 2.0],
                        "correct": np.ma.masked_array([True, False, True], mask=[False, False, True]),
                        "pred": np.array([3, 1, 2])})
        w.write(split="train", epoch=0, step=1, batch=1, sample_key=keys[3:],
                values={"loss": np.array([0.1, 0.2, 0.3], np.float64), "correct": np.array([True, True, False]),
                        "pred": np.ma.masked_array([7, 8, 9], mask=[True, False, False])})
        w.write(split="dev", epoch=0, step=2, batch=0, sample_key=keys[:2], values={"loss": [1.0, 1.5]},
                noise=np.array([False, True]), noise_kind=[None, "custom"])
    df = read(run)
    assert list(df.split) == ["dev"] * 2 + ["train"] * 6
    train = df[df.split == "train"].reset_index(drop=True)
    assert list(train.sample_id) == IDS
    assert list(train.step) == [0, 0, 0, 1, 1, 1]
    assert list(train.batch) == [0, 0, 0, 1, 1, 1]
    assert train.loss.isna().tolist() == [False, True, False, False, False, False]
    assert train.loss[0] == pytest.approx(0.5) and train.loss[5] == pytest.approx(0.3)
    assert train.correct.isna().tolist() == [False, False, True, False, False, False]
    assert train.pred.isna().tolist() == [False, False, False, True, False, False]
    assert str(train.loss.dtype) == "Float32" and str(train.correct.dtype) == "boolean" and str(train.pred.dtype) == "Int64"
    assert train.noise.tolist() == [False, True, False, False, True, False]
    assert train.noise_kind.tolist()[1] == "label" and train.noise_kind.tolist()[4] == "inject-repair"
    assert pd.isna(train.noise_kind[0])
    dev = df[df.split == "dev"].reset_index(drop=True)
    assert dev.noise.tolist() == [False, True] and dev.noise_kind[1] == "custom"
    assert dev.correct.isna().all()  # a column not passed is null, never a default value
    meta = read_metadata(run)
    assert meta["config"] == {"lr": 0.1} and meta["recorder"] == "test"
    assert meta["rows_written"] == 8 and meta["rows_dropped"] == 0 and meta["errors"] == []
    assert [c["name"] for c in meta["value_columns"]] == ["loss", "correct", "pred"]


def test_parts_are_zstd_with_ids_in_the_rows_and_metadata_out_of_the_dataset(tmp_path):
    run = tmp_path / "run"
    with RunWriter(run, COLS) as w:
        keys = w.register_samples(IDS)
        for epoch in range(3):
            w.write(split="train", epoch=epoch, step=epoch, batch=0, sample_key=keys,
                    values={"loss": np.arange(6) + epoch})
            w.flush()
    files = sorted(run.glob("split=*/epoch=*/*.parquet"))
    assert [f.relative_to(run).parts[:2] for f in files] == [("split=train", f"epoch={e}") for e in range(3)]
    assert sorted(p.name for p in run.iterdir()) == ["_trainstats", "split=train"]
    meta = pq.ParquetFile(files[0]).metadata
    names = meta.schema.names
    col = meta.row_group(0).column(names.index("sample_id"))
    assert col.compression == "ZSTD" and col.has_dictionary_page
    # the id is in the row; the key is stored only for rows whose id the writer never learned
    table = pq.read_table(files[0])
    assert table.column("sample_id").to_pylist() == IDS and table.column("sample_key").null_count == 6
    dataset = open_dataset(run)
    assert dataset.to_table().num_rows == 18
    assert dataset.schema.field("epoch").type == "int32" and dataset.schema.field("split").type == "string"
    assert read(run, epochs=[1, 2], columns=["loss"]).loss.tolist() == [1, 2, 3, 4, 5, 6, 2, 3, 4, 5, 6, 7]
    df = read(run, epochs=0, columns=["sample_id", "sample_key"])
    assert df.sample_id.tolist() == IDS and df.sample_key.tolist() == sample_key(IDS).tolist()


def test_a_key_never_registered_is_kept_with_a_null_id(tmp_path):
    run = tmp_path / "run"
    with RunWriter(run, COLS) as w:
        keys = w.register_samples(IDS[:2])
        w.write(split="train", epoch=0, step=0, batch=0, sample_key=np.r_[keys, 77], values={"loss": [1, 2, 3]})
    df = read(run)
    assert df.sample_id.tolist()[:2] == IDS[:2] and pd.isna(df.sample_id[2])
    assert df.sample_key.tolist() == [*keys.tolist(), 77]
    plain = pd.read_parquet(run)
    assert plain.sample_key.isna().tolist() == [True, True, False] and plain.sample_key[2] == 77


def test_existing_run_is_refused_without_resume_and_columns_must_match(tmp_path):
    run = tmp_path / "run"
    RunWriter(run, COLS).close()
    with pytest.raises(FileExistsError, match="resume=True"):
        RunWriter(run, COLS)
    with pytest.raises(ValueError, match="declares value columns"):
        RunWriter(run, COLS[:1], resume=True)


def test_reader_errors_say_what_was_found_and_expected(tmp_path):
    with pytest.raises(NotARunDirectory, match="no run.json"):
        read(tmp_path)
    with pytest.raises(NotARunDirectory, match="does not exist"):
        read(tmp_path / "missing")
    run = tmp_path / "run"
    RunWriter(run, COLS).close()
    run_json = run / "_trainstats" / "run.json"
    meta = json.loads(run_json.read_text())
    meta["schema_version"] = 99
    run_json.write_text(json.dumps(meta))
    with pytest.raises(UnsupportedSchemaVersion, match="schema_version is 99; this trainstats reads schema_version 2"):
        read(run)
    run_json.write_text('{"format": "trainstats-run",\n  "schema_version": }')
    with pytest.raises(NotARunDirectory, match=r"_trainstats/run.json:2:21: run.json is not valid JSON"):
        read_metadata(run)
    RunWriter(tmp_path / "r2", COLS).close()
    with pytest.raises(ValueError, match="Invalid split"):
        read(tmp_path / "r2", split="test")


def test_unwritten_run_reads_as_empty_frame_with_schema(tmp_path):
    run = tmp_path / "run"
    RunWriter(run, COLS).close()
    df = read(run)
    assert len(df) == 0 and {"split", "epoch", "step", "sample_key", "loss", "correct"} <= set(df.columns)
