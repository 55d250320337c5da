"""Map AST nodes onto GREAT tokens: each node's token span and its one *representative* token.

GREAT's edges join tokens, not AST nodes, so every node that takes part in an edge is projected onto
one token. The rules (an approximation of GREAT's projection, which we cannot reproduce exactly
because GREAT tokenized re-printed code; see ``docs/builder.md``):

* ``Name``, ``arg``, constants, ``alias``: their (first) token;
* ``def`` / ``class``: the merged ``def name(`` / ``class Name`` token;
* a statement that starts with a keyword (``return``, ``if``, ``for``, ``try``, ``except`` ...): that
  keyword; an expression statement or assignment: the layout token just before it (``#NEWLINE#``,
  ``#INDENT#`` or ``#UNINDENT#``), as in GREAT;
* a list, set or dict display or comprehension: its opening bracket; a call with two or more
  arguments: its first ``,`` (as in GREAT);
* any other expression: the first token of its span, after its first child, that belongs to no
  child and is not a closing bracket -- the ``.`` of an attribute, ``[`` of a subscript, ``(`` of a
  call, the operator of a binary operation or comparison, the ``,`` of a tuple; falling back to its
  first own token;
* ``comprehension``: its ``for``; ``with ... as ...`` item: its ``as``; ``arguments``: the first
  ``,`` of the parameter list (no token without a comma, as in GREAT); a decorated ``def`` or
  ``class``: its first ``@``.

Nodes inside f-strings are not projected (they have no tokens of their own).
"""
from __future__ import annotations

import ast

from trainstats.varmisuse.builder.tokens import LAYOUT_TOKENS, FunctionTokens, SourceFile
from trainstats.varmisuse.builder.tree import Tree

__all__ = ["Anchors"]

_LAYOUT_BEFORE = (ast.Assign, ast.AugAssign, ast.AnnAssign, ast.Expr)
_DEFS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
_CLOSERS = frozenset({")", "]", "}"})
_DISPLAYS = (ast.List, ast.Set, ast.Dict, ast.ListComp, ast.SetComp, ast.DictComp)


