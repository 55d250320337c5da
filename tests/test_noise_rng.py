"""The per-example random stream of noise kinds: documented derivation, uniformity, rejection."""
from __future__ import annotations

import hashlib

import numpy as np
import pytest

from trainstats.noise import ExampleRandom, example_random


def _documented_words(seed: int, kind: str, sample_id: str, n: int) -> list[int]:
    """The words as docs/noise.md defines them, recomputed without trainstats."""
    key = f"{seed}\x1f{kind}\x1f{sample_id}".encode()
    out = []
    for j in range(n):
        digest = hashlib.blake2b(key + (j // 8).to_bytes(8, "little"), digest_size=64,
                                 person=b"trainstats.noise").digest()
        out.append(int.from_bytes(digest[8 * (j % 8):8 * (j % 8) + 8], "little"))
    return out


def test_words_follow_the_documented_derivation():
    rng = example_random(7, "label", "dev__VARIABLE_MISUSE__SStuB.txt-00024-of-00300:17")
    got = [rng.word() for _ in range(20)]     # crosses two block boundaries
    assert got == _documented_words(7, "label", "dev__VARIABLE_MISUSE__SStuB.txt-00024-of-00300:17", 20)
    assert len(set(got)) == 20


def test_streams_differ_by_seed_kind_and_sample():
    base = example_random(1, "label", "a:1").word()
    assert base == example_random(1, "label", "a:1").word()
    assert len({base, example_random(2, "label", "a:1").word(), example_random(1, "rename", "a:1").word(),
                example_random(1, "label", "a:2").word()}) == 4


def test_below_rejects_the_biased_tail():
    class Scripted(ExampleRandom):
        def __init__(self, words):
            super().__init__(b"unused")
            self.script = list(words)

        def word(self):
            return self.script.pop(0)

    n = 3                                   # 2**64 % 3 == 1: the single word 2**64 - 1 is rejected
    limit = 2**64 - 2**64 % n
    rng = Scripted([limit, 2**64 - 1, 5])
    assert rng.below(n) == 5 % n and rng.script == []
    assert Scripted([limit - 1]).below(n) == (limit - 1) % n
    with pytest.raises(ValueError, match="n >= 1"):
        example_random(0, "label", "x:1").below(0)


def test_below_is_uniform():
    counts = np.zeros(7, dtype=np.int64)
    for i in range(7000):
        rng = example_random(3, "label", f"s:{i}")
        counts[rng.below(7)] += 1
    chi2 = float(((counts - 1000) ** 2 / 1000).sum())
    assert chi2 < 22.5, counts        # p ~ 0.001 for 6 degrees of freedom


def test_shuffle_is_a_seeded_permutation():
    items = list(range(10))
    a, b = items[:], items[:]
    example_random(0, "rename", "s:1").shuffle(a)
    example_random(0, "rename", "s:1").shuffle(b)
    assert a == b and sorted(a) == items and a != items


def test_key_must_be_bytes():
    with pytest.raises(TypeError, match="bytes"):
        ExampleRandom("text")
