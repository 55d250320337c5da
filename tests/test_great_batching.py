"""The id-carrying GREAT batcher on GREAT-format dev shards (built, and real where present; no checkout).

The batcher calls the loader's ``to_sample``; here a small stand-in converter (characters as sub-token
ids) plays the checkout's, so every batch row can be traced back to its example by id.
"""
from __future__ import annotations

import os
import random
from pathlib import Path

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from trainstats.great.batching import IdBatcher  # noqa: E402
from trainstats.varmisuse import iter_examples  # noqa: E402

WIDTH = 4  # sub-tokens per token


class StandInLoader:
    """Looks like GREAT's DataLoader: ``config``, ``get_data_path(mode)``, ``to_sample(json)``."""

    def __init__(self, root: Path, **config):
        self.root = root
        self.config = {"max_batch_size": 2000, "max_buffer_size": 5, "max_sequence_length": 300,
                       "max_valid_samples": 10_000, "max_token_length": WIDTH, **config}

    def get_data_path(self, mode):
        return os.path.join(self.root, mode)

    def to_sample(self, ex):
        tokens = [[1 + ord(c) % 97 for c in tok[:WIDTH]] or [1] for tok in ex["source_tokens"]]
        kinds = {}
        edges = [[kinds.setdefault(e[3], len(kinds)), e[0], e[1]] for e in ex["edges"]]
        candidates = [c for c in ex["repair_candidates"] if isinstance(c, int)]
        return tokens, edges, ex["error_location"], ex["repair_targets"], candidates


@pytest.fixture(scope="module")
def data_root(great_dev_dir, tmp_path_factory):
    """train/, dev/ and eval/ folders linking to the real shards (no data file rewritten)."""
    root = tmp_path_factory.mktemp("great_data")
    shards = sorted(great_dev_dir.iterdir())
    for mode, picked in (("train", shards[:1]), ("dev", shards[1:]), ("eval", shards)):
        (root / mode).mkdir()
        for shard in picked:
            (root / mode / shard.name).symlink_to(shard)
    return root


@pytest.fixture(scope="module")
def examples(great_dev_dir):
    return dict(iter_examples(great_dev_dir))


def _batches(batcher, mode, limit=None):
    out = []
    for i, b in enumerate(batcher.batcher(mode)):
        if limit is not None and i >= limit:
            break
        out.append([x.numpy() for x in b])
    return out


def _ids(batch):
    return [i.decode() for i in batch[5]]


def test_lines_follow_greats_interleave_in_eval_order(data_root, examples):
    ids = [sid.decode() for _, sid in IdBatcher(StandInLoader(data_root)).lines("eval").as_numpy_iterator()]
    per_shard = {}
    for sid in examples:
        per_shard.setdefault(sid.rsplit(":", 1)[0], []).append(sid)
    queues = [per_shard[name] for name in sorted(per_shard)]
    expected = []
    while any(queues):  # cycle_length=4 over the sorted shards, 16 lines per visit
        for q in queues:
            expected += q[:16]
            del q[:16]
    assert ids == expected


def test_rows_match_their_examples_and_buckets_respect_the_batch_size(data_root, examples):
    loader = StandInLoader(data_root, max_sequence_length=200)
    batches = _batches(IdBatcher(loader), "dev")  # the dev folder holds one shard
    seen = []
    for tokens, edges, error_loc, targets, candidates, ids, n_tokens in batches:
        b = len(ids)
        assert tokens.shape[:2] == (b, n_tokens.max()) and tokens.shape[2] == WIDTH
        assert n_tokens.max() * b <= loader.config["max_batch_size"]
        for row, sid in enumerate(i.decode() for i in ids):
            want = loader.to_sample(examples[sid])
            assert n_tokens[row] == len(want[0])
            for pos, subs in enumerate(want[0]):
                assert tokens[row, pos, :len(subs)].tolist() == subs
            assert not tokens[row, len(want[0]):].any()
            assert error_loc[row] == want[2]
            assert sorted(targets[targets[:, 0] == row, 1].tolist()) == sorted(want[3])
            assert sorted(candidates[candidates[:, 0] == row, 1].tolist()) == sorted(want[4])
            got_edges = edges[edges[:, 1] == row][:, [0, 2, 3]].tolist()
            assert sorted(got_edges) == sorted(want[1])
        seen += _ids([None] * 5 + [ids])
    dev_shard = next((data_root / "dev").iterdir()).name
    in_dev = {sid: ex for sid, ex in examples.items() if sid.startswith(dev_shard + ":")}
    kept = sorted(sid for sid, ex in in_dev.items() if len(ex["source_tokens"]) <= 200)
    assert sorted(seen) == kept  # the length filter, and every kept sample exactly once
    assert 0 < len(kept) < len(in_dev)


