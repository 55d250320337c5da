"""Reproducible noise for GREAT-format VarMisuse data, with a per-sample noise manifest.

No TensorFlow here. See ``docs/noise.md``.

Example::

    from trainstats.noise import induce_noise, load_manifest
    summary = induce_noise("data/great/train", "data/noisy", kind="label", level=0.25, seed=1)
    manifest = load_manifest("data/noisy")      # one row per noised example: sample_id, noise_kind, ...
"""
from trainstats.noise.kinds import NoiseKind, available_kinds, get_kind, register_kind
from trainstats.noise.manifest import MANIFEST_NAME, MANIFEST_SCHEMA, SUMMARY_NAME, load_manifest, read_summary
from trainstats.noise.pipeline import induce_noise
from trainstats.noise.rng import ExampleRandom, example_random, selection_order
from trainstats.noise.select import count_for_level

__all__ = [
    "MANIFEST_NAME",
    "MANIFEST_SCHEMA",
    "SUMMARY_NAME",
    "ExampleRandom",
    "NoiseKind",
    "available_kinds",
    "count_for_level",
    "example_random",
    "get_kind",
    "induce_noise",
    "load_manifest",
    "read_summary",
    "register_kind",
    "selection_order",
]
