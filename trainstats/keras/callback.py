"""``PerSampleStats``: the Keras callback that records per-sample rows of every training step."""
from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import keras
import numpy as np
import tensorflow as tf

from trainstats.keras.capture import KEY, NOISE, STEP, SUBSTEP, VALID_PREFIX, Capture, unpack
from trainstats.keras.functions import make_function
from trainstats.keras.ids import registry
from trainstats.keras.multiworker import MULTI_WORKER_STRATEGIES, WorkerTask, agree_on_attempt, worker_task
from trainstats.store import Run, RunWriter, ValueColumn

__all__ = ["PerSampleStats"]

log = logging.getLogger("trainstats.keras")

_SUPPORTED_STRATEGIES = ("_DefaultDistributionStrategy", "MirroredStrategy", "OneDeviceStrategy") + MULTI_WORKER_STRATEGIES


class PerSampleStats(keras.callbacks.Callback):
    """Record per-sample statistics of every training step (and of the validation data) to a run dir.

    The rows come from ``model.fit``'s own training forward pass (same dropout, before the weight
    update): the callback swaps in a ``train_function`` that runs the model's own ``train_step`` and
    also returns, per sample, the stats of each output (see ``docs/keras.md``). Data must carry ids
    attached with :func:`trainstats.keras.with_ids`.

    Args:
        run_dir: run directory (``trainstats.store`` format). Existing runs are continued as a new
            attempt when ``resume`` is ``"auto"`` or True (newest attempt wins, so a resumed fit,
            e.g. with ``BackupAndRestore``, leaves no duplicate rows).
        heads: per output name, ``"auto"`` (default: chosen from the output's compiled loss),
            ``"sparse_categorical"``, ``"categorical"``, ``"binary"``, ``"pointer"``, or a head stats
            function ``fn(y_true, y_pred) -> dict`` of ``[batch]`` tensors (protocol in docs).
        extra_stats: optional ``fn(x, y_true, y_pred, stats) -> {column: tensor or (tensor, valid)}``
            for model-level columns; ``y_true``/``y_pred`` are dicts by output name and ``stats`` is
            ``{head: {stat: tensor, "valid": tensor}}``. Must return exactly ``extra_columns``.
        extra_columns: the ``ValueColumn`` declarations of ``extra_stats``' columns.
        record_dev: record per-sample rows for ``validation_data`` (split ``dev``) at each epoch end.
        noise_manifest: passed to ``RunWriter`` (fills noise flags for ids attached without them).
        config: JSON-serialisable run configuration stored in ``run.json``.
        resume: ``"auto"`` (continue when ``run_dir`` holds a run), True, or False (refuse).
        on_error: ``"warn"`` (default: keep training when rows cannot be written) or ``"raise"``.
        writer_id: id of this process's writer (several processes writing one run need distinct ids).
            Under ``MultiWorkerMirroredStrategy`` each worker's id is derived from its task in the
            cluster spec (``worker1``, or ``<writer_id>.worker1`` for a non-default ``writer_id``) and
            the workers share one attempt (``docs/keras.md``, multi-worker training).
        jit_stats: XLA-compile the per-sample stats ops (one fused kernel instead of ~30 small ops per
            step). ``"auto"``: when the model's own step is not XLA-compiled (Keras's default on CPU),
            no distribution strategy is used and every model input has a fixed shape apart from the
            batch axis (XLA compiles once per input shape: with length-bucketed batches it would
            recompile at nearly every step). Head stats functions must be XLA-safe for this.

    Example::

        ds = with_ids(tf.data.Dataset.from_tensor_slices((x, y)), ids).shuffle(1000).batch(32)
        model.fit(ds, epochs=3, callbacks=[PerSampleStats("runs/mlp")])
    """

    def __init__(
        self,
        run_dir: str | os.PathLike,
        *,
        heads: Mapping[str, Any] | None = None,
        extra_stats: Callable[..., Mapping[str, Any]] | None = None,
        extra_columns: Sequence[ValueColumn] = (),
        record_dev: bool = True,
        noise_manifest: Any = None,
        config: Mapping[str, Any] | None = None,
        resume: bool | str = "auto",
        on_error: str = "warn",
        writer_id: str = "0",
        jit_stats: bool | str = "auto",
    ) -> None:
        super().__init__()
        if not isinstance(run_dir, (str, os.PathLike)):
            raise TypeError(f"run_dir must be a path; received {type(run_dir).__name__}")
        if heads is not None and not isinstance(heads, Mapping):
            raise TypeError(f"heads must be a mapping output name -> head stats; received {type(heads).__name__}")
        if extra_stats is not None and not callable(extra_stats):
            raise TypeError("extra_stats must be a function fn(x, y_true, y_pred, stats) -> dict")
        extra_columns = list(extra_columns)
        if extra_columns and extra_stats is None:
            raise ValueError("extra_columns were given without extra_stats")
        for c in extra_columns:
            if not isinstance(c, ValueColumn):
                raise TypeError(f"extra_columns must hold ValueColumn objects; received {type(c).__name__}")
        if resume not in ("auto", True, False):
            raise ValueError(f"Invalid value for argument `resume`. Received: resume={resume!r}. "
                             "Expected 'auto', True or False.")
        if jit_stats not in ("auto", True, False):
            raise ValueError(f"Invalid value for argument `jit_stats`. Received: jit_stats={jit_stats!r}. "
                             "Expected 'auto', True or False.")
        self.jit_stats = jit_stats
        if on_error not in ("warn", "raise"):
            raise ValueError(f"Invalid value for argument `on_error`. Received: on_error={on_error!r}. "
                             "Expected 'warn' or 'raise'.")
        self.run_dir = Path(run_dir)
        self.record_dev = record_dev
        self.noise_manifest = noise_manifest
        self.config = dict(config or {})
        self.resume = resume
        self.on_error = on_error
        self.writer_id = writer_id
        self._capture = Capture(heads=heads, extra_stats=extra_stats, extra_columns=extra_columns)
        self._writer: RunWriter | None = None
        self._attempt: int | None = None
        self._task: WorkerTask | None = None
        self._writers_opened = 0
        self._fits = 0
        self._registered = 0
        self._pending: list[tuple[str, int, dict]] = []
        self._buffer: list[tuple[str, int, dict]] = []
        self._buffered_rows = 0
        self.buffer_rows = 65536
        self._saved_functions: tuple | None = None
        self._functions: tuple | None = None
        self._epoch = 0
        self._batch = {"train": 0, "dev": 0}
        self._in_validation = False
        self._warned_dev = False
        self._row_listeners: list[Callable[[str, int, dict], None]] = []

    # ------------------------------------------------------------------ Keras hooks
    def on_train_begin(self, logs=None):
        model = self.model
        strategy = model.distribute_strategy
        kind = type(strategy).__name__
        if kind not in _SUPPORTED_STRATEGIES:
            raise NotImplementedError(
                f"trainstats.keras supports the default strategy, MirroredStrategy, OneDeviceStrategy and "
                f"MultiWorkerMirroredStrategy; received {kind}.")
        if kind != "_DefaultDistributionStrategy" and kind != "OneDeviceStrategy" \
                and int(model.steps_per_execution or 1) > 1:
            raise NotImplementedError(
                f"steps_per_execution > 1 under {kind} cannot be recorded: Keras "
                f"{keras.__version__} on TensorFlow {tf.__version__} itself fails on it ('You must feed a value "
                "for placeholder tensor ...' inside its multi-step loop, with or without trainstats). "
                f"Compile with steps_per_execution=1 under {kind}.")
        if keras.backend.backend() != "tensorflow":
            raise NotImplementedError(f"trainstats.keras needs the TensorFlow backend; Keras runs "
                                      f"{keras.backend.backend()!r}")
        self._fits += 1
        if kind in MULTI_WORKER_STRATEGIES:
            self._task = worker_task(strategy)
            if self._attempt is None:  # every worker of the job writes as the attempt the chief claims
                self._attempt = agree_on_attempt(strategy, self._task, self.run_dir, resume=self.resume,
                                                 noise_manifest=self.noise_manifest)
        self._capture.single_output_name = _single_output_layer_name(model)
        self._saved_functions = (model.train_function, model.test_function)
        jit = self.jit_stats
        if jit == "auto":  # fuse the stats ops when Keras does not already compile the whole step
            jit = (not model.jit_compile and not model.run_eagerly
                   and type(strategy).__name__ == "_DefaultDistributionStrategy"
                   and _static_feature_shapes(model))
        self._capture.jit = bool(jit) and not model.jit_compile and not model.run_eagerly
        key = (id(model), int(model.steps_per_execution or 1), model.jit_compile, model.run_eagerly,
               id(strategy), id(model.optimizer), id(model._compile_loss), self._capture.jit)
        if self._functions is None or self._functions[0] != key:  # like Keras: trace once per model setup
            self._functions = (
                key,
                make_function(model, self._capture, self._sink_train, training=True,
                              on_missing_ids=self._missing_train_ids),
                make_function(model, self._capture, self._sink_dev, training=False,
                              on_missing_ids=self._missing_dev_ids),
            )
        model.train_function, model.test_function = self._functions[1:]

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = int(epoch)
        self._batch = {"train": 0, "dev": 0}

    def on_test_begin(self, logs=None):
        self._in_validation = True  # only fit's own CallbackList (validation) calls us here
        self._batch["dev"] = 0

    def on_test_end(self, logs=None):
        self._in_validation = False
        self._drain()

    def on_epoch_end(self, epoch, logs=None):
        self._drain()
        if self._writer is not None:
            self._writer.flush()

    def on_train_end(self, logs=None):
        self.close()

    # ------------------------------------------------------------------ public helpers
    def close(self) -> None:
        """Write what is pending, close the writer and give the model back its own functions.

        Called by ``on_train_end``; call it yourself after a ``fit`` that raised, to keep the rows
        of the steps that did run (a crashed process leaves them to the writer's exit handler)."""
        if self._saved_functions is not None and self.model is not None:
            self.model.train_function, self.model.test_function = self._saved_functions
            self._saved_functions = None
        try:
            self._drain()
        finally:
            self._pending.clear()
            self._buffer, self._buffered_rows = [], 0
            self._close_writer()

    def _close_writer(self) -> None:
        if self._writer is not None:
            writer, self._writer = self._writer, None
            writer.close()

    def add_row_listener(self, listener: Callable[[str, int, dict], None]) -> None:
        """Also hand every run of rows to ``listener(split, epoch, rows)`` when they go to the writer.

        ``rows`` holds numpy arrays with one entry per row: ``sample_key`` (int64), ``step`` (int64),
        ``noise`` (bool, or None when the data carry no flags: the writer then fills them from
        ``noise_manifest``), ``noise_kind`` (object, or None) and every value column (masked arrays
        where null). Rows arrive in training order, at the latest at the epoch's end (:meth:`drain`).
        Used by :class:`trainstats.keras.MemorizationMonitor`; adding the same listener twice is a no-op.
        """
        if not callable(listener):
            raise TypeError(f"listener must be callable; received {type(listener).__name__}")
        if listener not in self._row_listeners:
            self._row_listeners.append(listener)

    def drain(self) -> None:
        """Hand every row captured so far to the writer and the row listeners (done at each epoch's
        end anyway; a callback that needs this epoch's rows before that calls it first)."""
        self._drain()

    @property
    def columns(self) -> list[ValueColumn] | None:
        """The value columns this callback records (known after the first training step)."""
        return self._capture.columns

    # ------------------------------------------------------------------ internals
    def _missing_train_ids(self) -> None:
        raise ValueError(
            "PerSampleStats: the training data carries no sample ids. Attach them with "
            "trainstats.keras.with_ids: `ds = with_ids(ds_unbatched, ids)` before shuffle/batch, or "
            "`x, y = with_ids((x, y), ids)` for arrays. (fit's class_weight= drops the ids of a Dataset: "
            "pass the equivalent sample weights instead.)")

    def _missing_dev_ids(self) -> None:
        if self.record_dev and not self._warned_dev:
            self._warned_dev = True
            warnings.warn("PerSampleStats: validation_data carries no sample ids, so no dev rows are recorded; "
                          "wrap it with trainstats.keras.with_ids to record them.", UserWarning, stacklevel=2)

    def _sink_train(self, rows: dict) -> None:
        self._push("train", rows)

    def _sink_dev(self, rows: dict) -> None:
        if self._in_validation and self.record_dev:
            self._push("dev", rows)

    def _push(self, split: str, rows: dict) -> None:
        # Tensors stay one call behind so a GPU step is not waited for right after dispatch; then only
        # a .numpy() per packed tensor happens per step. The rest is done in bulk in _flush_buffer.
        pending, self._pending = self._pending, [(split, self._epoch, rows)]
        for split_, epoch, tensors in pending:
            arrays = {k: v.numpy() for k, v in tensors.items()}
            self._buffer.append((split_, epoch, arrays))
            self._buffered_rows += len(arrays[KEY])
        if self._buffered_rows >= self.buffer_rows:
            self._flush_buffer()

    def _drain(self) -> None:
        pending, self._pending = self._pending, []
        for split, epoch, tensors in pending:
            self._buffer.append((split, epoch, {k: v.numpy() for k, v in tensors.items()}))
        self._flush_buffer()

    def _flush_buffer(self) -> None:
        """Write buffered steps: one ``RunWriter.write`` per batch (its ``batch`` is one int), with
        masks, noise and batch numbers computed once per run of same-(split, epoch) steps."""
        buffer, self._buffer, self._buffered_rows = self._buffer, [], 0
        start = 0
        while start < len(buffer):
            split, epoch = buffer[start][:2]
            end = start
            while end < len(buffer) and buffer[end][:2] == (split, epoch):
                end += 1
            self._write_run(split, epoch, [item[2] for item in buffer[start:end]])
            start = end

    def _write_run(self, split: str, epoch: int, items: list[dict]) -> None:
        if self._writer is None:
            self._writer = self._open_writer()
        self._register_new_ids()
        # batch number of each row: consecutive per execution, substeps inside an execution
        batch0 = self._batch[split]
        sizes, batch_ids = [], []
        for arrays in items:
            sub = arrays.get(SUBSTEP)
            n = len(arrays[KEY])
            if sub is None:
                batch_ids.append(np.full(n, batch0, np.int64))
                batch0 += 1
            else:
                batch_ids.append(batch0 + sub.astype(np.int64))
                batch0 += int(sub.max()) + 1 if n else 0
            sizes.append(n)
        self._batch[split] = batch0
        joined = {k: np.concatenate([a[k] for a in items]) for k in items[0] if k != SUBSTEP}
        batch = np.concatenate(batch_ids)
        if not len(batch):
            return
        arrays = unpack(joined, self._capture.layouts[split])
        keys = arrays.pop(KEY)
        steps = arrays.pop(STEP)
        noise = registry.decode_noise(arrays.pop(NOISE))
        valid = {k[len(VALID_PREFIX):]: arrays.pop(k) for k in list(arrays) if k.startswith(VALID_PREFIX)}
        head_of = {c.name: c.head for c in self._capture.columns or []}
        values = {}
        for name, arr in arrays.items():
            ok = valid.get("col:" + name, valid.get(head_of.get(name)))
            values[name] = arr if ok is None or ok.all() else np.ma.masked_array(arr, mask=~ok)
        kinds = None if noise is None else np.asarray(noise[1], dtype=object)
        for listener in self._row_listeners:
            listener(split, epoch, {"sample_key": keys, "step": steps, "noise": None if noise is None else noise[0],
                                    "noise_kind": kinds, **values})
        # one write for every batch of this run of steps: step and batch are per-row arrays
        self._writer.write(split=split, epoch=epoch, step=steps, batch=batch, sample_key=keys, values=values,
                           noise=None if noise is None else noise[0],
                           noise_kind=None if noise is None else kinds.tolist())

    def _open_writer(self) -> RunWriter:
        columns = self._capture.columns
        if columns is None:
            raise RuntimeError("PerSampleStats: no training step was traced before rows arrived")
        config = dict(self.config)
        config.setdefault("heads", {k: self._capture.descriptions.get(k, "") for k in self._capture.head_names})
        versions = {"tensorflow": tf.__version__, "keras": keras.__version__}
        base = self.writer_id if self._task is None else self._task.writer_id(self.writer_id)
        self._writers_opened += 1
        if self._attempt is not None:  # a later fit() with this callback, or a worker of a multi-worker job
            writer_id = base if self._writers_opened == 1 else f"{base}.{self._fits}"
            writer = RunWriter(self.run_dir, columns, recorder="keras", config=config,
                               noise_manifest=self.noise_manifest, attempt=self._attempt,
                               writer_id=writer_id, on_error=self.on_error, versions=versions)
            self._registered = 0  # each writer stores the ids of its own rows: it needs every id
        else:
            resume = self.resume
            if resume == "auto":
                resume = Run.exists(self.run_dir)
            writer = RunWriter(self.run_dir, columns, recorder="keras", config=config,
                               noise_manifest=self.noise_manifest, resume=bool(resume),
                               writer_id=base, on_error=self.on_error, versions=versions)
            self._attempt = writer.attempt
            self._registered = 0
        return writer

    def _register_new_ids(self) -> None:
        chunks = registry.chunks_since(self._registered)
        for keys, ids in chunks:
            self._writer.register_samples(ids, keys=keys)
        self._registered += len(chunks)


def _single_output_layer_name(model) -> str | None:
    """The name of the layer that makes a single-output model's output (None: several outputs, or a
    subclassed model whose output layer is not known)."""
    try:
        outputs = model.outputs
    except (AttributeError, ValueError):
        return None
    if not outputs or len(outputs) != 1:
        return None
    history = getattr(outputs[0], "_keras_history", None)
    operation = getattr(history, "operation", None)
    return getattr(operation, "name", None)


def _static_feature_shapes(model) -> bool:
    """True when every model input has a known shape apart from the batch axis."""
    try:
        inputs = model.inputs
    except (AttributeError, ValueError):
        return False
    if not inputs:
        return False
    return all(d is not None for x in inputs for d in tuple(x.shape)[1:])
