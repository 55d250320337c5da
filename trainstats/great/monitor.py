"""The live memorization monitor inside the GREAT loop (``trainstats great train ... --stats RUN --monitor``).

The same monitor as :class:`trainstats.keras.MemorizationMonitor` (signals, onset rules and files from
:class:`trainstats.analysis.monitoring.MonitorCore`, TensorBoard through :mod:`trainstats.summaries`),
fed by the loop with each batch's rows as they go to the store. Its "epoch" is GREAT's step (one
validation interval): at the end of each, after the held-out pass and the checkpoint, it computes the
signals and applies the onset rules. ``on_onset="stop"`` ends training there; ``"restore"`` also puts
the onset step's weights back into the model in memory (they are GREAT's checkpoint ``onset + 1``,
which ``onset.json`` names as ``checkpoint_step``; ``log.txt`` and the checkpoints are never rewritten).
"""
from __future__ import annotations

import collections
import logging
import os
import time
import warnings
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from trainstats.analysis.monitoring import ON_ONSET, MonitorCore
from trainstats.analysis.onset import ONSET_RULES, check_onset_args
from trainstats.great.columns import GREAT_COLUMNS
from trainstats.store import monitor_dir

__all__ = ["GreatMonitor"]

log = logging.getLogger("trainstats.great")


class GreatMonitor:
    """Per-GREAT-step memorization signals, TensorBoard summaries and onset detection.

    Args:
        run_dir: the run directory the recorder writes (``--stats``).
        noise_manifest: the noise manifest the recorder fills the flags from (None: no flags).
        log_dir: TensorBoard and monitor files (default ``trainstats.store.monitor_dir(run_dir)``).
        head, rule, patience, min_delta, on_onset, histograms: as for
            :class:`trainstats.keras.MemorizationMonitor` (``head`` default ``joint``).
    """

    def __init__(self, run_dir: str | os.PathLike, *, noise_manifest: str | os.PathLike | None = None,
                 log_dir: str | os.PathLike | None = None, head: str | None = None, rule: str = "auto",
                 patience: int = 2, min_delta: float = 0.01, on_onset: str = "log", histograms: bool = True) -> None:
        if rule != "auto" and rule not in ONSET_RULES:
            raise ValueError(f"Invalid onset rule {rule!r}; expected 'auto' or one of {sorted(ONSET_RULES)}")
        if on_onset not in ON_ONSET:
            raise ValueError(f"Invalid on_onset {on_onset!r}; expected one of {list(ON_ONSET)}")
        check_onset_args(patience, min_delta)
        self.log_dir = Path(log_dir) if log_dir is not None else monitor_dir(run_dir)
        self.on_onset, self.histograms = on_onset, histograms
        self.core = MonitorCore(GREAT_COLUMNS, out_dir=self.log_dir, head=head, rule=rule, patience=patience,
                                min_delta=min_delta, settings={"on_onset": on_onset, "log_dir": str(self.log_dir),
                                                               "epoch_unit": "GREAT step (validation interval)"})
        self._lookup = None
        if noise_manifest is not None:
            from trainstats.store.noise_lookup import NoiseLookup

            self._lookup = NoiseLookup.from_source(noise_manifest)[0]
            self._kind_names = np.array(list(self._lookup.kinds) + [""], dtype=object)
        from trainstats.summaries import SummaryWriter

        self._writer = SummaryWriter(self.log_dir)
        self._snapshots: collections.deque = collections.deque(maxlen=patience + 1)
        self.restored_epoch: int | None = None
        self._failed = False

    @property
    def onset(self):
        """The acting rule's onset (:class:`trainstats.analysis.onset.Onset`) or None."""
        return self.core.onsets.get(self.core.acting_rule)

    def add_batch(self, split: str, *, sample_key: np.ndarray, step: int, values: Mapping[str, Any]) -> None:
        """Hold one batch's rows (``values`` as given to ``RunWriter.write``: masked arrays where null)."""
        if self._failed:
            return
        try:
            self._add_batch(split, sample_key, step, values)
        except Exception as exc:  # noqa: BLE001 - the monitor never stops the training it observes
            self._fail(exc)

    def end_interval(self, epoch: int, model: Any) -> bool:
        """Signals of GREAT step ``epoch`` (0-based), onset rules; True when training should stop."""
        if self._failed:
            return False
        try:
            return self._end_interval(epoch, model)
        except Exception as exc:  # noqa: BLE001
            self._fail(exc)
            return False

    def _fail(self, exc: Exception) -> None:
        self._failed = True
        warnings.warn(f"the memorization monitor stopped after an error ({type(exc).__name__}: {exc}); training "
                      "continues and every row is still recorded", RuntimeWarning, stacklevel=3)

    def _add_batch(self, split, sample_key, step, values) -> None:
        t0 = time.perf_counter()
        noise = kinds = None
        if self._lookup is not None:
            noise, codes = self._lookup.lookup(np.asarray(sample_key, np.int64))
            kinds = self._kind_names[np.where(codes >= 0, codes, len(self._lookup.kinds))]
        self.core.add(split, sample_key=sample_key, step=step, values=values, noise=noise, noise_kind=kinds)
        self.core.seconds += time.perf_counter() - t0

    def _end_interval(self, epoch: int, model: Any) -> bool:
        t0 = time.perf_counter()
        result = self.core.end_epoch(epoch)
        if self.on_onset == "restore":
            self._snapshots.append((epoch, model.get_weights()))
        self._writer.write(epoch, result.scalars, result.histograms if self.histograms else ())
        stop = False
        onset = result.onset
        if onset is not None:
            log.info("memorization onset at GREAT step %d (checkpoint %d; rule %s, head %s), detected at step %d",
                     onset.epoch + 1, onset.epoch + 1, onset.rule, onset.head, epoch + 1)
            stop = self.on_onset in ("stop", "restore")
            if self.on_onset == "restore":
                weights = dict(self._snapshots).get(onset.epoch)
                if weights is not None:
                    model.set_weights(weights)
                    self.restored_epoch = onset.epoch
            self.core.action = {"stopped_at_epoch": epoch if stop else None, "restored_epoch": self.restored_epoch,
                                "checkpoint_step": onset.epoch + 1}
        self.core.seconds += time.perf_counter() - t0
        self.core.write_files()
        return stop

    def close(self) -> None:
        """Write the files one last time and close the TensorBoard writer."""
        try:
            if not self._failed:
                self.core.write_files()
        finally:
            self._writer.close()
