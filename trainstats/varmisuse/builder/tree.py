"""A module's AST with each node's children listed once (``ast.iter_child_nodes`` is slow)."""
from __future__ import annotations

import ast

__all__ = ["Tree"]

# nodes that never carry positions or children worth visiting
_LEAF_KINDS = (ast.expr_context, ast.boolop, ast.operator, ast.unaryop, ast.cmpop)


class Tree:
    """Children of every node of ``root``.

    Attributes:
        children: node -> child nodes in field order (list fields flattened; contexts and operator
            nodes left out).
        singles: node -> child nodes held by single-valued fields (GREAT's FIELD edges).
    """

    def __init__(self, root: ast.AST):
        self.root = root
        children: dict[ast.AST, list[ast.AST]] = {}
        singles: dict[ast.AST, list[ast.AST]] = {}
        stack = [root]
        AST, leaf = ast.AST, _LEAF_KINDS
        while stack:
            node = stack.pop()
            kids: list[ast.AST] = []
            single: list[ast.AST] = []
            for name in node._fields:
                value = getattr(node, name, None)
                if isinstance(value, list):
                    for v in value:
                        if isinstance(v, AST) and not isinstance(v, leaf):
                            kids.append(v)
                elif isinstance(value, AST) and not isinstance(value, leaf):
                    kids.append(value)
                    single.append(value)
            children[node] = kids
            if single:
                singles[node] = single
            stack.extend(kids)
        self.children = children
        self.singles = singles
