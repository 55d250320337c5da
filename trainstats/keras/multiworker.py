"""The workers of one ``tf.distribute.MultiWorkerMirroredStrategy`` job writing one run directory.

Under ``MultiWorkerMirroredStrategy`` every worker process runs the same ``fit`` on its own share of
each global batch. Each worker writes the rows of its own replicas (its local results: nothing is
gathered across workers) through its own :class:`~trainstats.store.RunWriter` into the one run
directory on a shared filesystem. The store needs nothing more than two things of them:

* **one attempt number for the job**: the chief claims the run's next attempt
  (:func:`trainstats.store.claim_attempt`) at ``on_train_begin`` and every worker learns it from
  one all-reduce over the strategy's own collective channel (the chief's replicas contribute the
  number, the others 0). A job restarted after a crash is a new attempt, so the newest-attempt-wins
  rule of the store replaces the rows from the restart position on, whatever each worker had
  managed to publish before;
* **distinct writer ids**: the task type and index from the cluster spec (``TF_CONFIG``), e.g.
  ``worker1``; each writer registers the ids of the samples it writes (every worker attaches ids to
  its copy of the data with :func:`trainstats.keras.with_ids`).

Nothing is coordinated beyond that: writers publish their own parts under the store's lock.

Keras 3 (3.15 here, on TensorFlow 2.21) cannot run ``fit`` under ``MultiWorkerMirroredStrategy`` on
its own (keras-team/keras#20585, tensorflow/tensorflow#72388): its symbolic build reduces the
whole first batch with one ``strategy.reduce`` (the multi-worker strategy takes one tensor, not a
structure), and its log reduction calls ``strategy.reduce("MEAN", v, axis=0)`` on scalar logs. This
module works around both, only under a multi-worker strategy: :func:`install_symbolic_build_patch`
(the build reads the first local replica's batch: it needs shapes and dtypes only) and
:func:`reduce_logs` (the mean over replicas of each log value), which the capture's own
``train_function`` / ``test_function`` use.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import tensorflow as tf

from trainstats.store import Run, claim_attempt

__all__ = ["MULTI_WORKER_STRATEGIES", "WorkerTask", "worker_task", "agree_on_attempt", "is_multi_worker",
           "install_symbolic_build_patch", "reduce_logs"]

#: class names of TensorFlow's multi-worker strategy (``tf.distribute.MultiWorkerMirroredStrategy`` is
#: ``CollectiveAllReduceStrategy`` in TF 2.x)
MULTI_WORKER_STRATEGIES = ("CollectiveAllReduceStrategy", "MultiWorkerMirroredStrategy",
                           "_CollectiveAllReduceStrategyExperimental")


@dataclass(frozen=True)
class WorkerTask:
    """This process's place in the cluster: ``task_type`` (``worker`` or ``chief``), ``task_id``,
    the number of worker processes, and whether it is the chief (``chief`` task, else worker 0)."""

    task_type: str
    task_id: int
    n_workers: int
    chief: bool

    def writer_id(self, base: str) -> str:
        """This worker's writer id: ``worker1`` (``base`` the default ``"0"``) or ``<base>.worker1``."""
        own = f"{self.task_type}{self.task_id}"
        return own if base == "0" else f"{base}.{own}"


def worker_task(strategy: tf.distribute.Strategy) -> WorkerTask:
    """The :class:`WorkerTask` of this process under a multi-worker strategy (one worker without ``TF_CONFIG``)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    spec = resolver.cluster_spec().as_dict() if resolver is not None else {}
    task_type = getattr(resolver, "task_type", None) or "worker"
    task_id = int(getattr(resolver, "task_id", None) or 0)
    n_workers = len(spec.get("chief", [])) + len(spec.get("worker", [])) or 1
    chief = task_type == "chief" or ("chief" not in spec and task_type == "worker" and task_id == 0)
    return WorkerTask(str(task_type), task_id, n_workers, chief)


def agree_on_attempt(strategy: tf.distribute.Strategy, task: WorkerTask, run_dir: str | Path, *, resume,
                     noise_manifest=None) -> int:
    """The chief claims the run's next attempt; every worker returns its number (one all-reduce).

    Every worker first checks ``resume`` itself (a shared filesystem shows them the same run), so an
    existing run with ``resume=False`` fails on every worker alike rather than leaving the others
    waiting in the collective."""
    if resume is False and Run.exists(run_dir):
        raise FileExistsError(f"{run_dir} already holds a run and resume=False; pass resume='auto' or True to "
                              "continue it as a new attempt, or choose another directory.")
    mine = claim_attempt(run_dir, noise_manifest=noise_manifest) if task.chief else 0
    per_worker = max(1, strategy.num_replicas_in_sync // task.n_workers)  # the chief's replicas each add it
    values = strategy.experimental_distribute_values_from_function(lambda ctx: tf.constant(mine, tf.int64))
    total = int(strategy.reduce(tf.distribute.ReduceOp.SUM, values, axis=None))
    attempt, rest = divmod(total, per_worker)
    if rest or attempt < 1:
        raise RuntimeError(f"trainstats: the workers did not agree on an attempt number of {run_dir} "
                           f"(sum {total} over {strategy.num_replicas_in_sync} replicas of {task.n_workers} workers)")
    return attempt


def is_multi_worker(strategy) -> bool:
    """True for a multi-worker strategy in multi-worker mode (a cluster in ``TF_CONFIG``)."""
    if type(strategy).__name__ not in MULTI_WORKER_STRATEGIES:
        return False
    in_mode = getattr(strategy.extended, "_in_multi_worker_mode", None)
    return bool(in_mode()) if callable(in_mode) else True


def reduce_logs(logs, strategy):
    """Keras's ``reduce_per_replica(logs, strategy, "auto")``, except under a multi-worker strategy,
    where each log (a scalar per replica) is averaged over the replicas with ``axis=None``."""
    from keras.src import tree
    from keras.src.backend.tensorflow.trainer import reduce_per_replica

    if not is_multi_worker(strategy):
        return reduce_per_replica(logs, strategy, reduction="auto")
    return tree.map_structure(
        lambda v: strategy.reduce("MEAN", v, axis=None) if isinstance(v, tf.distribute.DistributedValues) else v, logs)


def install_symbolic_build_patch() -> None:
    """Under a multi-worker strategy, Keras's ``_maybe_symbolic_build`` builds from the first local
    replica's batch instead of reducing the batch structure (which fails); otherwise unchanged."""
    from keras.src.backend.tensorflow import trainer

    cls = trainer.TensorFlowTrainer
    original = cls._maybe_symbolic_build
    if getattr(original, "_trainstats", False):
        return

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        strategy = self._distribute_strategy
        if strategy is None or iterator is None or not is_multi_worker(strategy):
            return original(self, iterator=iterator, data_batch=data_batch)
        from keras.src import tree

        for _, _, it in iterator:
            batch = next(it)
            data_batch = tree.map_structure(
                lambda v: strategy.experimental_local_results(v)[0]
                if isinstance(v, tf.distribute.DistributedValues) else v, batch)
            break
        with strategy.scope():
            self._symbolic_build(data_batch=data_batch)

    _maybe_symbolic_build._trainstats = True  # type: ignore[attr-defined]
    _maybe_symbolic_build.__doc__ = original.__doc__
    cls._maybe_symbolic_build = _maybe_symbolic_build
