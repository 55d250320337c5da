"""``RunWriter``: per-batch rows in, hive-partitioned Parquet out, on a background thread.

Training code calls :meth:`RunWriter.write` once per batch. The call validates and copies the arrays
(a ``ValueError`` naming the column for wrong lengths or dtypes is raised right there, in the caller's
thread) and puts them on a bounded queue; a background thread groups rows per ``(split, epoch)``,
converts them to Arrow (the keys become the ``sample_id`` column through the ids registered with
:meth:`RunWriter.register_samples`) and streams row groups into part files. A part is written under
``_trainstats/tmp/`` and renamed into its partition folder when complete, so readers never see half
a file. When the attempt writes its first row, the rows of older attempts it supersedes leave the
dataset (:mod:`trainstats.store.supersede`) before any of its own rows is published.

The writer never blocks or crashes the training it observes: when the queue is full the batch is
dropped and counted; when writing fails (disk full, permission) the error is recorded in
``_trainstats/writers/a<attempt>-w<writer>.json``, a ``RuntimeWarning`` is issued once, and later rows are
dropped and counted — unless ``on_error="raise"``, in which case the next call raises
:class:`StoreWriteError`.

Example::

    from trainstats.store import RunWriter, ValueColumn, sample_key
    cols = [ValueColumn("loss", "float32", head="output", stat="loss", unit="nats")]
    with RunWriter("runs/demo", cols) as w:
        keys = w.register_samples([f"ex:{i}" for i in range(4)])
        w.write(split="train", epoch=0, step=0, batch=0, sample_key=keys,
                values={"loss": [0.1, 0.2, 0.3, 0.4]})
"""
from __future__ import annotations

import atexit
import logging
import os
import queue
import re
import threading
import time
import warnings
import weakref
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from trainstats.store import durable
from trainstats.store import run_dir as rd
from trainstats.store.batch import first_step, make_batch
from trainstats.store.errors import StoreWriteError, UnsupportedSchemaVersion
from trainstats.store.layout import Layout
from trainstats.store.noise_lookup import NoiseLookup
from trainstats.store.parts import PartSet
from trainstats.store.sample_ids import IdTable
from trainstats.store.sample_ids import sample_key as _sample_key
from trainstats.store.schema import ValueColumn, check_value_columns
from trainstats.store.supersede import attempt_starts, reconcile

__all__ = ["RunWriter"]

log = logging.getLogger("trainstats.store")

_WRITER_ID = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_OPEN_WRITERS: "weakref.WeakSet[RunWriter]" = weakref.WeakSet()


@atexit.register
def _close_open_writers() -> None:  # pragma: no cover - exercised at interpreter exit
    for w in list(_OPEN_WRITERS):
        try:
            w.close()
        except Exception:  # noqa: BLE001 - never fail interpreter shutdown
            pass