class Anchors:
    """Spans and representative tokens of the nodes of one function.

    Attributes:
        span: node -> ``(first, last)`` token indices (inclusive).
        rep: node -> representative token index.
        nodes: the function's nodes in post-order (nodes inside f-strings left out).
    """

    def __init__(self, src: SourceFile, ft: FunctionTokens, func: ast.AST, tree: Tree):
        self.src = src
        self.tree = tree
        self.children = tree.children
        self.nodes: list[ast.AST] = []
        self.ft = ft
        self.tokens = ft.tokens
        self.span: dict[ast.AST, tuple[int, int]] = {}
        self.rep: dict[ast.AST, int] = {}
        self._visit(func)

    # -- spans ---------------------------------------------------------------------------------
    def _node_span(self, node: ast.AST) -> tuple[int, int] | None:
        lineno = getattr(node, "lineno", None)
        end_lineno = getattr(node, "end_lineno", None)
        if lineno is None or end_lineno is None:
            return None
        col = self.src.char_col(lineno, node.col_offset)
        end_col = self.src.char_col(end_lineno, node.end_col_offset)
        first = self.ft.by_start.get((lineno, col))
        last = self.ft.by_end.get((end_lineno, end_col))
        if first is None or last is None or last < first:
            return None
        return first, last

    def _visit(self, node: ast.AST) -> None:
        if isinstance(node, ast.JoinedStr):
            span = self._node_span(node)
            if span is not None:
                self.span[node] = span
                self.rep[node] = span[0]
            return
        for child in self.children[node]:
            self._visit(child)
        self.nodes.append(node)
        if isinstance(node, ast.comprehension):
            self._comprehension(node)
            return
        if isinstance(node, ast.withitem):
            vspan = self.span.get(node.optional_vars) if node.optional_vars is not None else None
            cspan = self.span.get(node.context_expr)
            if vspan is not None and cspan is not None:
                k = vspan[0] - 1
                while k > cspan[1] and self.tokens[k] == "(":
                    k -= 1
                if self.tokens[k] == "as":  # GREAT: ``with a as b`` sits on ``as``
                    self.span[node] = (cspan[0], vspan[1])
                    self.rep[node] = k
            return
        if isinstance(node, ast.arguments):
            return  # placed by its function / lambda below
        span = self._node_span(node)
        if span is None:
            return
        if isinstance(node, ast.arg) and self.tokens[span[0]] != node.arg:
            return  # ``**kwargs``: one token in GREAT, not an occurrence of the parameter
        self.span[node] = span
        self.rep[node] = self._rep(node, span)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            self._arguments(node)

    def _comprehension(self, node: ast.comprehension) -> None:
        tspan = self.span.get(node.target)
        if tspan is None:
            return
        k = tspan[0] - 1
        while k > 0 and self.tokens[k] == "(":
            k -= 1
        if self.tokens[k] != "for":
            return
        last_node = node.ifs[-1] if node.ifs else node.iter
        lspan = self.span.get(last_node)
        last = lspan[1] if lspan else tspan[1]
        self.span[node] = (k - 1 if node.is_async and k > 1 else k, last)
        self.rep[node] = k

    def _arguments(self, func: ast.AST) -> None:
        tokens = self.tokens
        head = self.rep[func]
        if isinstance(func, ast.Lambda):
            stop = {":"}
            k = self.span[func][0] + 1
        else:
            stop = {")"}
            k = head + 1
        depth, first_comma = 0, None
        n_tokens = len(tokens)
        while k < n_tokens:
            t = tokens[k]
            if depth == 0 and t in stop:
                break
            if t in ("(", "[", "{"):
                depth += 1
            elif t in (")", "]", "}"):
                depth -= 1
            elif t == "," and depth == 0 and first_comma is None:
                first_comma = k
            k += 1
        if k >= n_tokens:
            return
        rep = first_comma  # no comma: no token of its own, as in GREAT
        if rep is not None:
            start = self.span[func][0] + 1 if isinstance(func, ast.Lambda) else head
            self.span[func.args] = (start, k)
            self.rep[func.args] = rep

    # -- representative token --------------------------------------------------------------------
    def _rep(self, node: ast.AST, span: tuple[int, int]) -> int:
        first, last = span
        tokens = self.tokens
        if isinstance(node, _DEFS):
            if node.decorator_list:  # GREAT puts a decorated definition on its first ``@``
                dspan = self.span.get(node.decorator_list[0])
                if dspan is not None and dspan[0] > 0 and tokens[dspan[0] - 1] == "@":
                    return dspan[0] - 1
            k = first
            prefix = "class " if isinstance(node, ast.ClassDef) else "def "
            while k <= last and not tokens[k].startswith(prefix):
                k += 1
            return k if k <= last else first
        if isinstance(node, ast.stmt) or isinstance(node, ast.excepthandler):
            if isinstance(node, _LAYOUT_BEFORE) and first > 1:
                return first - 1
            return first
        kids = sorted(self.span[c] for c in self.children[node] if c in self.span)
        if not kids:
            return first
        own = self._own_tokens(first, last, kids)
        after = kids[0][1]
        if isinstance(node, _DISPLAYS) and own:
            return own[0]  # the opening bracket, as in GREAT
        if isinstance(node, ast.Call) and len(node.args) + len(node.keywords) >= 2:
            for k in own:  # GREAT puts a call with several arguments on its first comma
                if k > after and tokens[k] == ",":
                    return k
        for k in own:
            if k > after and tokens[k] not in _CLOSERS and tokens[k] not in LAYOUT_TOKENS:
                return k
        for k in own:
            if tokens[k] not in LAYOUT_TOKENS:
                return k
        return first

    @staticmethod
    def _own_tokens(first: int, last: int, kids: list[tuple[int, int]]) -> list[int]:
        own, k, ki = [], first, 0
        while k <= last:
            while ki < len(kids) and kids[ki][1] < k:
                ki += 1
            if ki < len(kids) and kids[ki][0] <= k <= kids[ki][1]:
                k = kids[ki][1] + 1
                continue
            own.append(k)
            k += 1
        return own

    def token_after_as(self, node: ast.AST) -> int | None:
        """Token index of the name after ``as`` in an ``except ... as name`` handler (or None)."""
        span = self.span.get(node)
        if span is None:
            return None
        name = getattr(node, "name", None)
        k = span[0]
        while k < span[1]:
            if self.tokens[k] == "as" and self.tokens[k + 1] == name:
                return k + 1
            if self.tokens[k] == ":":
                return None
            k += 1
        return None
