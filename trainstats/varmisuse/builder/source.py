"""Examples from a source string (no files): handy for tests and notebooks."""
from __future__ import annotations

import ast
import random

from trainstats.varmisuse.builder.examples import function_examples
from trainstats.varmisuse.builder.files import iter_functions
from trainstats.varmisuse.builder.tokens import tokenize_source
from trainstats.varmisuse.builder.tree import Tree

__all__ = ["examples_from_source"]


def examples_from_source(text: str, *, seed: int = 0, filepath: str = "<string>", max_tokens: int = 512,
                         license: str = "unknown") -> list[dict]:
    """GREAT examples (decoded JSON objects) for every function in ``text``, in source order.

    Each function with a possible misuse gives ``[bug_free, buggy]``; others give nothing. Seeds are
    derived exactly as in :func:`~trainstats.varmisuse.builder.build_varmisuse`, so the same function
    in a file at ``filepath`` gets the same bug.

    Raises:
        SyntaxError: ``text`` does not parse.
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, received {type(text).__name__}")
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    tree = Tree(ast.parse(text, filename=filepath))
    src = tokenize_source(text)
    out: list[dict] = []
    for qual, func in iter_functions(tree):
        provenance = {"datasetProvenance": {
            "datasetName": "source", "filepath": filepath, "license": license,
            "note": f"function: {qual} (line {func.lineno}); built by trainstats build-varmisuse",
            "function": qual, "line": func.lineno,
        }}
        rng = random.Random(f"{seed}:{filepath}:{qual}:{func.lineno}")
        result = function_examples(src, tree, func, rng=rng, max_tokens=max_tokens, provenance=provenance)
        out.extend(result.examples)
    return out
