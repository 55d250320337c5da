"""GREAT's batching, with each sample's ``shard:line`` id carried along (no data files rewritten).

:class:`IdBatcher` reproduces ``data_loader.DataLoader.batcher`` of a GREAT checkout step for step:

* shards listed with ``tf.data.Dataset.list_files(<split dir>/*.txt*, shuffle=mode != "eval", seed=42)``;
  lines interleaved with ``cycle_length=4, block_length=16``; in ``train`` mode each shard's lines pass a
  1000-line shuffle buffer and the data repeats forever;
* each line is converted by the checkout's own ``DataLoader.to_sample`` (vocabulary, sub-token cut-off,
  edge renumbering), and samples longer than ``max_sequence_length`` tokens are dropped;
* ``dev`` mode stops after ``max_valid_samples`` kept samples;
* samples wait in a buffer; once ``len(buffer) * len(newest sample)`` exceeds
  ``max_buffer_size * max_batch_size`` (GREAT's test, literally), a batch is cut: a pivot length is drawn
  with Python's ``random.choice``, the buffer is stably sorted by distance to it, and samples are taken
  while ``longest * count <= max_batch_size`` (length buckets); the buffer is drained at the end.

The only change is what travels: every line is paired with its id inside the ``tf.data`` pipeline
(a deterministic ``zip``/``map`` that draws no random seeds), so with the same global seeds the batches
equal GREAT's own, and each batch carries two extra tensors: ``sample_ids`` (string ``[B]``) and
``n_tokens`` (int32 ``[B]``).
"""
from __future__ import annotations

import random
from itertools import chain
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import tensorflow as tf

from trainstats.varmisuse import decode_line

__all__ = ["IdBatcher", "BATCH_SIGNATURE", "MODES"]

MODES = ("train", "dev", "eval")
_REQUIRED_CONFIG = ("max_batch_size", "max_buffer_size", "max_sequence_length", "max_valid_samples",
                    "max_token_length")
_MAX_LINES = 2 ** 62

#: ``(tokens, edges, error_location, repair_targets, repair_candidates, sample_ids, n_tokens)``.
BATCH_SIGNATURE = (
    tf.TensorSpec(shape=(None, None, None), dtype=tf.int32),
    tf.TensorSpec(shape=(None, 4), dtype=tf.int32),
    tf.TensorSpec(shape=(None,), dtype=tf.int32),
    tf.TensorSpec(shape=(None, 2), dtype=tf.int32),
    tf.TensorSpec(shape=(None, 2), dtype=tf.int32),
    tf.TensorSpec(shape=(None,), dtype=tf.string),
    tf.TensorSpec(shape=(None,), dtype=tf.int32),
)

Sample = tuple  # (tokens, edges, error_location, repair_targets, repair_candidates), as GREAT's to_sample


