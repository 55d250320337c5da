"""Write GREAT batches' per-sample stats into a run directory, and keep the update count per checkpoint.

A GREAT "step" (``valid_interval`` training samples, one checkpoint and one line of ``log.txt``) is
stored as the run's ``epoch``; the store's ``step`` column counts optimizer updates. GREAT's
checkpoints do not hold that count (nor the optimizer), so it is kept beside them in
``<models>/trainstats_updates.json`` (``{"<checkpoint step>": updates}``), written just before each
checkpoint, so that a resumed run continues the count.
"""
from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from trainstats.great.columns import GREAT_COLUMNS, row_values
from trainstats.store import Run, RunWriter, sample_key

__all__ = ["GreatRecorder", "UPDATES_FILE", "load_updates", "save_updates"]

log = logging.getLogger("trainstats.great")

UPDATES_FILE = "trainstats_updates.json"


def load_updates(model_path: str | os.PathLike, checkpoint_step: int) -> int | None:
    """Optimizer updates made before checkpoint ``checkpoint_step`` was saved; None when unknown."""
    path = Path(model_path) / UPDATES_FILE
    if not path.exists():
        return None
    try:
        table = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        log.warning("cannot read %s (%s); the update count restarts", path, e)
        return None
    value = table.get(str(int(checkpoint_step)))
    return None if value is None else int(value)


def save_updates(model_path: str | os.PathLike, checkpoint_step: int, updates: int) -> None:
    """Record ``updates`` for ``checkpoint_step`` (atomically rewrites the small JSON table)."""
    path = Path(model_path) / UPDATES_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    table = json.loads(path.read_text()) if path.exists() else {}
    table[str(int(checkpoint_step))] = int(updates)
    tmp = path.with_name("." + path.name + ".tmp")
    tmp.write_text(json.dumps(table, indent=1, sort_keys=True))
    os.replace(tmp, path)


class GreatRecorder:
    """Rows of GREAT batches into a run directory through :class:`trainstats.store.RunWriter`.

    Args:
        run_dir: the run directory. An existing run is continued as a new attempt (``resume=True``):
            its rows at or after this attempt's first row are superseded, so a resumed GREAT run has
            no duplicate rows.
        config: stored in ``run.json`` (GREAT's config plus where it came from).
        noise_manifest: noise manifest (Parquet) whose ``sample_id``/``noise_kind`` fill the noise columns.
        fresh: refuse an existing run directory instead of continuing it.
    """

    def __init__(self, run_dir: str | os.PathLike, *, config: Mapping[str, Any] | None = None,
                 noise_manifest: str | os.PathLike | None = None, fresh: bool = False,
                 versions: Mapping[str, str] | None = None) -> None:
        run_dir = Path(run_dir)
        exists = Run.exists(run_dir)
        if fresh and exists:
            raise FileExistsError(f"{run_dir} already holds a run; choose a new --stats directory")
        if noise_manifest is not None and not Path(noise_manifest).is_file():
            raise FileNotFoundError(f"noise manifest not found: {noise_manifest}")
        self.writer = RunWriter(run_dir, GREAT_COLUMNS, recorder="great", config=dict(config or {}),
                                noise_manifest=None if noise_manifest is None else str(noise_manifest),
                                resume=exists, versions=versions)
        self.run_dir = run_dir
        self.resumed = exists
        self._registered: set[int] = set()

    def write_batch(self, *, split: str, epoch: int, step: int, batch: int, sample_ids: np.ndarray,
                    n_tokens: np.ndarray, stats: Mapping[str, Any]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Queue one batch: ``stats`` are per-sample tensors/arrays from ``per_sample_stats``.

        Returns the rows' ``(sample_key, values)`` as handed to the writer (for the live monitor)."""
        ids = [i.decode("utf-8") if isinstance(i, bytes) else str(i) for i in np.asarray(sample_ids).tolist()]
        keys = sample_key(ids)
        new = [i for i, k in zip(ids, keys.tolist()) if k not in self._registered]
        if new:
            self.writer.register_samples(new)
            self._registered.update(sample_key(new).tolist())
        arrays = {k: (v.numpy() if hasattr(v, "numpy") else np.asarray(v)) for k, v in stats.items()}
        values = row_values(arrays, n_tokens)
        self.writer.write(split=split, epoch=int(epoch), step=int(step), batch=int(batch), sample_key=keys,
                          values=values)
        return keys, values

    def flush(self) -> None:
        """Complete the part files written so far (called at each GREAT step's end)."""
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()

    def __enter__(self) -> "GreatRecorder":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
