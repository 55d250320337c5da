"""``KeyIndex``: int64 sample key -> position, a vectorised hash index (the one key join of the store).

Every place that maps keys to something — the writer's ``sample_key -> sample_id`` table, the noise
manifest look-up, the reader's id map — stores its values in arrays aligned with the positions of a
``KeyIndex``. Open addressing with linear probing over a power-of-two table at most half full; a
slot is ``(key * 0x9E3779B97F4A7C15 mod 2**64) >> (64 - bits)`` (Fibonacci hashing, so sequential or
strided keys spread as well as random ones). A slot holds only the int32 position of its key (the
key itself is read from the keys by position), so the table costs 4-8 bytes per slot, 8-16 per key:
27 MB for 1.75 M keys. Look-ups and inserts are a few numpy passes: about 15-30 ns per key, against
~200 ns for ``np.searchsorted`` into a large sorted array.
"""
from __future__ import annotations

import numpy as np

__all__ = ["KeyIndex"]

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


class KeyIndex:
    """Positions ``0 .. n-1`` of distinct int64 keys, numbered in order of first appearance; a key
    keeps its position once added."""

    def __init__(self, keys: np.ndarray | None = None) -> None:
        self._keys = np.zeros(1024, np.int64)  # by position
        self._n = 0
        self._bits = 11
        self._slot_pos = np.full(1 << self._bits, -1, np.int32)
        if keys is not None:
            self.add(keys)

    def __len__(self) -> int:
        return self._n

    @property
    def keys(self) -> np.ndarray:
        """The distinct keys, by position (a view; do not modify)."""
        return self._keys[: self._n]

    def _slots(self, keys: np.ndarray) -> np.ndarray:
        with np.errstate(over="ignore"):
            h = keys.view(np.uint64) * _GOLDEN
        return (h >> np.uint64(64 - self._bits)).view(np.int64)

    def lookup(self, keys: np.ndarray) -> np.ndarray:
        """Position of each key, ``-1`` where absent."""
        keys = np.ascontiguousarray(keys, dtype=np.int64)
        out = np.full(len(keys), -1, np.int64)
        if self._n == 0 or len(keys) == 0:
            return out
        mask = (1 << self._bits) - 1
        slots = self._slots(keys)
        pos = self._slot_pos[slots]
        hit = self._key_at(pos) == keys
        hit &= pos >= 0
        out[hit] = pos[hit]
        todo = np.flatnonzero(~hit & (pos >= 0))  # slot taken by another key: probe on
        slots = (slots[todo] + 1) & mask
        while len(todo):
            pos = self._slot_pos[slots]
            hit = (self._key_at(pos) == keys[todo]) & (pos >= 0)
            out[todo[hit]] = pos[hit]
            more = ~hit & (pos >= 0)
            todo, slots = todo[more], (slots[more] + 1) & mask
        return out

    def _key_at(self, pos: np.ndarray) -> np.ndarray:
        """The key at each slot position (any value where ``pos`` < 0: callers mask those)."""
        return self._keys[np.maximum(pos, 0)]

    def add(self, keys: np.ndarray) -> np.ndarray:
        """Add the keys not yet present; return every key's position. New keys get the next positions
        in order of first appearance; repeated keys share one."""
        keys = np.ascontiguousarray(keys, dtype=np.int64)
        pos = self.lookup(keys)
        absent = np.flatnonzero(pos < 0)
        if len(absent) == 0:
            return pos
        new = keys[absent]
        self._reserve(self._n + len(new))
        n_before = self._n
        mask = (1 << self._bits) - 1
        todo = np.arange(len(new))
        slots = self._slots(new)
        home = np.empty(len(new), np.int64)  # the slot each new key ends in
        while len(todo):
            held = self._slot_pos[slots]
            taken = held >= 0
            done = taken & (self._key_at(held) == new[todo])
            free = np.flatnonzero(~taken)
            if len(free):  # several keys may claim one free slot: the last write wins
                self._slot_pos[slots[free]] = -2 - free
                won = free[self._slot_pos[slots[free]] == -2 - free]
                positions = np.arange(self._n, self._n + len(won))
                self._slot_pos[slots[won]] = positions
                self._keys[positions] = new[todo[won]]
                self._n += len(won)
                done[won] = True
            home[todo[done]] = slots[done]
            # a slot held by another key: probe the next one; a lost claim: look again at the same slot
            slots = np.where(taken & ~done, (slots + 1) & mask, slots)
            todo, slots = todo[~done], slots[~done]
        self._first_appearance_order(home, self._n - n_before)
        pos[absent] = self._slot_pos[home]
        return pos

    def _first_appearance_order(self, home: np.ndarray, n_new: int) -> None:
        """Renumber the positions just given (claim order) by first appearance, in O(n) (no sort)."""
        n0 = self._n - n_new
        claimed = self._keys[n0:self._n].copy()  # keys by claim order
        tentative = self._slot_pos[home].astype(np.int64) - n0
        first = np.empty(n_new, np.int64)
        first[tentative[::-1]] = np.arange(len(home))[::-1]  # smallest index of each new key
        used = np.zeros(len(home), bool)
        used[first] = True
        final = n0 + (np.cumsum(used) - 1)[first]  # rank of each first appearance
        slots = np.empty(n_new, np.int64)
        slots[tentative] = home
        self._slot_pos[slots] = final
        self._keys[final] = claimed

    def _reserve(self, n: int) -> None:
        if n > len(self._keys):
            grown = np.zeros(max(n, 2 * len(self._keys)), np.int64)
            grown[: self._n] = self._keys[: self._n]
            self._keys = grown
        if 2 * n > (1 << self._bits):
            while 2 * n > (1 << self._bits):
                self._bits += 1
            self._slot_pos = np.full(1 << self._bits, -1, np.int32)
            self._place(self._keys[: self._n], np.arange(self._n))

    def _place(self, keys: np.ndarray, positions: np.ndarray) -> None:
        """Put distinct keys, absent from the table, into slots holding the given positions."""
        mask = (1 << self._bits) - 1
        todo = np.arange(len(keys))
        slots = self._slots(keys)
        while len(todo):
            free = self._slot_pos[slots] < 0
            cand = np.flatnonzero(free)
            self._slot_pos[slots[cand]] = -2 - cand  # one claim per slot wins
            won = cand[self._slot_pos[slots[cand]] == -2 - cand]
            self._slot_pos[slots[won]] = positions[todo[won]]
            left = np.ones(len(todo), bool)
            left[won] = False
            slots = np.where(free, slots, (slots + 1) & mask)  # losers retry the same (now taken) slot
            todo, slots = todo[left], slots[left]
