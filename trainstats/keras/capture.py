"""In-graph capture: record what the compiled loss sees, turn it into per-sample row tensors.

While the model's own ``train_step`` / ``test_step`` is being traced, every per-output loss of the
model's ``CompileLoss`` is wrapped so that the exact ``(y_true, y_pred, sample_weight)`` Keras
matched for that output is recorded (same tensors as the training forward pass, before the weight
update). After the step, per-sample statistics are computed from those tensors in the same graph.

Per-sample loss (stat ``loss``, nats for cross-entropies): ``loss_fn.call(y_true, y_pred)`` of the
output's compiled loss, i.e. the loss with ``reduction="none"``, averaged over any non-batch axes
(masked positions excluded when the output carries a Keras mask of the loss's shape), *without*
the sample weight and without ``loss_weights``. The sample weight Keras used is recorded beside it
(column ``sample_weight``, or ``<output>_sample_weight`` for per-output weights; 1 where absent),
so for the default ``sum_over_batch_size`` reduction Keras's batch loss for an output is
``sum_i sample_weight_i * loss_i / batch_size``.
"""
from __future__ import annotations

import contextlib
import threading
from typing import Any, Callable, Mapping, Sequence

import tensorflow as tf
from keras.src import ops, tree
from keras.src.backend.common.masking import get_keras_mask, set_keras_mask
from keras.src.trainers.compile_utils import CompileLoss

from trainstats.keras.heads import HEAD_STATS, resolve_head
from trainstats.store import ValueColumn

__all__ = ["Capture", "KEY", "NOISE", "PACK_PREFIX", "unpack", "STEP", "SUBSTEP", "VALID_PREFIX"]

KEY = "__key"
STEP = "__step"
SUBSTEP = "__substep"
NOISE = "__noise"
PACK_PREFIX = "__pack/"
VALID_PREFIX = "__valid/"

_UNITS = {"loss": "nats (model's loss)", "gold_prob": "[0, 1]", "pred": "class / position",
          "pred_prob": "[0, 1]", "correct": "", "margin": "unspecified", "sample_weight": "weight"}


def _stat_unit(stat: str, head_fn: Any) -> str:
    """A column's unit; a margin's comes from its head function's ``margin_unit`` (MARGIN_UNITS)."""
    if stat == "margin":
        return getattr(head_fn, "margin_unit", None) or _UNITS["margin"]
    return _UNITS[stat]


_local = threading.local()  # per thread: MirroredStrategy traces replicas in parallel threads
_lock = threading.Lock()
_active: dict[int, dict[str, Any]] = {}


class _RecordingLoss:
    """Stands in for one compiled loss while a step is traced; records its inputs per thread."""

    def __init__(self, fn: Any, name: str):
        self.fn, self.name = fn, name

    def __call__(self, y_true, y_pred, sample_weight=None):
        records = getattr(_local, "records", None)
        if records is not None:
            records.append((self.name, self.fn, y_true, y_pred, sample_weight))
        return self.fn(y_true, y_pred, sample_weight)

    def __getattr__(self, item):  # anything else Keras may look up on the loss
        return getattr(self.fn, item)


def _install(cl: CompileLoss, state: dict[str, Any]) -> None:
    def wrap() -> None:
        if "flat" not in state:
            state["flat"] = cl._flat_losses
            cl._flat_losses = [CompileLoss.Loss(p, _RecordingLoss(fn, name), w, name)
                               for p, fn, w, name in cl._flat_losses]

    if cl.built:
        wrap()
        return
    original_build = cl.build

    def build(*args, **kwargs):
        out = original_build(*args, **kwargs)
        with _lock:
            wrap()
        return out

    cl.build = build


def _uninstall(cl: CompileLoss, state: dict[str, Any]) -> None:
    if "build" in cl.__dict__:
        del cl.build
    if "flat" in state:
        cl._flat_losses = state["flat"]


@contextlib.contextmanager
def recording_losses(model: Any):
    """Wrap the model's compiled per-output losses while one step is traced; yield the records
    ``(output_name, loss_fn, y_true, y_pred, sample_weight)`` made by this thread."""
    cl = getattr(model, "_compile_loss", None)
    if not isinstance(cl, CompileLoss):
        raise ValueError("trainstats.keras needs a model compiled with a loss (model.compile(loss=...)); "
                         f"model {model.name!r} has none.")
    with _lock:
        state = _active.get(id(cl))
        if state is None:
            state = _active[id(cl)] = {"count": 0}
            _install(cl, state)
        state["count"] += 1
    previous = getattr(_local, "records", None)
    records: list = []
    _local.records = records
    try:
        yield records
    finally:
        _local.records = previous
        with _lock:
            state["count"] -= 1
            if state["count"] == 0:
                _uninstall(cl, state)
                del _active[id(cl)]


