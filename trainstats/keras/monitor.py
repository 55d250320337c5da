"""``MemorizationMonitor``: watch memorization while ``model.fit`` runs, in TensorBoard, and stop at its onset."""
from __future__ import annotations

import collections
import logging
import os
import time
import warnings
from pathlib import Path
from typing import Any

import keras
import numpy as np

from trainstats.analysis.monitoring import ON_ONSET, MonitorCore
from trainstats.analysis.onset import ONSET_RULES, check_onset_args
from trainstats.keras.callback import PerSampleStats
from trainstats.store import monitor_dir

__all__ = ["MemorizationMonitor"]

log = logging.getLogger("trainstats.keras")


class MemorizationMonitor(keras.callbacks.Callback):
    """Per-epoch memorization signals from the rows a :class:`PerSampleStats` captures, in TensorBoard.

    At each epoch's end (after validation) the monitor summarises that epoch's rows, held in memory
    (no Parquet is re-read), per head, with the functions ``trainstats analyze`` uses
    (:mod:`trainstats.analysis.live`): with noise flags, accuracy of clean and noised samples against
    their labels (noised ones also by subset: buggy / bug-free as trained, and per kind), held-out
    accuracy, AUROC of the running CSL and AUM against the flags; without flags, the Gini of the
    per-sample loss, the share of samples fitted for the first time, and the noisy fraction estimated
    by a two-component loss mixture (Arazo et al. 2019). It writes them as ``tf.summary`` scalars, plus
    histograms of the per-sample training loss (clean / noisy), to ``log_dir``; every signal to
    ``signals.parquet`` and the onset to ``onset.json`` in the same folder; and, with
    ``add_to_logs=True``, the monitored head's main signals into ``logs`` (keys in docs/monitor.md).

    The onset of memorization is found by the rules of :mod:`trainstats.analysis.onset`: ``flags``
    (noised samples' accuracy against their noised labels rises for ``patience`` epochs while held-out
    accuracy stays at or below its best) and ``loss`` (the same with the estimated noisy fraction
    falling). ``on_onset`` says what happens when the acting ``rule`` finds it: ``"log"`` (record it),
    ``"stop"`` (``model.stop_training``), ``"restore"`` (stop and restore the weights of the onset
    epoch, like ``EarlyStopping(restore_best_weights=True)``; keeps ``patience + 1`` copies of the
    weights on the host).

    Args:
        stats: the :class:`PerSampleStats` of the same ``fit`` (it must be in ``callbacks`` too).
        log_dir: TensorBoard folder (default: ``trainstats.store.monitor_dir(stats.run_dir)``, i.e.
            ``RUN_DIR/_trainstats/monitor``); ``signals.parquet`` and ``onset.json`` go there too.
        head: head the rules watch (default ``joint`` if recorded, else the first head).
        rule: ``"auto"`` (``flags`` once noised samples are seen, else ``loss``), ``"flags"``, ``"loss"``.
        patience: epochs the memorization signal must keep rising (>= 1).
        min_delta: smallest rise of the memorization signal that counts (accuracy for ``flags``, nats
            for ``loss``), and the held-out slack (accuracy); default 0.01.
        on_onset: ``"log"``, ``"stop"`` or ``"restore"``.
        histograms: write the per-sample loss histograms.
        add_to_logs: put the monitored head's signals into ``logs`` for later callbacks (and History).
        on_error: ``"warn"`` (a failing monitor warns once and steps aside; training goes on) or ``"raise"``.

    Example::

        stats = PerSampleStats("runs/exp1", noise_manifest="data/noisy/noise_manifest.parquet")
        monitor = MemorizationMonitor(stats, on_onset="restore", patience=2)
        model.fit(ds, validation_data=val, epochs=30, callbacks=[stats, monitor])
        monitor.onset            # Onset(epoch=6, detected_at=8, rule='flags', ...) or None
        # tensorboard --logdir runs/exp1/_trainstats/monitor
    """

    def __init__(self, stats: PerSampleStats, *, log_dir: str | os.PathLike | None = None, head: str | None = None,
                 rule: str = "auto", patience: int = 2, min_delta: float = 0.01, on_onset: str = "log",
                 histograms: bool = True, add_to_logs: bool = False, on_error: str = "warn") -> None:
        super().__init__()
        if not isinstance(stats, PerSampleStats):
            raise TypeError(f"stats must be the PerSampleStats callback of the same fit; received "
                            f"{type(stats).__name__}")
        if rule != "auto" and rule not in ONSET_RULES:
            raise ValueError(f"Invalid value for argument `rule`. Received: rule={rule!r}. Expected 'auto' or one "
                             f"of {sorted(ONSET_RULES)}.")
        if on_onset not in ON_ONSET:
            raise ValueError(f"Invalid value for argument `on_onset`. Received: on_onset={on_onset!r}. Expected "
                             f"one of {list(ON_ONSET)}.")
        if on_error not in ("warn", "raise"):
            raise ValueError(f"Invalid value for argument `on_error`. Received: on_error={on_error!r}. "
                             "Expected 'warn' or 'raise'.")
        if log_dir is not None and not isinstance(log_dir, (str, os.PathLike)):
            raise TypeError(f"log_dir must be a path or None; received {type(log_dir).__name__}")
        check_onset_args(patience, min_delta)
        self.stats = stats
        self.log_dir = Path(log_dir) if log_dir is not None else monitor_dir(stats.run_dir)
        self.head, self.rule, self.patience, self.min_delta = head, rule, int(patience), float(min_delta)
        self.on_onset, self.histograms, self.add_to_logs, self.on_error = on_onset, histograms, add_to_logs, on_error
        self.core: MonitorCore | None = None
        self.restored_epoch: int | None = None
        self.stopped_epoch: int | None = None
        self._writer = None
        self._lookup = None
        self._snapshots: collections.deque = collections.deque(maxlen=self.patience + 1)
        self._failed = False
        self._seconds = 0.0

    # ------------------------------------------------------------------ results
    @property
    def onset(self):
        """The acting rule's :class:`~trainstats.analysis.onset.Onset`, or None (not found yet)."""
        return None if self.core is None else self.core.onsets.get(self.core.acting_rule)

    @property
    def onsets(self) -> dict:
        """Every rule's onset (None where not found): ``{"flags": Onset | None, "loss": ...}``."""
        return {} if self.core is None else dict(self.core.onsets)

    @property
    def signals(self):
        """All signals so far (pandas, long format: docs/monitor.md); empty before the first epoch."""
        import pandas as pd

        from trainstats.analysis.live import SIGNAL_COLUMNS

        return pd.DataFrame(columns=list(SIGNAL_COLUMNS)) if self.core is None else self.core.table

    # ------------------------------------------------------------------ Keras hooks
    def on_train_begin(self, logs=None):
        if self.stats.model is not self.model:
            raise ValueError("MemorizationMonitor: its PerSampleStats is not a callback of this fit; pass both: "
                             "callbacks=[stats, MemorizationMonitor(stats)]")
        if self._writer is None:
            from trainstats.summaries import SummaryWriter

            self._writer = SummaryWriter(self.log_dir)
        self.stats.add_row_listener(self._on_rows)
        self._snapshots.clear()
        self.stopped_epoch = None

    def on_epoch_end(self, epoch, logs=None):
        if self._failed:
            return
        # this epoch's last steps and its validation rows: PerSampleStats' own work (it would do it in its
        # on_epoch_end); the time our row listener spends inside is counted by the listener
        self.stats.drain()
        if self.core is None or self._failed:
            return
        t0 = time.perf_counter()
        try:
            self._end_epoch(int(epoch), logs)
        except Exception as exc:  # noqa: BLE001 - the monitor must not stop the training it observes
            self._fail(exc)
        finally:
            self._seconds += time.perf_counter() - t0
            self.core.seconds = self._seconds

    def on_train_end(self, logs=None):
        if self.core is not None and not self._failed:
            try:
                self.core.write_files()
            except Exception as exc:  # noqa: BLE001
                self._fail(exc)
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    # ------------------------------------------------------------------ internals
    def _on_rows(self, split: str, epoch: int, rows: dict) -> None:
        if self._failed or split not in ("train", "dev", "eval"):
            return
        t0 = time.perf_counter()
        try:
            if self.core is None:
                self.core = MonitorCore(self.stats.columns or [], out_dir=self.log_dir, head=self.head,
                                        rule=self.rule, patience=self.patience, min_delta=self.min_delta,
                                        settings={"on_onset": self.on_onset, "log_dir": str(self.log_dir)})
            rows = dict(rows)
            keys = rows.pop("sample_key")
            noise, kinds = rows.pop("noise"), rows.pop("noise_kind")
            if noise is None and self.stats.noise_manifest is not None:
                noise, kinds = self._manifest_flags(keys)
            self.core.add(split, sample_key=keys, step=rows.pop("step"), values=rows, noise=noise,
                          noise_kind=kinds)
        except Exception as exc:  # noqa: BLE001
            self._fail(exc)
        finally:
            self._seconds += time.perf_counter() - t0

    def _manifest_flags(self, keys: np.ndarray):
        if self._lookup is None:
            from trainstats.store.noise_lookup import NoiseLookup

            self._lookup = NoiseLookup.from_source(self.stats.noise_manifest)[0]
        flags, codes = self._lookup.lookup(keys)
        names = np.array(list(self._lookup.kinds) + [""], dtype=object)
        return flags, names[np.where(codes >= 0, codes, len(self._lookup.kinds))]

    def _end_epoch(self, epoch: int, logs) -> None:
        core = self.core
        result = core.end_epoch(epoch)
        if self.on_onset == "restore":
            self._snapshots.append((epoch, self.model.get_weights()))
        self._writer.write(epoch, result.scalars, result.histograms if self.histograms else ())
        onset = result.onset
        if onset is not None:
            log.info("MemorizationMonitor: memorization onset at epoch %d (rule %s, head %s), detected at epoch %d",
                     onset.epoch, onset.rule, onset.head, epoch)
            if self.on_onset in ("stop", "restore"):
                self.model.stop_training = True
                self.stopped_epoch = epoch
            if self.on_onset == "restore":
                weights = dict(self._snapshots).get(onset.epoch)
                if weights is None:  # cannot happen with patience + 1 snapshots; say so rather than guess
                    warnings.warn(f"MemorizationMonitor: no weights kept for onset epoch {onset.epoch}; "
                                  "training stopped with the current weights", RuntimeWarning, stacklevel=2)
                else:
                    self.model.set_weights(weights)
                    self.restored_epoch = onset.epoch
            core.action = {"stopped_at_epoch": self.stopped_epoch, "restored_epoch": self.restored_epoch}
        if self.add_to_logs and logs is not None:
            logs.update(core.log_values(epoch))
        core.seconds = self._seconds
        core.write_files()

    def _fail(self, exc: Exception) -> None:
        if self.on_error == "raise":
            raise exc
        if not self._failed:
            self._failed = True
            warnings.warn(f"MemorizationMonitor stopped monitoring after an error ({type(exc).__name__}: {exc}); "
                          "training continues and PerSampleStats still records every row.", RuntimeWarning,
                          stacklevel=2)