class IdBatcher:
    """Batches of a GREAT ``DataLoader`` with sample ids.

    Args:
        loader: the checkout's ``data_loader.DataLoader`` (anything with ``config`` (the ``data`` section
            of GREAT's config), ``to_sample(json_obj)`` and ``get_data_path(mode)``).

    Example::

        batcher = IdBatcher(data_loader.DataLoader("data", config["data"], vocabulary.Vocabulary("vocab.txt")))
        for tokens, edges, error_loc, targets, candidates, ids, n_tokens in batcher.batcher("dev"):
            ...
    """

    def __init__(self, loader: Any) -> None:
        for attr in ("config", "to_sample", "get_data_path"):
            if not hasattr(loader, attr):
                raise TypeError(f"loader must look like GREAT's DataLoader (config, to_sample, get_data_path); "
                                f"received {type(loader).__name__} without {attr!r}")
        missing = [k for k in _REQUIRED_CONFIG if k not in loader.config]
        if missing:
            raise ValueError(f"GREAT data config lacks {missing}; received keys {sorted(loader.config)}")
        if loader.config["max_sequence_length"] > loader.config["max_batch_size"]:
            raise ValueError(
                f"max_sequence_length ({loader.config['max_sequence_length']}) must not exceed max_batch_size "
                f"({loader.config['max_batch_size']}): a longer sample could never be batched")
        self.loader = loader
        self.config = loader.config

    # ------------------------------------------------------------------ tf.data side
    def lines(self, mode: str) -> tf.data.Dataset:
        """``(line, sample_id)`` string pairs in GREAT's order for ``mode`` (repeating for ``train``)."""
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}; received {mode!r}")
        pattern = self.loader.get_data_path(mode) + "/*.txt*"
        files = tf.data.Dataset.list_files(pattern, shuffle=mode != "eval", seed=42)
        shuffle = mode == "train"

        def with_ids(path: tf.Tensor) -> tf.data.Dataset:
            name = tf.strings.regex_replace(path, r"^.*[/\\]", "")
            pairs = tf.data.Dataset.zip((tf.data.TextLineDataset(path), tf.data.Dataset.range(1, _MAX_LINES)))
            pairs = pairs.map(lambda line, n: (line, tf.strings.join([name, tf.strings.as_string(n)], ":")))
            return pairs.shuffle(buffer_size=1000) if shuffle else pairs

        dataset = files.interleave(with_ids, cycle_length=4, block_length=16)
        dataset = dataset.prefetch(1)
        if mode == "train":
            dataset = dataset.repeat()
        return dataset

    def batcher(self, mode: str = "train") -> tf.data.Dataset:
        """The ``tf.data`` dataset of batches (``BATCH_SIGNATURE``), prefetching one batch like GREAT."""
        lines = self.lines(mode)
        ds = tf.data.Dataset.from_generator(lambda: self.batches_from(lines, mode),
                                            output_signature=BATCH_SIGNATURE)
        return ds.prefetch(1)

    # ------------------------------------------------------------------ Python side
    def batches_from(self, lines: Any, mode: str) -> Iterator[tuple]:
        """GREAT's ``to_batch`` over ``(line, sample_id)`` pairs: filter, dev cut-off, buffer, buckets."""
        cfg = self.config
        max_len, buffer_limit = cfg["max_sequence_length"], cfg["max_buffer_size"] * cfg["max_batch_size"]
        buffer: list[tuple[Sample, bytes]] = []
        kept = 0
        for line, sample_id in lines:
            sample = self._convert(_py(line), _py(sample_id))
            if len(sample[0]) > max_len:
                continue
            buffer.append((sample, _py(sample_id)))
            kept += 1
            if mode == "dev" and kept >= cfg["max_valid_samples"]:
                break
            # GREAT writes sum(sample_len(sample) for l in buffer): len(buffer) * the newest length.
            if len(buffer) * len(sample[0]) > buffer_limit:
                buffer, batch = self.make_batch(buffer)
                yield batch
        while buffer:
            buffer, batch = self.make_batch(buffer)
            yield batch

    def _convert(self, line: bytes, sample_id: bytes) -> Sample:
        """``to_sample(json.loads(line))`` as GREAT does; failures name the ``shard:line``."""
        where = sample_id.decode("utf-8", "replace")
        example = decode_line(line, where=where, validate=False)
        try:
            return self.loader.to_sample(example)
        except (KeyError, TypeError, ValueError, IndexError) as e:
            raise ValueError(f"{where}: GREAT's to_sample failed: {type(e).__name__}: {e}") from e

    def make_batch(self, buffer: list[tuple[Sample, bytes]], *,
                   choice: Callable[[Sequence], Any] = random.choice) -> tuple[list, tuple]:
        """Cut one length-bucketed batch from ``buffer``; return ``(rest of buffer, batch tensors)``."""
        pivot = len(choice(buffer)[0][0])
        buffer = sorted(buffer, key=lambda b: abs(len(b[0][0]) - pivot))
        limit = self.config["max_batch_size"]
        taken, longest = 0, 0
        for sample, _ in buffer:
            longest = max(longest, len(sample[0]))
            if longest * (taken + 1) > limit:
                break
            taken += 1
        if taken == 0:
            raise ValueError(f"a sample of {longest} tokens does not fit max_batch_size={limit}")
        return buffer[taken:], self.to_arrays(buffer[:taken])

    def to_arrays(self, items: Sequence[tuple[Sample, bytes]]) -> tuple[np.ndarray, ...]:
        """Pad and flatten samples into GREAT's batch layout (plus ids and lengths) as numpy arrays."""
        samples = [s for s, _ in items]
        b = len(samples)
        lengths = np.fromiter((len(s[0]) for s in samples), dtype=np.int64, count=b)
        width = self.config["max_token_length"]
        tokens = np.zeros((b, int(lengths.max()), width), dtype=np.int32)
        sub_lens = np.fromiter((len(t) for s in samples for t in s[0]), dtype=np.int64)
        flat = np.fromiter(chain.from_iterable(t for s in samples for t in s[0]), dtype=np.int32)
        row = np.repeat(np.repeat(np.arange(b), lengths), sub_lens)
        starts = np.cumsum(lengths) - lengths
        col = np.repeat(np.arange(int(lengths.sum())) - np.repeat(starts, lengths), sub_lens)
        sub = np.arange(flat.size) - np.repeat(np.cumsum(sub_lens) - sub_lens, sub_lens)
        keep = sub < width
        tokens[row[keep], col[keep], sub[keep]] = flat[keep]

        edges = _indexed([s[1] for s in samples], 3)
        edges = np.stack([edges[:, 1], edges[:, 0], edges[:, 2], edges[:, 3]], axis=1) if edges.size else \
            np.zeros((0, 4), np.int32)
        error_location = np.asarray([s[2] for s in samples], dtype=np.int32)
        targets = _indexed([s[3] for s in samples], None)
        candidates = _indexed([s[4] for s in samples], None)
        ids = np.asarray([i for _, i in items], dtype=object)
        return tokens, edges, error_location, targets, candidates, ids, lengths.astype(np.int32)


def _indexed(per_sample: Sequence[Sequence], width: int | None) -> np.ndarray:
    """Concatenate per-sample lists, prefixing each row with its batch index: ``[n, 1 + width]``."""
    counts = [len(x) for x in per_sample]
    batch_idx = np.repeat(np.arange(len(per_sample), dtype=np.int32), counts)
    if width is None:
        values = np.fromiter(chain.from_iterable(per_sample), dtype=np.int32, count=sum(counts)).reshape(-1, 1)
    else:
        values = np.asarray(list(chain.from_iterable(per_sample)), dtype=np.int32).reshape(-1, width)
    return np.concatenate([batch_idx[:, None], values], axis=1).astype(np.int32)


def _py(x: Any) -> bytes:
    return x.numpy() if hasattr(x, "numpy") else x