def test_dev_stops_after_max_valid_samples(data_root):
    batches = _batches(IdBatcher(StandInLoader(data_root, max_valid_samples=50)), "dev")
    ids = [i for b in batches for i in _ids(b)]
    assert len(ids) == len(set(ids)) == 50
    dev_shard = next((data_root / "dev").iterdir()).name
    assert all(i.startswith(dev_shard + ":") for i in ids)


def test_train_repeats_and_is_repeatable_with_the_same_seeds(data_root, examples):
    def run(limit):
        random.seed(5)
        tf.random.set_seed(5)
        return _batches(IdBatcher(StandInLoader(data_root, max_batch_size=4000)), "train", limit=limit)

    first, second = run(25), run(8)
    ids = [i for b in first for i in _ids(b)]
    train_shard = next((data_root / "train").iterdir()).name
    in_train = {sid for sid, ex in examples.items()
                if sid.startswith(train_shard + ":") and len(ex["source_tokens"]) <= 300}
    assert len(ids) > len(in_train)  # went round more than once
    assert set(ids) <= in_train  # only samples short enough to pass the filter ...
    assert len(set(ids)) > 0.9 * len(in_train)  # ... nearly all of them (a few may still wait in the buffer)
    assert [_ids(b) for b in first[:8]] == [_ids(b) for b in second]
    assert all((a[0] == b[0]).all() for a, b in zip(first, second))


def test_make_batch_takes_the_lengths_nearest_the_pivot(data_root):
    loader = StandInLoader(data_root, max_batch_size=63, max_sequence_length=50)
    buffer = [(([[1]] * n, [], 0, [], []), f"s:{n}".encode()) for n in (5, 10, 20, 21, 40)]
    rest, batch = IdBatcher(loader).make_batch(buffer, choice=lambda b: b[2])  # pivot length 20
    # sorted by |len - 20|: 20, 21, 10, 5, 40; 21 * 3 = 63 fits, 21 * 4 does not
    assert [i.decode() for i in batch[5]] == ["s:20", "s:21", "s:10"]
    assert [r[1] for r in rest] == [b"s:5", b"s:40"]
    assert batch[0].shape == (3, 21, WIDTH)


def test_bad_loaders_and_modes_are_refused(data_root):
    with pytest.raises(TypeError, match="without 'config'"):
        IdBatcher(object())
    loader = StandInLoader(data_root)
    del loader.config["max_buffer_size"]
    with pytest.raises(ValueError, match="lacks \\['max_buffer_size'\\]"):
        IdBatcher(loader)
    with pytest.raises(ValueError, match="must not exceed max_batch_size"):
        IdBatcher(StandInLoader(data_root, max_sequence_length=3000))
    with pytest.raises(ValueError, match="received 'test'"):
        IdBatcher(StandInLoader(data_root)).lines("test")


def test_a_bad_line_is_reported_with_its_shard_and_line(tmp_path, great_dev_dir):
    shard = sorted(great_dev_dir.iterdir())[0]
    (tmp_path / "eval").mkdir()
    lines = shard.read_bytes().splitlines(keepends=True)[:3]
    (tmp_path / "eval" / shard.name).write_bytes(b"".join(lines[:2]) + b'{"source_tokens": [\n')
    with pytest.raises(Exception, match=rf"{shard.name}:3:\d+: invalid JSON"):
        _batches(IdBatcher(StandInLoader(tmp_path)), "eval")
