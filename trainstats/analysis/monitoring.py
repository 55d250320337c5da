"""The live memorization monitor without its framework: signals, onset rules, files, TensorBoard tags.

:class:`MonitorCore` is shared by :class:`trainstats.keras.MemorizationMonitor` and the GREAT loop's
``--monitor``; they add only what needs TensorFlow (``tf.summary``, weights, stopping). Per epoch it
turns the rows it was given into :class:`~trainstats.analysis.live.LiveSignals` signals, applies every
applicable onset rule (:mod:`trainstats.analysis.onset`) to the signals so far, and rewrites two small
files in its folder (by default ``trainstats.store.monitor_dir(run_dir)``):

* ``signals.parquet``: every signal of every epoch (columns :data:`~trainstats.analysis.live.SIGNAL_COLUMNS`);
* ``onset.json``: the settings, each rule's onset (or null), the action taken and the monitor's time.

A resumed run keeps the signals of the epochs before the first epoch this monitor sees.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from trainstats.analysis.live import SIGNAL_COLUMNS, EpochSignals, LiveSignals
from trainstats.analysis.onset import ONSET_RULES, Onset, onset_from_series

__all__ = ["LOG_KEYS", "MonitorCore", "MonitorEpoch", "ON_ONSET", "ONSET_FILE", "SIGNALS_FILE", "scalar_tag"]

SIGNALS_FILE = "signals.parquet"
ONSET_FILE = "onset.json"
#: what a monitor does at the onset: record it; stop training; stop and restore the onset epoch's weights
ON_ONSET: tuple[str, ...] = ("log", "stop", "restore")
#: ``logs`` key -> (split, metric, noise_group) of the monitored head, for ``add_to_logs=True``
LOG_KEYS: dict[str, tuple[str, str, str]] = {
    "monitor_heldout_accuracy": ("heldout", "accuracy", "all"),
    "monitor_clean_accuracy": ("train", "accuracy", "clean"),
    "monitor_noisy_accuracy": ("train", "accuracy", "noisy"),
    "monitor_gini_loss": ("train", "gini_loss", "all"),
    "monitor_newly_fitted": ("train", "newly_fitted", "all"),
    "monitor_noisy_fraction_est": ("train", "noisy_fraction_est", "all"),
    "monitor_noisy_mode_loss": ("train", "noisy_mode_loss", "all"),
    "monitor_auroc_csl": ("train", "auroc_csl", "all"),
    "monitor_auroc_aum": ("train", "auroc_aum", "all"),
}
_SCHEMA = pa.schema([("split", pa.string()), ("epoch", pa.int32()), ("head", pa.string()), ("subset", pa.string()),
                     ("noise_group", pa.string()), ("metric", pa.string()), ("value", pa.float64()),
                     ("n", pa.int64())])


def scalar_tag(row: dict) -> str:
    """TensorBoard tag of one signal: ``head/split/metric[/noise_group][/subset]`` (``:`` -> ``-``),
    e.g. ``joint/train/accuracy/noisy/buggy``, ``joint/dev/accuracy``, ``loc/train/auroc_csl``."""
    parts = [row["head"], row["split"], row["metric"]]
    if row["noise_group"] != "all":
        parts.append(str(row["noise_group"]).replace(":", "-"))
    if row["subset"] != "all":
        parts.append(row["subset"])
    return "/".join(parts)


@dataclass
class MonitorEpoch:
    """What :meth:`MonitorCore.end_epoch` found: the signals, TensorBoard scalars and histograms (per-sample
    losses), the onset of the acting rule if detected at this epoch, and every rule detected at it."""

    signals: EpochSignals
    scalars: list[tuple[str, float]]
    histograms: list[tuple[str, np.ndarray]]
    onset: Onset | None = None
    new_onsets: dict[str, Onset] = field(default_factory=dict)


class MonitorCore:
    """Framework-free monitor state (module docstring). Arguments are checked by the callers' ``__init__``.

    Args:
        value_columns: the run's value column declarations.
        out_dir: folder for ``signals.parquet`` / ``onset.json`` (None: no files).
        head: head whose signals the onset rules watch (None: ``joint`` if recorded, else the first);
            the ``loss`` rule reads the loss signal of :attr:`loss_head` (``head`` if it records a loss,
            else the first head that does: ``loc`` for VarMisuse, whose ``joint`` head has no loss).
        rule: ``"auto"`` (``flags`` once noisy samples were seen, else ``loss``), ``"flags"`` or ``"loss"``.
        patience, min_delta: see :mod:`trainstats.analysis.onset`.
        settings: extra JSON written to ``onset.json`` (e.g. ``on_onset``).
    """

    def __init__(self, value_columns: Sequence[Any], *, out_dir: str | os.PathLike | None, head: str | None,
                 rule: str, patience: int, min_delta: float, settings: dict | None = None):
        self.live = LiveSignals(value_columns)
        if not self.live.heads:
            raise ValueError("the run records no head with a known stat (loss, correct, ...); nothing to monitor")
        if head is None:
            head = "joint" if "joint" in self.live.heads else next(iter(self.live.heads))
        if head not in self.live.heads:
            raise ValueError(f"Invalid value for argument `head`. Received: head={head!r}. Expected one of the "
                             f"recorded heads {list(self.live.heads)}.")
        self.head, self.rule, self.patience, self.min_delta = head, rule, patience, min_delta
        #: head whose loss signals the ``loss`` rule reads: ``head`` if it records a loss, else the first that does
        self.loss_head = head if self.live.heads[head].get("loss") else next(
            (h for h, cols in self.live.heads.items() if cols.get("loss")), head)
        self.out_dir = None if out_dir is None else Path(out_dir)
        self.settings = dict(settings or {})
        self.rows: list[dict] = []
        self._series: dict[tuple, dict[int, float]] = {}
        self._older: list[dict] | None = None
        if self.out_dir is not None and (self.out_dir / SIGNALS_FILE).is_file():
            self._older = pq.read_table(self.out_dir / SIGNALS_FILE).to_pylist()
        self.onsets: dict[str, Onset | None] = {name: None for name in ONSET_RULES}
        self.flags_seen = False
        self.action: dict[str, Any] = {}
        self.seconds = 0.0
        self.epochs = 0

    def add(self, split: str, **rows: Any) -> None:
        """Hold rows of the current epoch (see :meth:`LiveSignals.add`)."""
        self.live.add(split, **rows)

    @property
    def acting_rule(self) -> str:
        """The rule whose onset triggers ``on_onset`` (``auto`` resolved)."""
        if self.rule != "auto":
            return self.rule
        return "flags" if self.flags_seen else "loss"

    @property
    def table(self) -> pd.DataFrame:
        """Every signal so far (columns :data:`SIGNAL_COLUMNS`)."""
        return pd.DataFrame(self.rows, columns=list(SIGNAL_COLUMNS))

    def series(self, split: str, metric: str, *, head: str | None = None, noise_group: str = "all",
               subset: str = "all") -> dict[int, float]:
        """``{epoch: value}`` of one signal (``head`` default: the monitored head)."""
        return dict(self._series.get((split, head or self.head, subset, noise_group, metric), {}))

    def _keep_before(self, epoch: int) -> None:
        rows = self._older if self._older is not None else self.rows
        self._older = None
        self.rows = [r for r in rows if r["epoch"] < epoch]
        self._series = {}
        for r in self.rows:
            self._index(r)
        self.onsets = {k: (o if o is not None and o.detected_at < epoch else None) for k, o in self.onsets.items()}

    def _index(self, r: dict) -> None:
        key = (r["split"], r["head"], r["subset"], r["noise_group"], r["metric"])
        self._series.setdefault(key, {})[int(r["epoch"])] = float(r["value"])

    def end_epoch(self, epoch: int) -> MonitorEpoch:
        """Signals of this epoch and onset rules over all epochs so far."""
        sig = self.live.end_epoch(epoch)
        self.flags_seen = self.flags_seen or sig.has_flags
        if self._older is not None or (self.rows and self.rows[-1]["epoch"] >= epoch):
            self._keep_before(epoch)  # a resumed run, or a later fit() restarting its epochs
        self.rows.extend(sig.rows)
        for r in sig.rows:
            self._index(r)
        self.epochs += 1
        new: dict[str, Onset] = {}
        heldout_split = next((s for s in ("dev", "eval") if (s, self.head, "all", "all", "accuracy")
                              in self._series), None)
        heldout = self.series(heldout_split, "accuracy") if heldout_split else None
        for name, rule in ONSET_RULES.items():
            if self.onsets[name] is not None or (rule.needs_flags and not self.flags_seen):
                continue
            signal_head = self.head if rule.needs_flags else self.loss_head
            m = {e: rule.sign * v for e, v in self.series("train", rule.metric, head=signal_head,
                                                          noise_group=rule.noise_group).items()}
            found = onset_from_series(m, heldout, rule=name, head=self.head, patience=self.patience,
                                      min_delta=self.min_delta, heldout_split=heldout_split,
                                      signal_head=signal_head)
            if found is not None:
                self.onsets[name] = new[name] = found
        scalars = [(scalar_tag(r), r["value"]) for r in sig.rows]
        scalars += [(f"onset/{name}", float(o.epoch)) for name, o in new.items()]
        hists = [(f"{head}/train/loss/{group}", v) for (head, group), v in sig.losses.items() if len(v)]
        return MonitorEpoch(sig, scalars, hists, new.get(self.acting_rule), new)

    def log_values(self, epoch: int) -> dict[str, float]:
        """``logs`` entries of :data:`LOG_KEYS` for the monitored head at ``epoch`` (present ones; a signal
        the head lacks, e.g. a loss signal of ``joint``, from :attr:`loss_head`),
        plus ``monitor_onset``: 1.0 once the acting rule found the onset, else 0.0."""
        out: dict[str, float] = {}
        heldout = next((s for s in ("dev", "eval") if (s, self.head, "all", "all", "accuracy") in self._series), None)
        for key, (split, metric, group) in LOG_KEYS.items():
            split = heldout if split == "heldout" else split
            value = None
            for head in dict.fromkeys((self.head, self.loss_head)):  # loss signals of a head without a loss
                if value is None and split is not None:
                    value = self._series.get((split, head, "all", group, metric), {}).get(epoch)
            if value is not None:
                out[key] = value
        out["monitor_onset"] = float(self.onsets.get(self.acting_rule) is not None)
        return out

    def write_files(self) -> None:
        """Rewrite ``signals.parquet`` and ``onset.json`` atomically (nothing when ``out_dir`` is None)."""
        if self.out_dir is None:
            return
        self.out_dir.mkdir(parents=True, exist_ok=True)
        table = pa.Table.from_pylist(self.rows, schema=_SCHEMA) if self.rows else _SCHEMA.empty_table()
        _atomic(self.out_dir / SIGNALS_FILE, lambda p: pq.write_table(table, p))
        doc = {"head": self.head, "loss_head": self.loss_head, "rule": self.rule, "acting_rule": self.acting_rule, "patience": self.patience,
               "min_delta": self.min_delta, **self.settings,
               "onsets": {k: (None if v is None else v.to_json()) for k, v in self.onsets.items()},
               **self.action, "epochs_monitored": self.epochs, "monitor_seconds": round(self.seconds, 4)}
        _atomic(self.out_dir / ONSET_FILE, lambda p: Path(p).write_text(json.dumps(doc, indent=2) + "\n"))


def _atomic(path: Path, write) -> None:
    tmp = path.with_name(f".tmp-{path.name}-{os.getpid()}")
    write(str(tmp))
    os.replace(tmp, path)
