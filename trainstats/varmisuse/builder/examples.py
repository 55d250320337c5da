"""One function -> a bug-free and a buggy GREAT example (decoded JSON objects)."""
from __future__ import annotations

import ast
import random
from dataclasses import dataclass

from trainstats.varmisuse.builder.anchors import Anchors
from trainstats.varmisuse.builder.bugs import choose_misuse
from trainstats.varmisuse.builder.edges import FunctionGraph
from trainstats.varmisuse.builder.scopes import ROOT, Scopes
from trainstats.varmisuse.builder.tokens import SourceFile, function_tokens
from trainstats.varmisuse.builder.tree import Tree

__all__ = ["FunctionResult", "function_examples", "function_span"]


@dataclass
class FunctionResult:
    """Examples built from one function, or why there are none (``skipped`` is then a reason)."""

    examples: list[dict]
    skipped: str | None = None
    n_tokens: int = 0


def function_span(src: SourceFile, func: ast.AST) -> tuple[tuple[int, int], tuple[int, int]]:
    """Source ``(start, end)`` char positions of ``func`` including its decorators."""
    col = src.char_col(func.lineno, func.col_offset)
    line = func.decorator_list[0].lineno if func.decorator_list else func.lineno
    if func.decorator_list:
        text = src.lines[line - 1]
        at = text.find("@")
        col = at if at >= 0 else col
    end = (func.end_lineno, src.char_col(func.end_lineno, func.end_col_offset))
    return (line, col), end


def function_examples(src: SourceFile, tree: Tree, func: ast.AST, *, rng: random.Random, max_tokens: int,
                      provenance: dict) -> FunctionResult:
    """Build ``[bug_free, buggy]`` for ``func`` (a ``FunctionDef``/``AsyncFunctionDef`` of ``src``).

    Skips (with a reason) functions longer than ``max_tokens`` tokens and functions with no possible
    misuse (see :mod:`trainstats.varmisuse.builder.bugs`).
    """
    if _few_bindings(func, tree):
        return FunctionResult([], "no variable misuse possible", 0)
    start, end = function_span(src, func)
    ft = function_tokens(src, start, end)
    tokens = ft.tokens
    if len(tokens) > max_tokens:
        return FunctionResult([], f"longer than {max_tokens} tokens", len(tokens))
    anchors = Anchors(src, ft, func, tree)
    if func not in anchors.rep:
        return FunctionResult([], "could not place the def token", len(tokens))
    scopes = Scopes(func, anchors)
    misuse = choose_misuse(scopes, rng)
    if misuse is None:
        return FunctionResult([], "no variable misuse possible", len(tokens))
    graph = FunctionGraph(func, anchors, scopes)
    clean = {
        "has_bug": False, "bug_kind": 0, "bug_kind_name": "NONE", "source_tokens": tokens,
        "edges": graph.edges(tokens),
        "error_location": 0, "repair_targets": [],
        "repair_candidates": _candidates(scopes, None, with_names=True),
        "provenances": [provenance],
    }
    buggy_tokens = list(tokens)
    buggy_tokens[misuse.location] = misuse.wrong
    rename = (misuse.occ, misuse.wrong)
    targets = [t for t in scopes.variables()[misuse.right] if t != misuse.location]
    buggy = {
        "has_bug": True, "bug_kind": 1, "bug_kind_name": "VARIABLE_MISUSE", "source_tokens": buggy_tokens,
        "edges": graph.edges(buggy_tokens, rename=rename),
        "error_location": misuse.location, "repair_targets": targets,
        "repair_candidates": _candidates(scopes, rename, with_names=False),
        "provenances": [provenance],
    }
    return FunctionResult([clean, buggy], None, len(tokens))


def _few_bindings(func: ast.AST, tree: Tree) -> bool:
    """Cheap pre-check: True when fewer than two names can be bound in ``func`` (so no misuse).

    Over-counts (nested scopes included), so it never skips a function that has a misuse.
    """
    names: set[str] = set()
    stack = [func.args]
    stack.extend(func.body)
    children = tree.children
    while stack:
        node = stack.pop()
        if isinstance(node, ast.Name):
            if not isinstance(node.ctx, ast.Load):
                names.add(node.id)
        elif isinstance(node, ast.arg):
            names.add(node.arg)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.alias):
            names.add(node.asname or node.name)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            names.add(node.name)
        elif isinstance(node, (ast.MatchAs, ast.MatchStar)) and node.name:
            names.add(node.name)
        elif isinstance(node, ast.MatchMapping) and node.rest:
            names.add(node.rest)
        if len(names) >= 2:
            return False
        stack.extend(children[node])
    return True


def _candidates(scopes: Scopes, rename: tuple[int, str] | None, *, with_names: bool) -> list:
    """Positions of the function's variables grouped by variable (first occurrence order).

    GREAT's bug-free examples follow each group with the variable's name; buggy ones list only ints.
    """
    groups: dict[str, list[int]] = {}
    for i, o in enumerate(scopes.occ):
        if o.resolved != ROOT or not o.plain:
            continue
        name = rename[1] if rename is not None and rename[0] == i else o.name
        groups.setdefault(name, []).append(o.tok)
    out: list = []
    for name, toks in groups.items():
        out.extend(sorted(toks))
        if with_names:
            out.append(name)
    return out
