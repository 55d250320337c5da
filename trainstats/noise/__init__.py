"""Reproducible noise for GREAT-format VarMisuse data, with a per-sample noise manifest.

No TensorFlow here. See ``docs/noise.md``.

Example::

    from trainstats.noise import induce_noise, load_manifest
    summary = induce_noise("data/great/train", "data/noisy", kind="label", level=0.25, seed=1)
    manifest = load_manifest("data/noisy")      # one row per noised example: sample_id, noise_kind, ...

Names are imported lazily, so worker processes that only need the per-shard code do not pay for
pyarrow/pandas.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "MANIFEST_NAME": "manifest",
    "MANIFEST_SCHEMA": "manifest",
    "SUMMARY_NAME": "manifest",
    "load_manifest": "manifest",
    "read_summary": "manifest",
    "ExampleRandom": "rng",
    "example_random": "rng",
    "selection_order": "rng",
    "NoiseKind": "kinds",
    "available_kinds": "kinds",
    "get_kind": "kinds",
    "register_kind": "kinds",
    "count_for_level": "select",
    "induce_noise": "pipeline",
}
__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:  # pragma: no cover
    from trainstats.noise.kinds import NoiseKind, available_kinds, get_kind, register_kind
    from trainstats.noise.manifest import (MANIFEST_NAME, MANIFEST_SCHEMA, SUMMARY_NAME, load_manifest,
                                           read_summary)
    from trainstats.noise.pipeline import induce_noise
    from trainstats.noise.rng import ExampleRandom, example_random, selection_order
    from trainstats.noise.select import count_for_level


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'trainstats.noise' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"trainstats.noise.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
