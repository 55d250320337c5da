"""The one key join of the store (``KeyIndex``) and the id tables on both sides of the files."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from trainstats.store import RunWriter, ValueColumn, read
from trainstats.store.key_index import KeyIndex
from trainstats.store.noise_lookup import NoiseLookup
from trainstats.store.sample_ids import IdMap, IdTable, sample_key


@pytest.mark.parametrize("keys", [
    np.random.default_rng(0).integers(-2**63, 2**63 - 1, 50_000, dtype=np.int64),
    np.arange(50_000, dtype=np.int64) << 20,  # strided keys all share their low bits
    np.arange(-3, 3, dtype=np.int64),
], ids=["random", "strided", "tiny"])
def test_key_index_positions_are_stable_through_growth(keys):
    index, position = KeyIndex(), {}
    for chunk in np.array_split(keys, 9):
        chunk = np.concatenate([chunk, chunk[:7], chunk[:2]])  # repeats inside one call too
        for k, p in zip(chunk.tolist(), index.add(chunk).tolist()):
            assert position.setdefault(k, p) == p
    assert len(index) == len(keys) and index.keys.tolist() == keys.tolist()  # numbered by first appearance
    query = np.random.default_rng(1).permutation(keys)
    assert index.lookup(query).tolist() == [position[k] for k in query.tolist()]
    assert (index.keys[index.lookup(query)] == query).all()
    assert index.lookup(np.array([keys.max() + 1, keys.min() - 1], np.int64)).tolist() == [-1, -1]


def test_noise_lookup_finds_kinds_by_key():
    lookup = NoiseLookup({"a:1": "label", "a:3": "swap"})
    flags, codes = lookup.lookup(sample_key(["a:3", "a:2", "a:1"]))
    assert flags.tolist() == [True, False, True]
    assert [None if c < 0 else lookup.kinds[c] for c in codes] == ["swap", None, "label"]


def test_id_table_builds_the_sample_id_column_in_registration_order():
    table = IdTable()
    table.add(sample_key(["b", "a", "c"]), ["b", "a", "c"])
    ids, keys = table.column(np.r_[sample_key(["c", "b", "c"]), 5])
    assert ids.to_pylist() == ["c", "b", "c", None]
    assert ids.dictionary.to_pylist() == ["b", "c"]  # only the ids used, in registration order
    assert keys.to_pylist() == [None, None, None, 5]


def test_a_key_collision_is_refused_by_the_reader_and_never_mislabels_rows_in_the_writer(tmp_path):
    m = IdMap("run")
    m.add(np.array([7, 8]), pa.array(["x", "y"]))
    with pytest.raises(ValueError, match="sample ids 'x' and 'z' share sample_key 7"):
        m.add(np.array([7]), pa.array(["z"]))
    table = IdTable()
    table.add(np.array([7]), ["x"])
    table.add(np.array([7]), ["z"])
    assert table.collisions == [(7, "x", "z")]
    ids, keys = table.column(np.array([7]))
    assert ids.to_pylist() == [None] and keys.to_pylist() == [7]
    run = tmp_path / "run"
    with RunWriter(run, [ValueColumn("loss", "float32")]) as w:
        w.register_samples(["x"], keys=[7])
        w.register_samples(["z"], keys=[7])
        w.write(split="train", epoch=0, step=0, batch=0, sample_key=[7], values={"loss": [1.0]})
    df = read(run)
    assert df.sample_key.tolist() == [7] and df.sample_id.isna().all()
    assert read(run).shape[0] == 1 and "key_collisions" in (run / "_trainstats" / "writers" / "a0001-w0.json").read_text()
