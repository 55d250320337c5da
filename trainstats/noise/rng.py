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
- the generator a noise kind gets for one example::

      PCG64(SeedSequence(seed, spawn_key=(1, u32(kind), u64(sample_id) >> 32, u64(sample_id) & 0xffffffff)))
"""
from __future__ import annotations

import hashlib
from typing import Callable, MutableSequence, Sequence, TypeVar

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


class ExampleRandom:
    """Small random source for noise kinds, built only on PCG64 raw output (stable everywhere).

    Args:
        bit_generator: a PCG64, or a zero-argument callable returning one (created on first use,
            so kinds that draw nothing cost nothing).
    """

    def __init__(self, bit_generator: np.random.PCG64 | Callable[[], np.random.PCG64]):
        self._bg = bit_generator if isinstance(bit_generator, np.random.PCG64) else None
        self._make = None if self._bg is not None else bit_generator

    def below(self, n: int) -> int:
        """Uniform integer in ``[0, n)`` (rejection sampling, no modulo bias)."""
        if n <= 0:
            raise ValueError(f"below(n) needs n >= 1, received n={n}")
        if self._bg is None:
            self._bg = self._make()
        limit = _U64 - (_U64 % n)
        while True:
            x = int(self._bg.random_raw())
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
    key = stable_u64(sample_id)
    spawn_key = (1, stable_u32(kind), key >> 32, key & 0xFFFFFFFF)
    return ExampleRandom(lambda: np.random.PCG64(np.random.SeedSequence(seed, spawn_key=spawn_key)))
