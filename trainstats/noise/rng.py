"""Seed derivation: every random choice is a pure function of (seed, split, class, kind, sample id).

Nothing depends on the order in which shards are processed, the number of workers, the machine or
Python's ``hash()``. Only the *raw* 64-bit output of numpy's PCG64 bit generator is used (bit
generators are stream-stable across numpy versions, unlike ``Generator`` methods).

Derivation (``u32(s)`` = first 4 bytes of ``blake2b(s.encode(), digest_size=8)``, little-endian;
``u64(s)`` = all 8 bytes, little-endian, unsigned):

- selection priority of the ``i``-th example of class ``c`` (1 buggy, 0 bug-free) of ``split``, in
  (shard name, line) order::

      PCG64(SeedSequence(seed, spawn_key=(0, u32(split), c))).random_raw(n_class)[i]

  Examples are visited by increasing priority (ties by position): a uniform random order.
- the random words a noise kind gets for one example: word ``j`` (``j = 0, 1, ...``) is bytes
  ``8*(j % 8)`` to ``8*(j % 8) + 8`` (little-endian, unsigned) of::

      blake2b(f"{seed}\x1f{kind}\x1f{sample_id}".encode() + (j // 8).to_bytes(8, "little"),
              digest_size=64, person=b"trainstats.noise")

  (a counter-mode stream: about 1 us per example instead of the ~35 us of seeding a PCG64 with a
  SeedSequence, and stable wherever ``hashlib`` is, which is everywhere).
"""
from __future__ import annotations

import hashlib
from typing import MutableSequence, Sequence, TypeVar

import numpy as np

__all__ = ["ExampleRandom", "example_random", "selection_order", "stable_u32", "stable_u64"]

T = TypeVar("T")
_U64 = 1 << 64


def stable_u64(text: str) -> int:
    """Unsigned 64-bit blake2b-8 of the UTF-8 text, little-endian (same digest as ``store.sample_key``)."""
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(), "little")


def stable_u32(text: str) -> int:
    """Low 32 bits of :func:`stable_u64`."""
    return stable_u64(text) & 0xFFFFFFFF


def selection_order(seed: int, split: str, has_bug: bool, n: int) -> np.ndarray:
    """Return a uniform random permutation of ``range(n)`` (int64) for one class of one split."""
    ss = np.random.SeedSequence(seed, spawn_key=(0, stable_u32(split), int(bool(has_bug))))
    priority = np.random.PCG64(ss).random_raw(n) if n else np.zeros(0, dtype=np.uint64)
    return np.argsort(priority, kind="stable").astype(np.int64)


_PERSON = b"trainstats.noise"


class ExampleRandom:
    """Small random source for noise kinds: a stream of uniform 64-bit words, stable everywhere.

    Args:
        key: the stream's key; word ``j`` is bytes ``8*(j % 8)`` to ``8*(j % 8) + 8`` (little-endian)
            of ``blake2b(key + (j // 8).to_bytes(8, "little"), digest_size=64,
            person=b"trainstats.noise")``. Nothing is hashed until the first draw.
    """

    def __init__(self, key: bytes):
        if not isinstance(key, bytes):
            raise TypeError(f"key must be bytes, received {type(key).__name__}")
        self._key = key
        self._block = 0
        self._words: list[int] = []

    def word(self) -> int:
        """The next uniform integer in ``[0, 2**64)``."""
        if not self._words:
            digest = hashlib.blake2b(self._key + self._block.to_bytes(8, "little"), digest_size=64,
                                     person=_PERSON).digest()
            self._block += 1
            self._words = [int.from_bytes(digest[i:i + 8], "little") for i in range(56, -8, -8)]
        return self._words.pop()

    def below(self, n: int) -> int:
        """Uniform integer in ``[0, n)`` (rejection sampling, no modulo bias)."""
        if n <= 0:
            raise ValueError(f"below(n) needs n >= 1, received n={n}")
        limit = _U64 - (_U64 % n)
        while True:
            x = self.word()
            if x < limit:
                return x % n

    def choice(self, items: Sequence[T]) -> T:
        """One item of a non-empty sequence, uniformly."""
        return items[self.below(len(items))]

    def shuffle(self, items: MutableSequence) -> None:
        """Fisher-Yates shuffle in place."""
        for i in range(len(items) - 1, 0, -1):
            j = self.below(i + 1)
            items[i], items[j] = items[j], items[i]


def example_random(seed: int, kind: str, sample_id: str) -> ExampleRandom:
    """The :class:`ExampleRandom` a kind gets for ``sample_id`` (see the module docstring)."""
    return ExampleRandom(f"{seed}\x1f{kind}\x1f{sample_id}".encode("utf-8"))
