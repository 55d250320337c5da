"""The study's published figures: a cited table of its headline numbers, and a reader of its per-epoch CSV.

The study is Rabin, Hussain, Hellendoorn, Alipour, *Memorization and Generalization in Neural Code
Intelligence Models*, Information and Software Technology 153 (2023) 107066, arXiv:2106.08704 —
GREAT (Hellendoorn et al., ICLR 2020) trained on Py150 VarMisuse with noise at 0/25/50/75/100 %.

:data:`HEADLINE` holds the figures of its GREAT model at epoch 50 (as published in the result tables of
the authors' repository ``mdrafiqulrabin/CI-Memorization``, ``results/data/variable_misuse/``, 4
significant digits). They are the paper's numbers, not trainstats measurements: every table or
figure that shows them says so (:data:`PAPER_LABEL`). One study "epoch" is most probably one GREAT
validation interval of 250,000 training samples, not a pass over the data.

The full per-epoch series (GREAT, GGNN, Transformer) are read from a CSV the user supplies,
:func:`load_published` — long format with columns ``model, noise_kind, metric, head, split, epoch,
noise_percent, value`` (``metric`` ``accuracy`` or ``gini_loss``; ``split`` ``train`` = the noised
training batches, scored against the noisy labels; ``heldout`` = clean dev; ``noise_kind`` ``label``
= the paper's Y_Label_Shuffling, ``inject-repair`` = X_Injecting_Repair).
"""
from __future__ import annotations

import csv
import math
import os
from pathlib import Path

import pandas as pd

__all__ = ["PAPER_CITATION", "PAPER_LABEL", "PUBLISHED_COLUMNS", "HEADLINE", "HEADLINE_EPOCH", "headline",
           "load_published", "published_series"]

PAPER_CITATION = ("Rabin, Hussain, Hellendoorn, Alipour. Memorization and Generalization in Neural Code "
                  "Intelligence Models. Information and Software Technology 153 (2023) 107066; arXiv:2106.08704")
#: how a published figure is labelled wherever it is shown beside ours
PAPER_LABEL = "paper: GREAT on Py150 (Rabin et al. 2023)"
#: the epoch of the study's training at which :data:`HEADLINE` is taken (its last)
HEADLINE_EPOCH = 50
#: the columns of the study's per-epoch CSV, in order
PUBLISHED_COLUMNS = ("model", "noise_kind", "metric", "head", "split", "epoch", "noise_percent", "value")

_LEVELS = (0, 25, 50, 75, 100)
#: (noise_kind, metric, head, split) -> values at noise 0/25/50/75/100 %, GREAT at epoch 50 (published)
HEADLINE: dict[tuple[str, str, str, str], tuple[float, float, float, float, float]] = {
    ("label", "accuracy", "loc", "train"): (0.8528, 0.5900, 0.1809, 0.0053, 0.0567),
    ("label", "accuracy", "loc", "heldout"): (0.8516, 0.8068, 0.3590, 0.0000, 0.0006),
    ("label", "accuracy", "rep", "heldout"): (0.8437, 0.8162, 0.7534, 0.6703, 0.0709),
    ("label", "gini_loss", "loc", "train"): (0.8566, 0.5559, 0.3525, 0.2098, 0.1918),
    ("label", "gini_loss", "rep", "train"): (0.8792, 0.7053, 0.5388, 0.3875, 0.2712),
    ("inject-repair", "accuracy", "loc", "heldout"): (0.8516, 0.8113, 0.7525, 0.7020, 0.0114),
    ("inject-repair", "accuracy", "rep", "train"): (0.8671, 0.8799, 0.9027, 0.9331, 0.9909),
    ("inject-repair", "accuracy", "rep", "heldout"): (0.8437, 0.8224, 0.7972, 0.7527, 0.4071),
    ("inject-repair", "gini_loss", "loc", "train"): (0.8553, 0.8749, 0.8995, 0.9408, 1.0000),
    ("inject-repair", "gini_loss", "rep", "train"): (0.8792, 0.8939, 0.9177, 0.9515, 1.0000),
}


def headline(noise_kind: str, metric: str, head: str, split: str, noise_level: float) -> float | None:
    """The paper's GREAT figure at epoch 50, or None where it published none.

    ``noise_level`` is a fraction (0.25 = 25 %); ``split`` is ``train`` or ``heldout`` (``dev`` is
    accepted for ``heldout``). Only the study's levels 0/25/50/75/100 % have figures.

    >>> headline("label", "accuracy", "loc", "heldout", 0.5)
    0.359
    >>> headline("label", "accuracy", "rep", "train", 0.5) is None
    True
    """
    split = "heldout" if split == "dev" else split
    values = HEADLINE.get((noise_kind, metric, head, split))
    percent = round(100 * float(noise_level))
    if values is None or percent not in _LEVELS or not math.isclose(100 * float(noise_level), percent, abs_tol=1e-6):
        return None
    return values[_LEVELS.index(percent)]


def load_published(path: str | os.PathLike) -> pd.DataFrame:
    """Read the study's per-epoch CSV (e.g. ``shared/paper/varmisuse_results.csv``), checked.

    Returns a DataFrame with :data:`PUBLISHED_COLUMNS` (``epoch`` and ``noise_percent`` int64,
    ``value`` float64). A missing file, a wrong header or a bad value raises ``ValueError`` naming the
    file and line.
    """
    p = Path(path)
    if not p.is_file():
        raise ValueError(f"{p}: no such file (expected the study's per-epoch CSV with columns "
                         f"{', '.join(PUBLISHED_COLUMNS)})")
    rows: list[tuple] = []
    with p.open(newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if header is None or tuple(h.strip() for h in header) != PUBLISHED_COLUMNS:
            raise ValueError(f"{p}:1: expected the header {','.join(PUBLISHED_COLUMNS)}; received {header}")
        for line_no, rec in enumerate(reader, start=2):
            if not rec:
                continue
            if len(rec) != len(PUBLISHED_COLUMNS):
                raise ValueError(f"{p}:{line_no}: expected {len(PUBLISHED_COLUMNS)} fields; received {len(rec)}: {rec}")
            try:
                rows.append((*rec[:5], int(rec[5]), int(rec[6]), float(rec[7])))
            except ValueError:
                raise ValueError(f"{p}:{line_no}: epoch and noise_percent must be integers and value a number; "
                                 f"received {rec[5:]!r}") from None
    df = pd.DataFrame(rows, columns=list(PUBLISHED_COLUMNS))
    return df.astype({"epoch": "int64", "noise_percent": "int64", "value": "float64"})


def published_series(published: pd.DataFrame, *, noise_kind: str, metric: str, head: str, split: str,
                     noise_level: float, model: str = "great") -> pd.DataFrame:
    """One published per-epoch curve: columns ``epoch``, ``value`` sorted by epoch (empty if none).

    ``split`` ``dev`` is taken as ``heldout``; ``noise_level`` is a fraction.
    """
    split = "heldout" if split == "dev" else split
    sel = published[(published["model"] == model) & (published["noise_kind"] == noise_kind)
                    & (published["metric"] == metric) & (published["head"] == head) & (published["split"] == split)
                    & (published["noise_percent"] == round(100 * float(noise_level)))]
    return sel[["epoch", "value"]].sort_values("epoch").reset_index(drop=True)
