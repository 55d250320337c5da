"""Did the network memorize its noise, and from which epoch? A verdict per run from the metrics table.

The *memorization signal* of a run is, per epoch, the training accuracy of its noised samples
**against their noisy labels** in the group where only memorization can raise it, minus a
*reference* (what the network scores on that group without memorizing). :data:`SIGNALS` fixes the
group per noise kind, the one place that does:

* ``label``: head ``loc`` (else ``joint``) on the noised samples labelled buggy, i.e. bug-free code
  given a made-up bug (``subset = buggy``); reference **0**: "always no bug" scores 0 there, and
  pointing at the made-up location by chance is about 1 / #tokens. Without a ``has_bug`` column: all
  noised samples, reference = their own first-epoch accuracy.
* ``inject-repair``: head ``rep`` (else ``loc``, ``joint``) on all marked samples; reference = the
  **clean** training samples' accuracy of the same head and epoch: the markers are a shortcut, and
  fitting marked samples better than clean ones is learning it.
* any other kind: the first head, all noised samples; reference = the clean samples' accuracy.

With ``min_gain = g`` (default 0.05, five percentage points) the run **memorized** its noise when the
signal at the last epoch is at least ``g``; the **onset** is the first epoch from which the signal
stays at least ``g`` up to the last epoch. Epochs are those recorded (``metrics.csv`` ``epoch``).
This is a reading of a finished run; the live monitor's onset rule (which watches a *rise* while
held-out accuracy stalls, to stop training) answers a different question.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = ["SIGNALS", "NOISED_SUBSET_LABELS", "Memorization", "MemorizationSignal", "memorization",
           "noised_subset_label"]


@dataclass(frozen=True)
class MemorizationSignal:
    """Where a noise kind's memorization shows: heads in order of preference, subset, reference."""

    heads: tuple[str, ...]
    subset: str
    reference: str  # "zero" | "clean" | "first_epoch"
    group: str  # what the samples of the group are, in words


#: noise kind -> its memorization signal (module docstring); ``None`` = any other kind
SIGNALS: dict[str | None, MemorizationSignal] = {
    "label": MemorizationSignal(("loc", "joint"), "buggy", "zero", "bug-free code given a made-up bug"),
    "inject-repair": MemorizationSignal(("rep", "loc", "joint"), "all", "clean",
                                        "samples with injected repair markers"),
    None: MemorizationSignal((), "all", "clean", "noised samples"),
}
_FALLBACK_LABEL = MemorizationSignal(("loc", "joint"), "all", "first_epoch", "noised samples")

#: noise kind -> what the noised samples of subset ``buggy`` / ``bug_free`` (their label as trained on) are
NOISED_SUBSET_LABELS: dict[str | None, dict[str, str]] = {
    "label": {"buggy": "bug-free made buggy", "bug_free": "buggy made bug-free"},
    "inject-repair": {"buggy": "marked buggy (BUGGY/TARGET tokens)", "bug_free": "marked bug-free (NONBUGGY token)"},
    None: {"buggy": "noised, labelled buggy", "bug_free": "noised, labelled bug-free"},
}


def noised_subset_label(kind: str | None, subset: str) -> str:
    """What the noised samples of ``subset`` (``buggy``/``bug_free``/``all``) are under noise ``kind``."""
    if subset == "all":
        return "all noised samples"
    return NOISED_SUBSET_LABELS.get(kind, NOISED_SUBSET_LABELS[None])[subset]


@dataclass(frozen=True)
class Memorization:
    """The memorization verdict of one run (module docstring).

    ``epochs``, ``accuracy`` (the group's training accuracy against the noisy labels),
    ``reference`` and ``signal`` (accuracy - reference) are aligned per epoch (fractions);
    ``n`` is the number of training rows of the group at the last epoch; ``onset`` is None when the
    run did not memorize.
    """

    run: str
    noise_kind: str | None
    head: str
    subset: str
    reference_kind: str
    group: str
    epochs: tuple[int, ...]
    accuracy: tuple[float, ...]
    reference: tuple[float, ...]
    signal: tuple[float, ...]
    n: int
    min_gain: float
    memorized: bool
    onset: int | None


def _series(m: pd.DataFrame, head: str, subset: str, group: str) -> pd.Series:
    sel = m[(m["head"] == head) & (m["subset"] == subset) & (m["noise_group"] == group)]
    return sel.groupby("epoch")["value"].mean().sort_index()


def _pick(noise_kind: str | None, heads: list[str], subsets: set[str]) -> tuple[MemorizationSignal, str] | None:
    spec = SIGNALS.get(noise_kind, SIGNALS[None])
    if spec.subset not in subsets:
        spec = _FALLBACK_LABEL if noise_kind == "label" else SIGNALS[None]
    head = next((h for h in spec.heads if h in heads), heads[0] if heads else None)
    return None if head is None else (spec, head)


def memorization(metrics: pd.DataFrame, run: str, *, noise_kind: str | None = None,
                 min_gain: float = 0.05) -> Memorization | None:
    """The memorization verdict of ``run`` from a long metrics table (``metrics.csv`` format).

    Args:
        metrics: rows with ``run, split, epoch, head, subset, noise_group, metric, value, n``.
        run: the run to judge.
        noise_kind: the run's noise kind (``runs.csv``), which picks the signal (:data:`SIGNALS`).
        min_gain: the signal, a fraction, at or above which the noise counts as memorized.

    Returns:
        :class:`Memorization`, or None when the run has no training accuracy of noised samples.
    """
    if not isinstance(min_gain, (int, float)) or not 0.0 < min_gain < 1.0:
        raise ValueError(f"min_gain must be a fraction in (0, 1); received {min_gain!r}")
    m = metrics[(metrics["run"] == run) & (metrics["split"] == "train") & (metrics["metric"] == "accuracy")]
    noisy = m[m["noise_group"] == "noisy"]
    if not len(noisy):
        return None
    picked = _pick(noise_kind, list(dict.fromkeys(noisy["head"])), set(noisy["subset"]))
    if picked is None:
        return None
    spec, head = picked
    acc = _series(m, head, spec.subset, "noisy")
    if not len(acc):
        return None
    if spec.reference == "zero":
        ref = pd.Series(0.0, index=acc.index)
    elif spec.reference == "first_epoch":
        ref = pd.Series(float(acc.iloc[0]), index=acc.index)
    else:
        ref = _series(m, head, spec.subset, "clean").reindex(acc.index)
    signal = (acc - ref).to_numpy(np.float64)
    ok = signal >= min_gain  # NaN compares False
    memorized = bool(ok[-1])
    onset = None
    if memorized:
        start = len(ok) - int(np.argmin(ok[::-1])) if not ok.all() else 0
        onset = int(acc.index[start])
    last = noisy[(noisy["head"] == head) & (noisy["subset"] == spec.subset)]
    n = int(last.loc[last["epoch"] == last["epoch"].max(), "n"].sum()) if "n" in last else 0
    return Memorization(run=run, noise_kind=noise_kind, head=head, subset=spec.subset, reference_kind=spec.reference,
                        group=spec.group, epochs=tuple(int(e) for e in acc.index), accuracy=tuple(map(float, acc)),
                        reference=tuple(map(float, ref)), signal=tuple(map(float, signal)), n=n,
                        min_gain=float(min_gain), memorized=memorized, onset=onset)