def per_sample_loss(loss_fn: Any, y_true: Any, y_pred: Any) -> tf.Tensor:
    """The compiled loss with reduction 'none', averaged over non-batch axes -> float32 [batch]."""
    dtype = getattr(loss_fn, "dtype", None) or "float32"
    mask = get_keras_mask(y_pred)
    yp = tree.map_structure(lambda v: ops.convert_to_tensor(v, dtype=dtype), y_pred)
    yt = tree.map_structure(lambda v: ops.convert_to_tensor(v, dtype=dtype), y_true)
    losses = tf.cast(loss_fn.call(yt, yp), tf.float32)
    rank = losses.shape.rank
    if rank is None or rank == 0:
        raise ValueError(f"loss {getattr(loss_fn, 'name', loss_fn)!r} returned no per-sample values "
                         f"(shape {losses.shape}); trainstats needs a loss whose call() keeps the batch axis")
    if rank > 1:
        axes = list(range(1, rank))
        if mask is not None and mask.shape.rank == rank:
            m = tf.cast(mask, tf.float32)
            losses = tf.math.divide_no_nan(tf.reduce_sum(losses * m, axes), tf.reduce_sum(m, axes))
        else:
            losses = tf.reduce_mean(losses, axes)
    return losses


def _per_sample_weight(sw: Any, n: tf.Tensor) -> tf.Tensor:
    if sw is None:
        return tf.ones([n], tf.float32)
    sw = tf.cast(tf.convert_to_tensor(sw), tf.float32)
    if sw.shape.rank and sw.shape.rank > 1:
        sw = tf.reduce_mean(sw, axis=list(range(1, sw.shape.rank)))
    return tf.reshape(sw, [n])


