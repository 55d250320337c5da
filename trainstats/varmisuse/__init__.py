"""GREAT-format VarMisuse examples: schema check, shard names, reading with ``shard:line`` ids.

No TensorFlow here (only the stdlib); a Keras model, if any, lives in its own module.
"""
from trainstats.varmisuse.reader import decode_line, iter_examples, make_sample_id
from trainstats.varmisuse.schema import InvalidExample, validate_example
from trainstats.varmisuse.shards import SHARD_PATTERN, list_shards, parse_shard_name, shard_name

__all__ = [
    "InvalidExample",
    "SHARD_PATTERN",
    "decode_line",
    "iter_examples",
    "list_shards",
    "make_sample_id",
    "parse_shard_name",
    "shard_name",
    "validate_example",
]
