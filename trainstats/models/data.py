"""GREAT-format examples -> padded-ready numpy arrays (no TensorFlow).

:func:`encode_examples` turns ``(sample_id, example)`` pairs (as yielded by
:func:`trainstats.varmisuse.iter_examples`) into an :class:`EncodedSet`: ragged arrays stored
flat with row splits, ready for :func:`trainstats.models.pipeline.make_dataset`.

Per example with ``T`` tokens and ``E`` edges the arrays are:

* ``subtokens`` int32 ``[T, S]``: sub-token ids per token (``S = vocab.max_subtokens``; 0 pads);
* ``edges`` int32 ``[2E, 3]``: ``(src, dst, edge_type)`` where a GREAT edge ``[a, b, t, name]``
  gives ``(a, b, t + 1)`` and its reverse ``(b, a, t + 1 + NUM_GREAT_EDGE_TYPES)``; type 0 is
  padding (both directions are distinct types, as in GREAT);
* ``candidates`` float32 ``[T]``: 1 on integer ``repair_candidates`` positions (string
  candidates are ignored);
* ``rep`` float32 ``[T]``: the repair target code: for a buggy example 1 on ``repair_targets``
  and 0 elsewhere; for a bug-free example -1 everywhere (padding, added per batch, is -2);
* ``loc`` int32 scalar: ``error_location`` (0, the leading ``#NEWLINE#``, means "no bug").

Examples with more than ``max_tokens`` tokens are skipped and counted (GREAT filters long
functions the same way).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Iterable

import numpy as np

from .vocab import SubtokenVocab

__all__ = ["NUM_GREAT_EDGE_TYPES", "NUM_EDGE_TYPES", "EncodedSet", "encode_examples"]

logger = logging.getLogger(__name__)

#: GREAT edge type ids 0..11 (enum_UNSPECIFIED .. enum_CALLS)
NUM_GREAT_EDGE_TYPES = 12
#: model edge-type vocabulary: 0 = padding, 1..12 forward, 13..24 backward
NUM_EDGE_TYPES = 1 + 2 * NUM_GREAT_EDGE_TYPES


@dataclass
class EncodedSet:
    """Encoded examples, ragged arrays stored flat (row ``i`` is ``flat[splits[i]:splits[i+1]]``)."""

    sample_ids: list[str]
    subtokens: np.ndarray  # int32 [sum T, S]
    token_splits: np.ndarray  # int64 [N + 1]
    edges: np.ndarray  # int32 [sum 2E, 3]
    edge_splits: np.ndarray  # int64 [N + 1]
    candidates: np.ndarray  # float32 [sum T]
    rep: np.ndarray  # float32 [sum T]
    loc: np.ndarray  # int32 [N]
    has_bug: np.ndarray  # bool [N]
    skipped_too_long: int = 0
    max_subtokens: int = field(default=5)

    def __len__(self) -> int:
        return len(self.sample_ids)

    @property
    def n_tokens(self) -> np.ndarray:
        """int32 [N]: tokens per example."""
        return np.diff(self.token_splits).astype(np.int32)


def _encode_one(example: dict, vocab: SubtokenVocab) -> tuple[np.ndarray, ...]:
    tokens = example["source_tokens"]
    n = len(tokens)
    sub = np.zeros((n, vocab.max_subtokens), np.int32)
    for i, ids in enumerate(vocab.encode_tokens(tokens)):
        sub[i, : len(ids)] = ids
    raw = example.get("edges") or []
    if raw:
        e = np.asarray([(int(a), int(b), int(t)) for a, b, t, *_ in raw], np.int32)
        ok = (e[:, 0] >= 0) & (e[:, 0] < n) & (e[:, 1] >= 0) & (e[:, 1] < n) & (e[:, 2] >= 0) & (e[:, 2] < NUM_GREAT_EDGE_TYPES)
        e = e[ok]
        fwd = np.stack([e[:, 0], e[:, 1], e[:, 2] + 1], axis=1)
        bwd = np.stack([e[:, 1], e[:, 0], e[:, 2] + 1 + NUM_GREAT_EDGE_TYPES], axis=1)
        edges = np.concatenate([fwd, bwd]).astype(np.int32)
    else:
        edges = np.zeros((0, 3), np.int32)
    cand = np.zeros(n, np.float32)
    pos = [c for c in example.get("repair_candidates", []) if isinstance(c, int) and 0 <= c < n]
    cand[pos] = 1.0
    has_bug = bool(example["has_bug"])
    if has_bug:
        rep = np.zeros(n, np.float32)
        rep[[t for t in example.get("repair_targets", []) if 0 <= t < n]] = 1.0
    else:
        rep = np.full(n, -1.0, np.float32)
    return sub, edges, cand, rep, int(example["error_location"]), has_bug


def encode_examples(
    pairs: Iterable[tuple[str, dict]],
    vocab: SubtokenVocab,
    *,
    max_tokens: int = 256,
) -> EncodedSet:
    """Encode ``(sample_id, example)`` pairs; examples longer than ``max_tokens`` are skipped.

    Examples must already be valid GREAT examples (``iter_examples(..., validate=True)``); out-of-range
    edges and candidates are dropped defensively.
    """
    if not isinstance(vocab, SubtokenVocab):
        raise TypeError(f"vocab must be a SubtokenVocab; received {type(vocab).__name__}")
    if not isinstance(max_tokens, int) or max_tokens < 2:
        raise ValueError(f"max_tokens must be an int >= 2; received {max_tokens!r}")
    ids, subs, edges, cands, reps, locs, bugs = [], [], [], [], [], [], []
    skipped = 0
    for sample_id, example in pairs:
        if len(example["source_tokens"]) > max_tokens:
            skipped += 1
            continue
        s, e, c, r, loc, hb = _encode_one(example, vocab)
        ids.append(sample_id)
        subs.append(s)
        edges.append(e)
        cands.append(c)
        reps.append(r)
        locs.append(loc)
        bugs.append(hb)
    if skipped:
        logger.info("skipped %d examples longer than %d tokens", skipped, max_tokens)
    s_dim = vocab.max_subtokens

    def splits(arrs: list[np.ndarray]) -> np.ndarray:
        return np.concatenate([[0], np.cumsum([len(a) for a in arrs], dtype=np.int64)]).astype(np.int64)

    return EncodedSet(
        sample_ids=ids,
        subtokens=np.concatenate(subs) if subs else np.zeros((0, s_dim), np.int32),
        token_splits=splits(subs),
        edges=np.concatenate(edges) if edges else np.zeros((0, 3), np.int32),
        edge_splits=splits(edges),
        candidates=np.concatenate(cands) if cands else np.zeros(0, np.float32),
        rep=np.concatenate(reps) if reps else np.zeros(0, np.float32),
        loc=np.asarray(locs, np.int32),
        has_bug=np.asarray(bugs, bool),
        skipped_too_long=skipped,
        max_subtokens=s_dim,
    )


def load_encoded(
    path,
    vocab: SubtokenVocab,
    *,
    split: str | None = None,
    max_tokens: int = 256,
    limit: int | None = None,
) -> EncodedSet:
    """Read GREAT shards (a directory or one file) with :func:`trainstats.varmisuse.iter_examples` and encode.

    ``split`` picks ``<split>__…`` shards in a directory; ``limit`` keeps the first N examples
    (after the length filter is *not* applied: the first N read).
    """
    from itertools import islice

    from trainstats.varmisuse import iter_examples

    pairs = iter_examples(path, split=split)
    if limit is not None:
        pairs = islice(pairs, limit)
    return encode_examples(pairs, vocab, max_tokens=max_tokens)
