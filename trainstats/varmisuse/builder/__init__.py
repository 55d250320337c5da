"""Build GREAT-format VarMisuse examples from Python source (stdlib ``ast`` and ``tokenize`` only).

>>> from trainstats.varmisuse.builder import build_varmisuse
>>> summary = build_varmisuse(None, "data/stdlib-varmisuse", seed=0, max_functions=200)  # doctest: +SKIP

See ``docs/builder.md`` for the token conventions, the edge types (exact or approximate) and the
bug model.
"""
from trainstats.varmisuse.builder.build import (
    DEFAULT_EXCLUDE_DIRS,
    SPLITS,
    BuildSummary,
    build_varmisuse,
    default_source_dir,
)
from trainstats.varmisuse.builder.edges import EDGE_TYPES
from trainstats.varmisuse.builder.source import examples_from_source

__all__ = [
    "BuildSummary",
    "DEFAULT_EXCLUDE_DIRS",
    "EDGE_TYPES",
    "SPLITS",
    "build_varmisuse",
    "default_source_dir",
    "examples_from_source",
]