class Capture:
    """Turns recorded loss inputs into a flat dict of per-sample row tensors, and knows its columns.

    ``columns`` (the store's ``ValueColumn`` list) is fixed by the first traced training step.
    """

    def __init__(self, *, heads: Mapping[str, Any] | None, extra_stats: Callable | None,
                 extra_columns: Sequence[ValueColumn], jit: bool = False):
        self.jit = jit
        self.heads = dict(heads or {})
        self.extra_stats = extra_stats
        self.extra_columns = list(extra_columns)
        self.columns: list[ValueColumn] | None = None
        self.layouts: dict[str, dict[str, list[str]]] = {}
        self.head_names: dict[str, str] = {}
        self.descriptions: dict[str, str] = {}
        #: name of a single-output model's output layer (set by the callback; Keras names the compiled
        #: loss of a Sequential or subclassed model after the loss, not after the layer)
        self.single_output_name: str | None = None

    def _head_name(self, output: str, n_outputs: int) -> tuple[str, str]:
        if n_outputs == 1:
            return "output", ""
        head = output.replace("/", "_")
        return head, head + "_"

    def rows(self, records: list, x: Any, sample_weight: Any, meta: dict, step: tf.Tensor,
             *, training: bool) -> dict[str, tf.Tensor]:
        if not records:
            raise RuntimeError(
                "trainstats.keras saw no call of the model's compiled loss during the step. The model's "
                "train_step/test_step must compute its loss through model.compute_loss(...) (Keras's "
                "default does); a custom step that computes the loss by hand cannot be captured.")
        seen: dict[str, tuple] = {}
        for rec in records:  # first call per output wins (the step's own loss)
            seen.setdefault(rec[0], rec)
        outputs = list(seen)
        heads = dict(self.heads)
        if len(outputs) == 1 and outputs[0] not in heads:
            for alias in ("output", self.single_output_name):   # single output: "output" or its layer name
                if alias is not None and alias in heads:
                    heads[outputs[0]] = heads.pop(alias)
                    break
        unknown = sorted(set(heads) - set(outputs))
        if unknown:
            raise ValueError(f"heads= names outputs {unknown} that the model does not have; its outputs are "
                             f"{outputs}")
        loss_fns = {o: seen[o][1] for o in outputs}
        ys_true = {o: seen[o][2] for o in outputs}
        ys_pred = {o: seen[o][3] for o in outputs}
        sws = {o: seen[o][4] for o in outputs}
        masks = {o: get_keras_mask(ys_pred[o]) for o in outputs}
        masks = {o: m for o, m in masks.items() if m is not None}

        def compute(x, ys_true, ys_pred, sws, masks, sample_weight, meta, step):
            for o, m in masks.items():
                set_keras_mask(ys_pred[o], m)
            return self._compute(outputs, heads, loss_fns, x, ys_true, ys_pred, sws, sample_weight, meta, step,
                                 training)

        if self.jit:
            compute = tf.function(compute, jit_compile=True, autograph=False)
        if self.extra_stats is None:
            x = None  # do not hand the inputs to the compiled stats when nothing reads them
        return compute(x, ys_true, ys_pred, sws, masks, sample_weight, meta, step)

    def _compute(self, outputs, heads, loss_fns, x, ys_true, ys_pred, sws, sample_weight, meta, step,
                 training):
        seen = {o: (o, loss_fns[o], ys_true[o], ys_pred[o], sws[o]) for o in outputs}
        if meta["key"].shape.rank == 0:
            raise ValueError(
                "trainstats.keras: each batch carries a single sample id, so the ids were attached after "
                "batching (one id per batch). Attach them to the unbatched samples, then batch: "
                "`with_ids(unbatched_ds, ids).shuffle(n).batch(b)`.")
        keys = tf.reshape(tf.cast(meta["key"], tf.int64), [-1])
        n = tf.shape(keys)[0]
        out: dict[str, tf.Tensor] = {KEY: keys, STEP: tf.fill([n], tf.cast(step, tf.int64)),
                                     NOISE: tf.reshape(tf.cast(meta["noise"], tf.int32), [n])}
        cols: list[ValueColumn] = []
        stats_by_head: dict[str, dict[str, tf.Tensor]] = {}
        y_true_by, y_pred_by = {}, {}
        nested_sw = any(r[4] is not None for r in seen.values()) and tree.is_nested(sample_weight)
        for output in outputs:
            _, loss_fn, y_t, y_p, sw = seen[output]
            head, prefix = self._head_name(output, len(outputs))
            name = (self.single_output_name or "output") if len(outputs) == 1 else output
            fn, desc = resolve_head(heads.get(output), loss_fn, name)
            self.head_names[name], self.descriptions[name] = head, desc
            stats = dict(fn(y_t, y_p)) if fn is not None else {}
            bad = sorted(set(stats) - set(HEAD_STATS) - {"valid"})
            if bad:
                raise ValueError(f"head stats for output {output!r} returned unknown keys {bad}; expected keys "
                                 f"among {sorted(HEAD_STATS)} and 'valid'")
            if "loss" not in stats:
                stats["loss"] = per_sample_loss(loss_fn, y_t, y_p)
            valid = stats.pop("valid", None)
            out[VALID_PREFIX + head] = (tf.ones([n], tf.bool) if valid is None
                                        else tf.reshape(tf.cast(valid, tf.bool), [n]))
            for stat in HEAD_STATS:
                if stat not in stats:
                    continue
                dtype = HEAD_STATS[stat]
                out[prefix + stat] = tf.reshape(tf.cast(stats[stat], dtype), [n])
                cols.append(ValueColumn(prefix + stat, dtype, head=head, stat=stat, unit=_stat_unit(stat, fn),
                                        description=f"{stat} of output {name!r} ({desc})"))
            if sample_weight is not None:
                name = (prefix if nested_sw else "") + "sample_weight"
                if name not in out:
                    out[name] = _per_sample_weight(sw, n)
                    cols.append(ValueColumn(name, "float32", head=head if nested_sw else None,
                                            stat="sample_weight", unit="weight",
                                            description="sample weight Keras applied to this sample's loss"))
            stats_by_head[head] = dict(stats, valid=out[VALID_PREFIX + head])
            y_true_by[output], y_pred_by[output] = y_t, y_p
        if self.extra_stats is not None:
            extra = self.extra_stats(x, y_true_by, y_pred_by, stats_by_head)
            declared = {c.name: c for c in self.extra_columns}
            missing = sorted(set(declared) - set(extra))
            undeclared = sorted(set(extra) - set(declared))
            if missing or undeclared:
                raise ValueError(f"extra_stats must return exactly the extra_columns; missing {missing}, "
                                 f"undeclared {undeclared}")
            for name, value in extra.items():
                col = declared[name]
                if isinstance(value, tuple):
                    value, valid = value
                    out[VALID_PREFIX + "col:" + name] = tf.reshape(tf.cast(valid, tf.bool), [n])
                out[name] = tf.reshape(tf.cast(value, col.dtype), [n])
                cols.append(col)
        if training:
            if self.columns is None:
                self.columns = cols
        elif self.columns is not None:
            names = {c.name for c in self.columns}
            out = {k: v for k, v in out.items() if k.startswith("__") or k in names}
        return self._pack(out, "train" if training else "dev")

    def _pack(self, out: dict[str, tf.Tensor], split: str) -> dict[str, tf.Tensor]:
        """Stack same-dtype [n] columns into one [n, k] tensor per dtype (fewer outputs to move and
        convert per step). ``layouts[split]`` maps each dtype to its column names, in order."""
        layout: dict[str, list[str]] = {}
        for name in sorted(out):
            if name == KEY:
                continue
            layout.setdefault(out[name].dtype.name, []).append(name)
        previous = self.layouts.get(split)
        if previous is not None and previous != layout:
            raise RuntimeError(f"trainstats.keras: a retraced {split} step produced different columns "
                               f"({previous} then {layout}); the model's outputs must not change during fit")
        self.layouts[split] = layout
        packed = {KEY: out[KEY]}
        for dtype, names in layout.items():
            packed[PACK_PREFIX + dtype] = tf.stack([out[nm] for nm in names], axis=1)
        return packed


def unpack(arrays: Mapping[str, Any], layout: Mapping[str, list[str]]) -> dict[str, Any]:
    """Inverse of ``Capture._pack`` on numpy arrays: ``{name: [n] array}`` (plus the other entries)."""
    out = {k: v for k, v in arrays.items() if not k.startswith(PACK_PREFIX)}
    for dtype, names in layout.items():
        block = arrays[PACK_PREFIX + dtype]
        for j, name in enumerate(names):
            out[name] = block[:, j]
    return out
