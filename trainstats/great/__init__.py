"""Drop-in instrumented training for a GREAT checkout (VHellendoorn/ICLR20-Great).

GREAT's own model, loss, vocabulary, per-example conversion, checkpoints and ``log.txt`` are used from
the user's checkout (imported, never edited); this package adds id-carrying batching with GREAT's
semantics (:class:`IdBatcher`), per-sample statistics of both pointer heads (:func:`per_sample_stats`)
and rows in a trainstats run directory (:class:`GreatRecorder`). Entry points: ``trainstats great
train`` and ``integrations/great/run_model_stats.py``; see ``integrations/great/README.md``.

Importing this package is cheap; TensorFlow is imported by the submodules that need it. GREAT needs
the legacy tf-keras: call :func:`use_legacy_keras` (or :func:`load_checkout`) before TensorFlow is used.
"""
from __future__ import annotations

__all__ = [
    "GREAT_COLUMNS",
    "GreatCheckout",
    "GreatRecorder",
    "IdBatcher",
    "STAT_KEYS",
    "evaluate",
    "load_checkout",
    "per_sample_stats",
    "row_values",
    "run_great",
    "seed_everything",
    "train",
    "use_legacy_keras",
]

_WHERE = {
    "GREAT_COLUMNS": "columns", "row_values": "columns",
    "GreatCheckout": "checkout", "load_checkout": "checkout", "seed_everything": "checkout",
    "use_legacy_keras": "checkout",
    "GreatRecorder": "recorder",
    "IdBatcher": "batching",
    "STAT_KEYS": "stats", "per_sample_stats": "stats",
    "evaluate": "loop", "train": "loop",
    "run_great": "main",
}


def __getattr__(name: str):
    if name in _WHERE:
        import importlib

        return getattr(importlib.import_module(f"trainstats.great.{_WHERE[name]}"), name)
    raise AttributeError(f"module 'trainstats.great' has no attribute {name!r}")
