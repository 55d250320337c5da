"""Replacement ``train_function`` / ``test_function`` that return every step's per-sample rows.

Mirrors Keras 3's TensorFlow trainer (``keras/src/backend/tensorflow/trainer.py``,
``TensorFlowTrainer._make_function``) with three differences:

* the step strips the sample keys from the batch, runs the model's *own* ``train_step`` /
  ``test_step`` under :func:`~trainstats.keras.capture.recording_losses`, and also returns rows;
* under a ``tf.distribute`` strategy the logs are reduced exactly as Keras reduces them (under a
  multi-worker strategy: averaged over replicas, where Keras's own reduction fails, see
  :mod:`trainstats.keras.multiworker`), while rows are *concatenated* over this process's replicas
  (Keras would average them);
* with ``steps_per_execution > 1`` rows of *every* step are accumulated in ``TensorArray``\\ s
  (Keras returns only the last step's outputs). The first step is peeled off the ``while_loop`` so
  the row structure is known before the loop is built.

The Python wrapper hands the rows to ``sink(rows_tensors)`` and returns only the logs, so other
callbacks see exactly what Keras would give them.
"""
from __future__ import annotations

from typing import Any, Callable

import tensorflow as tf
from trainstats.keras.capture import KEY, SUBSTEP, Capture, recording_losses
from trainstats.keras.ids import split_meta
from trainstats.keras.multiworker import reduce_logs
from trainstats.native_logs import filter_native_logs

__all__ = ["make_function"]


def _concat_replicas(value: Any, strategy: tf.distribute.Strategy) -> tf.Tensor:
    if isinstance(value, tf.distribute.DistributedValues):
        return tf.concat(strategy.experimental_local_results(value), axis=0)
    return value


def make_function(model: Any, capture: Capture, sink: Callable[[dict], None], *, training: bool,
                  on_missing_ids: Callable[[], None]) -> Callable:
    """Build ``function(iterator) -> logs`` for ``model.train_function`` (training=True) or
    ``model.test_function`` (training=False)."""
    strategy = model.distribute_strategy
    step_function = model.train_step if training else model.test_step
    n_exec = int(model.steps_per_execution or 1)

    def replica_step(data):
        data, meta = split_meta(data)
        if meta is None:
            on_missing_ids()
            return step_function(data), {}
        x = data[0]
        sw = data[2] if len(data) == 3 else None
        optimizer = getattr(model, "optimizer", None)
        step = (tf.cast(tf.identity(optimizer.iterations), tf.int64) if optimizer is not None
                else tf.constant(0, tf.int64))
        with recording_losses(model) as records:
            logs = step_function(data)
        rows = capture.rows(records, x, sw, meta, step, training=training)
        return logs, rows

    @tf.autograph.experimental.do_not_convert
    def one_step_on_data(data):
        logs, rows = strategy.run(replica_step, args=(data,))
        logs = reduce_logs(logs, strategy)
        rows = {k: _concat_replicas(v, strategy) for k, v in rows.items()}
        return logs, rows

    if not model.run_eagerly:
        one_step_on_data = tf.function(one_step_on_data, reduce_retracing=True, jit_compile=model.jit_compile)

    def convert_optionals(data):
        return tf.nest.map_structure(
            lambda i: None if isinstance(i, tf.experimental.Optional) else i, data)

    @tf.autograph.experimental.do_not_convert
    def multi_step_on_iterator(iterator):
        # The first step runs unconditionally (like Keras with steps_per_execution=1): at the end of
        # the data get_next() raises OutOfRangeError, which fit's epoch iterator turns into StopIteration.
        logs, rows = one_step_on_data(convert_optionals(iterator.get_next()))
        rows = dict(rows)
        has_any = tf.constant(True)
        if n_exec == 1:
            return has_any, logs, rows
        if rows:
            rows[SUBSTEP] = tf.zeros_like(rows[KEY], dtype=tf.int32)
        names = sorted(rows)
        tas = [tf.TensorArray(rows[k].dtype, size=0, dynamic_size=True, infer_shape=False,
                              element_shape=tf.TensorShape([None]).concatenate(rows[k].shape[1:]))
               .write(0, rows[k]) for k in names]

        def body(i, more, logs, tas):
            nxt = iterator.get_next_as_optional()

            def run():
                lg, rw = one_step_on_data(convert_optionals(nxt.get_value()))
                rw = dict(rw)
                if rw:
                    rw[SUBSTEP] = tf.fill(tf.shape(rw[KEY]), tf.cast(i, tf.int32))
                return lg, [rw[k] for k in names]

            def skip():
                return logs, [tf.zeros([0] + rows[k].shape[1:].as_list(), rows[k].dtype) for k in names]

            new_logs, new_rows = tf.cond(nxt.has_value(), run, skip)
            tas = [ta.write(i, r) for ta, r in zip(tas, new_rows)]
            return i + 1, nxt.has_value(), new_logs, tas

        _, _, logs, tas = tf.while_loop(
            lambda i, more, logs, tas: tf.logical_and(i < n_exec, more),
            body, (tf.constant(1), has_any, logs, tas))
        rows = {k: ta.concat() for k, ta in zip(names, tas)}
        return has_any, logs, rows

    if not model.run_eagerly:
        multi_step_on_iterator = tf.function(multi_step_on_iterator, reduce_retracing=True)

    def run_steps(iterator):
        if isinstance(iterator, (tf.data.Iterator, tf.distribute.DistributedIterator)):
            has_any, logs, rows = multi_step_on_iterator(iterator)
            if not bool(has_any):
                raise StopIteration
        else:  # train_on_batch / test_on_batch hand a Python generator of one batch
            for data in iterator:
                logs, rows = one_step_on_data(data)
        return logs, rows

    first = [True]

    def function(iterator):
        if first[0] and capture.jit:
            # the first run XLA-compiles the stats: XLA logs INFO lines a plain fit would not show
            first[0] = False
            with filter_native_logs():
                logs, rows = run_steps(iterator)
        else:
            logs, rows = run_steps(iterator)
        if rows:
            sink(rows)
        return logs

    return function