class RunWriter:
    """Write per-sample rows of one run (or one attempt of a resumed run) to ``run_dir``.

    Args:
        run_dir: the run directory; created when absent.
        value_columns: the value columns this run records (``ValueColumn``), fixed for the run.
        recorder: who writes (``"keras"``, ``"great"``, ``"custom"``), stored in ``run.json``.
        config: JSON-serialisable user configuration stored in ``run.json``.
        noise_manifest: where ``noise``/``noise_kind`` come from when ``write`` is not given them: a
            Parquet manifest path, a ``{sample_id: kind}`` mapping or a table with ``sample_id`` and
            ``noise_kind``. ``None``: every row is clean unless the caller passes flags.
        resume: continue an existing run as a new attempt (rows of older attempts at or after this
            attempt's first row are superseded). Without it an existing run is refused.
        attempt: join (or create) this attempt number instead of allocating the next one; for several
            writers of one job (one per worker), each with its own ``writer_id``.
        writer_id: distinguishes concurrent writers of one attempt (letters, digits, ``_.-``).
        on_error: ``"warn"`` (record, warn once, keep training) or ``"raise"``.
        max_queue_rows: rows allowed in flight before batches are dropped (and counted).
        row_group_rows: rows per Parquet row group.
        max_part_seconds: a part open longer than this is completed, bounding what a crash loses.
        versions: extra library versions for ``run.json`` (e.g. ``{"tensorflow": "2.21.0"}``).
    """

    def __init__(
        self,
        run_dir: str | os.PathLike,
        value_columns: Sequence[ValueColumn],
        *,
        recorder: str = "custom",
        config: Mapping[str, Any] | None = None,
        noise_manifest: Any = None,
        resume: bool = False,
        attempt: int | None = None,
        writer_id: str = "0",
        on_error: str = "warn",
        max_queue_rows: int = 4_000_000,
        row_group_rows: int = 1_000_000,
        max_part_seconds: float = 600.0,
        versions: Mapping[str, str] | None = None,
    ) -> None:
        if on_error not in ("warn", "raise"):
            raise ValueError(f"Invalid value for argument `on_error`. Received: on_error={on_error!r}. "
                             "Expected 'warn' or 'raise'.")
        if not isinstance(writer_id, str) or not _WRITER_ID.match(writer_id):
            raise ValueError(f"Invalid writer_id {writer_id!r}: expected 1-64 of letters, digits, '_', '.', '-'.")
        for name, v in (("max_queue_rows", max_queue_rows), ("row_group_rows", row_group_rows)):
            if not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive int; received {v!r}")
        self.columns = check_value_columns(value_columns)
        self._by_name = {c.name: c for c in self.columns}
        self.run_dir = Path(run_dir)
        self.writer_id = writer_id
        self.on_error = on_error
        self._max_queue_rows = max_queue_rows

        self._noise, manifest_desc = (None, None)
        if noise_manifest is not None:
            self._noise, manifest_desc = NoiseLookup.from_source(noise_manifest)

        self._layout = layout = Layout(self.run_dir)
        if layout.legacy:
            raise UnsupportedSchemaVersion(
                f"{self.run_dir} was written by an older trainstats (schema_version 1: run.json at the top). "
                f"Upgrade it in place with `trainstats migrate {self.run_dir}`, then resume.")
        exists = layout.exists()
        if exists and not resume and attempt is None:
            raise FileExistsError(
                f"{self.run_dir} already holds a run. Pass resume=True to continue it as a new attempt "
                "(the newest attempt's rows win), or choose another directory."
            )
        self.metadata, self.created = rd.create_or_open_run(
            layout, self.columns, recorder=recorder, config=config,
            noise_manifest=manifest_desc, versions=versions)
        self.attempt = rd.allocate_attempt(layout, attempt, noise_manifest=manifest_desc)
        self._remove_stale_temp_files()

        self._status_path = layout.writer_file(self.attempt, writer_id)
        self._lock = threading.Lock()
        self._rows_dropped = 0
        self._queued_rows = 0
        self._errors: list[dict[str, str]] = []
        self._first_position: dict[str, Any] | None = None
        self._warned_drop = False
        self._reported_error = False
        self._closed = False
        self._ids = IdTable()
        self._reported_collisions = 0
        self._parts = PartSet(layout, self.columns, attempt=self.attempt, writer_id=writer_id,
                              row_group_rows=row_group_rows, max_part_seconds=max_part_seconds, ids=self._ids)
        self._queue: "queue.Queue[tuple[str, Any]]" = queue.Queue()
        self._write_status()
        self._thread = threading.Thread(target=self._run, name=f"trainstats-writer-{writer_id}", daemon=True)
        self._thread.start()
        _OPEN_WRITERS.add(self)

    # ------------------------------------------------------------------ public API
    @property
    def rows_written(self) -> int:
        """Rows in completed part files so far."""
        return self._parts.rows_completed

    @property
    def rows_dropped(self) -> int:
        """Rows that could not be written (queue full or a write error)."""
        return self._rows_dropped

    @property
    def errors(self) -> list[dict[str, str]]:
        """Write errors so far: ``{"time", "type", "message"}`` each."""
        return list(self._errors)

    def register_samples(self, sample_ids: Sequence[str], *, keys: Any = None) -> np.ndarray:
        """Tell the writer the ids of these samples; return their keys. Rows written with a key are
        stored with its id (the ``sample_id`` column); a key never registered is stored as is, with a
        null ``sample_id``. Register before writing the rows (registrations are applied in order).

        ``keys``: the ids' keys when the caller already computed them with :func:`sample_key`
        (saves hashing again; a mismatch in length raises)."""
        ids = [i.decode("utf-8") if isinstance(i, bytes) else i for i in sample_ids]
        if keys is None:
            keys = _sample_key(ids)
        else:
            keys = np.asarray(keys)
            if keys.shape != (len(ids),) or keys.dtype.kind not in "iu":
                raise ValueError(f"keys must be an integer array with one entry per id; received shape "
                                 f"{keys.shape} dtype {keys.dtype} for {len(ids)} ids")
            keys = keys.astype(np.int64)
        self._check_open()
        self._check_error()
        if len(ids):
            self._queue.put(("samples", (keys, ids)))
        return keys

    def write(
        self,
        *,
        split: str,
        epoch: int,
        step: int | Any,
        batch: int | Any,
        sample_key: Any,
        values: Mapping[str, Any],
        noise: Any = None,
        noise_kind: Any = None,
    ) -> None:
        """Queue rows. Arrays may be numpy arrays, masked arrays (masked -> null), lists or tensors;
        every array has one entry per sample. NaN in a float column is null. ``step`` and ``batch``
        are ints or integer arrays with one entry per row (several batches in one call)."""
        self._check_open()
        self._check_error()
        chunk = make_batch(self._by_name, split=split, epoch=epoch, step=step, batch=batch,
                           sample_key=sample_key, values=values, noise=noise, noise_kind=noise_kind)
        n = len(chunk.keys)
        with self._lock:
            failed = bool(self._errors)
            full = self._queued_rows + n > self._max_queue_rows
            if failed or full:
                self._rows_dropped += n
            else:
                self._queued_rows += n
        if failed:
            return
        if full:
            if not self._warned_drop:
                self._warned_drop = True
                warnings.warn(f"trainstats: writer queue for {self.run_dir} is full "
                              f"({self._max_queue_rows} rows); dropping rows (counted in "
                              f"{self._status_path.name}). Raise max_queue_rows or write less often.",
                              RuntimeWarning, stacklevel=2)
            return
        self._queue.put(("rows", chunk))

    def flush(self, timeout: float | None = None) -> None:
        """Block until every row queued so far is in a completed part file."""
        self._check_open()
        self._call_thread("flush", timeout)
        self._check_error()

    def close(self, timeout: float | None = None) -> None:
        """Flush, stop the background thread and mark this writer closed. Idempotent."""
        if self._closed:
            return
        self._closed = True
        _OPEN_WRITERS.discard(self)
        if self._thread.is_alive():
            self._call_thread("close", timeout)
            self._thread.join(timeout)
        self._check_error()

    def __enter__(self) -> "RunWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------------ caller-thread helpers
    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError(f"RunWriter for {self.run_dir} is closed")

    def _check_error(self) -> None:
        if not self._errors:
            return
        err = self._errors[0]
        msg = (f"trainstats could not write rows to {self.run_dir}: {err['type']}: {err['message']}. "
               f"Rows are no longer recorded (see {self._status_path})")
        if self.on_error == "raise":
            raise StoreWriteError(f"{msg}; on_error='raise'.")
        if not self._reported_error:  # the writer thread already logged it; warn once where training runs
            self._reported_error = True
            warnings.warn(f"{msg}; training continues.", RuntimeWarning, stacklevel=3)

    def _call_thread(self, what: str, timeout: float | None) -> None:
        done = threading.Event()
        self._queue.put((what, done))
        if not done.wait(timeout):
            raise TimeoutError(f"RunWriter.{what}() did not finish within {timeout} s")

    # ------------------------------------------------------------------ background thread
    def _run(self) -> None:
        last_check = time.monotonic()
        while True:
            if time.monotonic() - last_check > 1.0:
                last_check = time.monotonic()
                if not self._errors:
                    self._guard(self._parts.complete_old_parts)
            try:
                kind, item = self._queue.get_nowait()
            except queue.Empty:  # idle: prepare buffered rows now rather than at the next flush
                if not self._errors:
                    self._guard(self._parts.stage, 8192)
                try:
                    kind, item = self._queue.get(timeout=1.0)
                except queue.Empty:
                    continue
            if kind == "rows":
                n = len(item.keys)
                if self._first_position is None and not self._errors:
                    self._guard(self._start, item)
                if self._errors:
                    self._count_dropped(n)
                else:  # on failure, _guard counts the rows it discards (this chunk included)
                    self._guard(self._parts.add, item, self._noise)
                with self._lock:
                    self._queued_rows -= n
            elif kind == "samples":
                self._ids.add(*item)
                if len(self._ids.collisions) > self._reported_collisions:
                    self._report_collisions()
            else:  # flush / close
                if not self._errors:
                    self._guard(self._parts.complete_all)
                if kind == "close":
                    self._parts.abandon()
                self._guard(self._write_status, closed=(kind == "close"), sync=(kind == "close"))
                item.set()
                if kind == "close":
                    return

    def _start(self, chunk) -> None:
        """First row of this writer: record where the attempt starts (durable), then take the rows
        it supersedes out of the dataset — both before any row of it can be published."""
        self._first_position = {"split": chunk.split, "epoch": chunk.epoch, "step": first_step(chunk)}
        self._write_status()
        if len(self._layout.attempt_numbers()) > 1:
            reconcile(self._layout, self.columns, attempt_starts(self._layout))

    def _report_collisions(self) -> None:
        new = self._ids.collisions[self._reported_collisions:]
        self._reported_collisions = len(self._ids.collisions)
        for key, first, second in new:
            log.warning("trainstats: sample ids %r and %r share sample_key %d in %s; their rows are stored "
                        "with the key and no sample_id", first, second, key, self.run_dir)

    def _count_dropped(self, n: int) -> None:
        with self._lock:
            self._rows_dropped += n

    def _guard(self, fn, *args, **kwargs) -> bool:
        try:
            fn(*args, **kwargs)
            return True
        except Exception as e:  # noqa: BLE001 - record and keep the training alive
            with self._lock:
                self._rows_dropped += self._parts.discard_pending()
            self._errors.append({"time": rd.utc_now(), "type": type(e).__name__, "message": str(e)})
            log.error("trainstats writer error in %s: %s", self.run_dir, e)
            try:
                self._parts.abandon()
                self._write_status()
            except Exception:  # noqa: BLE001 - the disk may be gone; the error is in memory
                pass
            return False

    def _write_status(self, closed: bool = False, *, sync: bool = True) -> None:
        """Rewrite this writer's status file; fsynced unless ``sync=False`` (the flush-time counters)."""
        durable.write_json_atomic(self._status_path, {
            "attempt": self.attempt,
            "writer": self.writer_id,
            "pid": os.getpid(),
            "first_position": self._first_position,
            "rows_written": self._parts.rows_completed,
            "rows_dropped": self._rows_dropped,
            "errors": self._errors,
            "key_collisions": [{"sample_key": k, "sample_ids": [a, b]} for k, a, b in self._ids.collisions],
            "closed": closed,
            "updated_at": rd.utc_now(),
        }, what="writer status", sync=sync)

    def _remove_stale_temp_files(self) -> None:
        """Temp parts of older attempts belong to dead writers: they never become data."""
        for name, path in self._layout.stale_tmp_parts():
            if name.attempt < self.attempt:
                try:
                    path.unlink()
                except OSError:
                    pass
