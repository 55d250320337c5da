"""Keras 3 VarMisuse models (GREAT and a plain Transformer), their data pipeline and per-sample stats.

``vocab`` and ``data`` need only numpy; everything else imports TensorFlow, lazily on first use.
"""
from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "SubtokenVocab", "split_subtokens", "EncodedSet", "encode_examples", "load_encoded",
    "make_dataset", "element_dataset", "batch_by_length",
    "build_varmisuse_model", "compile_varmisuse_model", "MODEL_KINDS",
    "loc_loss", "rep_loss", "loc_head_stats", "rep_head_stats", "varmisuse_extra_stats", "HEAD_STATS",
    "evaluate_varmisuse", "varmisuse_callback", "capture_extra_stats", "EXTRA_COLUMNS",
]

_WHERE = {
    "SubtokenVocab": "vocab", "split_subtokens": "vocab",
    "EncodedSet": "data", "encode_examples": "data", "load_encoded": "data",
    "make_dataset": "pipeline", "element_dataset": "pipeline", "batch_by_length": "pipeline",
    "build_varmisuse_model": "model", "compile_varmisuse_model": "model", "MODEL_KINDS": "model",
    "loc_loss": "losses", "rep_loss": "losses",
    "loc_head_stats": "stats", "rep_head_stats": "stats", "varmisuse_extra_stats": "stats", "HEAD_STATS": "stats",
    "evaluate_varmisuse": "evaluate",
    "varmisuse_callback": "capture", "capture_extra_stats": "capture", "EXTRA_COLUMNS": "capture",
}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
