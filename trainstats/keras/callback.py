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

from trainstats.keras.capture import KEY, NOISE, STEP, SUBSTEP, VALID_PREFIX, Capture
from trainstats.keras.functions import make_function
from trainstats.keras.ids import registry
from trainstats.store import RunWriter, ValueColumn

__all__ = ["PerSampleStats"]

log = logging.getLogger("trainstats.keras")

_SUPPORTED_STRATEGIES = ("_DefaultDistributionStrategy", "MirroredStrategy", "OneDeviceStrategy")


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
        self._fits = 0
        self._registered = 0
        self._pending: list[tuple[str, int, dict]] = []
        self._saved_functions: tuple | None = None
        self._epoch = 0
        self._batch = {"train": 0, "dev": 0}
        self._in_validation = False
        self._warned_dev = False

    # ------------------------------------------------------------------ Keras hooks
    def on_train_begin(self, logs=None):
        model = self.model
        strategy = model.distribute_strategy
        if type(strategy).__name__ not in _SUPPORTED_STRATEGIES:
            raise NotImplementedError(
                f"trainstats.keras supports the default strategy, MirroredStrategy and OneDeviceStrategy; "
                f"received {type(strategy).__name__}. For multi-worker training record one run per worker "
                "with a custom loop, or train single-worker.")
        if type(strategy).__name__ == "MirroredStrategy" and int(model.steps_per_execution or 1) > 1:
            raise NotImplementedError(
                "steps_per_execution > 1 under MirroredStrategy cannot be recorded: Keras "
                f"{keras.__version__} on TensorFlow {tf.__version__} itself fails on it ('You must feed a value "
                "for placeholder tensor ...' inside its multi-step loop, with or without trainstats). "
                "Compile with steps_per_execution=1 under MirroredStrategy.")
        if keras.backend.backend() != "tensorflow":
            raise NotImplementedError(f"trainstats.keras needs the TensorFlow backend; Keras runs "
                                      f"{keras.backend.backend()!r}")
        self._fits += 1
        self._saved_functions = (model.train_function, model.test_function)
        model.train_function = make_function(model, self._capture, self._sink_train, training=True,
                                             on_missing_ids=self._missing_train_ids)
        model.test_function = make_function(model, self._capture, self._sink_dev, training=False,
                                            on_missing_ids=self._missing_dev_ids)

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
            self._close_writer()

    def _close_writer(self) -> None:
        if self._writer is not None:
            writer, self._writer = self._writer, None
            writer.close()

    @property
    def columns(self) -> list[ValueColumn] | None:
        """The value columns this callback records (known after the first training step)."""
        return self._capture.columns

    # ------------------------------------------------------------------ internals
    def _missing_train_ids(self) -> None:
        raise ValueError(
            "PerSampleStats: the training data carries no sample ids. Attach them with "
            "trainstats.keras.with_ids: `ds = with_ids(ds_unbatched, ids)` before shuffle/batch, or "
            "`x, y = with_ids((x, y), ids)` for arrays.")

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
        # Keep the tensors one call behind so a GPU step is not waited for right after dispatch.
        pending, self._pending = self._pending, [(split, self._epoch, rows)]
        for item in pending:
            self._write(*item)

    def _drain(self) -> None:
        pending, self._pending = self._pending, []
        for item in pending:
            self._write(*item)

    def _open_writer(self) -> RunWriter:
        columns = self._capture.columns
        if columns is None:
            raise RuntimeError("PerSampleStats: no training step was traced before rows arrived")
        config = dict(self.config)
        config.setdefault("heads", {k: self._capture.descriptions.get(k, "") for k in self._capture.head_names})
        versions = {"tensorflow": tf.__version__, "keras": keras.__version__}
        if self._attempt is not None:  # a later fit() with this callback: same attempt, new writer
            writer = RunWriter(self.run_dir, columns, recorder="keras", config=config,
                               noise_manifest=self.noise_manifest, attempt=self._attempt,
                               writer_id=f"{self.writer_id}.{self._fits}", on_error=self.on_error,
                               versions=versions)
        else:
            resume = self.resume
            if resume == "auto":
                resume = (self.run_dir / "run.json").exists()
            writer = RunWriter(self.run_dir, columns, recorder="keras", config=config,
                               noise_manifest=self.noise_manifest, resume=bool(resume),
                               writer_id=self.writer_id, on_error=self.on_error, versions=versions)
            self._attempt = writer.attempt
        self._registered = 0
        return writer

    def _register_new_ids(self) -> None:
        chunks = registry.chunks_since(self._registered)
        for _, ids in chunks:
            self._writer.register_samples(ids)
        self._registered += len(chunks)

    def _write(self, split: str, epoch: int, rows: dict) -> None:
        arrays = {k: v.numpy() for k, v in rows.items()}
        if self._writer is None:
            self._writer = self._open_writer()
        self._register_new_ids()
        keys = arrays.pop(KEY)
        steps = arrays.pop(STEP)
        sub = arrays.pop(SUBSTEP, None)
        noise = registry.decode_noise(arrays.pop(NOISE))
        valid = {k[len(VALID_PREFIX):]: arrays.pop(k) for k in list(arrays) if k.startswith(VALID_PREFIX)}
        head_of = {c.name: c.head for c in self._capture.columns or []}
        values = {}
        for name, arr in arrays.items():
            mask = None
            if ("col:" + name) in valid:
                mask = ~valid["col:" + name]
            elif head_of.get(name) is not None and head_of[name] in valid:
                mask = ~valid[head_of[name]]
            values[name] = arr if mask is None or not mask.any() else np.ma.masked_array(arr, mask=mask)
        if noise is not None:
            noise = (noise[0], np.asarray(noise[1], dtype=object))
        n_steps = 1 if sub is None or len(sub) == 0 else int(sub.max()) + 1
        batch0 = self._batch[split]
        for i in range(n_steps):
            sel = slice(None) if n_steps == 1 else (sub == i)
            flags = kinds = None
            if noise is not None:
                flags, kinds = noise[0][sel], noise[1][sel].tolist()
            self._writer.write(split=split, epoch=epoch, step=steps[sel], batch=batch0 + i, sample_key=keys[sel],
                               values={k: v[sel] for k, v in values.items()}, noise=flags, noise_kind=kinds)
        self._batch[split] = batch0 + n_steps
