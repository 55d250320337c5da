"""Source text -> GREAT-style tokens for one function, with maps from source positions to tokens.

GREAT conventions reproduced (see ``docs/builder.md``):

* the example starts with ``#NEWLINE#``; logical line ends are ``#NEWLINE#``; indentation changes are
  ``#INDENT#`` / ``#UNINDENT#``; comments and non-logical line breaks are dropped;
* ``def name(`` is one token (``def`` + name + ``(``), ``class Name`` is one token;
* ``is not`` and ``not in`` are one token each; so is ``**name`` in a ``def``'s parameters (but
  ``*name`` is two tokens, as in GREAT);
* in ``import`` statements dotted names (``os.path``) and ``as name`` are one token each;
* every string literal (including an f-string, also on Python >= 3.12) is one token, spelled as in
  the source;
* trailing ``#NEWLINE#`` / ``#UNINDENT#`` after the function's last token are dropped.
"""
from __future__ import annotations

import io
import tokenize
from dataclasses import dataclass, field

__all__ = ["SourceFile", "FunctionTokens", "tokenize_source", "function_tokens", "LAYOUT_TOKENS"]

NEWLINE, INDENT, UNINDENT = "#NEWLINE#", "#INDENT#", "#UNINDENT#"
LAYOUT_TOKENS = frozenset({NEWLINE, INDENT, UNINDENT})

_SKIP = {tokenize.COMMENT, tokenize.NL, tokenize.ENCODING, tokenize.ENDMARKER}
_LAYOUT = {tokenize.NEWLINE: NEWLINE, tokenize.INDENT: INDENT, tokenize.DEDENT: UNINDENT}
_FSTRING_START = getattr(tokenize, "FSTRING_START", None)
_FSTRING_END = getattr(tokenize, "FSTRING_END", None)
_STMT_START = {tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT}


@dataclass
class SourceFile:
    """A decoded, newline-normalised source text and its raw ``tokenize`` tokens."""

    text: str
    lines: list[str]
    toks: list[tokenize.TokenInfo]
    starts: list[tuple[int, int]] = field(default_factory=list)  # start of each raw token

    def char_col(self, lineno: int, byte_col: int) -> int:
        """Convert an ``ast`` column (UTF-8 bytes) on line ``lineno`` (1-based) to characters."""
        line = self.lines[lineno - 1] if 0 < lineno <= len(self.lines) else ""
        if line.isascii():
            return byte_col
        return len(line.encode("utf-8")[:byte_col].decode("utf-8", errors="replace"))


def tokenize_source(text: str) -> SourceFile:
    """Tokenize a whole (already decoded) source text; raises ``tokenize.TokenError``/``SyntaxError``."""
    toks = list(tokenize.generate_tokens(io.StringIO(text).readline))
    return SourceFile(text=text, lines=text.split("\n"), toks=toks, starts=[t.start for t in toks])


@dataclass
class FunctionTokens:
    """The GREAT tokens of one function and where each came from.

    Attributes:
        tokens: token strings, ``tokens[0] == "#NEWLINE#"``.
        by_start: source ``(line, char col)`` of a raw token's start -> token index (layout tokens
            are not indexed).
        by_end: source ``(line, char col)`` of a raw token's end -> token index.
    """

    tokens: list[str]
    by_start: dict[tuple[int, int], int]
    by_end: dict[tuple[int, int], int]


def _find(src: SourceFile, pos: tuple[int, int]) -> int:
    from bisect import bisect_left

    i = bisect_left(src.starts, pos)
    # skip zero-width DEDENT tokens that share the position of the following token
    while i < len(src.toks) and src.toks[i].type in (tokenize.DEDENT, tokenize.INDENT):
        i += 1
    return i


def function_tokens(src: SourceFile, start: tuple[int, int], end: tuple[int, int]) -> FunctionTokens:
    """GREAT tokens for the source range ``[start, end]`` (char positions, ``end`` exclusive).

    ``start`` is the position of the function's first decorator ``@`` (or ``def`` / ``async``).
    """
    toks = src.toks
    i = _find(src, start)
    out: list[str] = [NEWLINE]
    by_start: dict[tuple[int, int], int] = {}
    by_end: dict[tuple[int, int], int] = {}
    in_import = False
    param_depth = 0  # bracket depth inside a def's parameter list (0: outside)
    prev_type = tokenize.NEWLINE

    def emit(text: str, parts: list[tokenize.TokenInfo]) -> None:
        idx = len(out)
        out.append(text)
        for p in parts:
            by_start[p.start] = idx
            by_end[p.end] = idx

    n = len(toks)
    while i < n:
        tok = toks[i]
        if tok.start >= end:
            break
        ttype = tok.type
        if ttype in _SKIP:
            i += 1
            continue
        if ttype in _LAYOUT:
            out.append(_LAYOUT[ttype])
            if ttype == tokenize.NEWLINE:
                in_import = False
            prev_type = ttype
            i += 1
            continue
        s = tok.string
        at_stmt_start = prev_type in _STMT_START or out[-1] in (";", ":")
        if _FSTRING_START is not None and ttype == _FSTRING_START:
            depth, j = 0, i
            while j < n:
                if toks[j].type == _FSTRING_START:
                    depth += 1
                elif toks[j].type == _FSTRING_END:
                    depth -= 1
                    if depth == 0:
                        break
                j += 1
            j = min(j, n - 1)
            emit(_slice(src, tok.start, toks[j].end), [toks[k] for k in range(i, j + 1)
                                                        if toks[k].type not in _SKIP])
            i = j + 1
            prev_type = ttype
            continue
        nxt = toks[i + 1] if i + 1 < n else None
        nxt2 = toks[i + 2] if i + 2 < n else None
        if ttype == tokenize.NAME:
            if s == "def" and nxt is not None and nxt.type == tokenize.NAME and nxt2 is not None \
                    and nxt2.string == "(":
                emit(f"def {nxt.string}(", [tok, nxt, nxt2])
                param_depth = 1
                i += 3
                prev_type = tokenize.OP
                continue
            if s == "class" and nxt is not None and nxt.type == tokenize.NAME:
                emit(f"class {nxt.string}", [tok, nxt])
                i += 2
                prev_type = tokenize.NAME
                continue
            if (s == "is" and nxt is not None and nxt.string == "not") or \
                    (s == "not" and nxt is not None and nxt.string == "in" and nxt.type == tokenize.NAME):
                emit(f"{s} {nxt.string}", [tok, nxt])
                i += 2
                prev_type = tokenize.NAME
                continue
            if s in ("import", "from") and at_stmt_start:
                in_import = True
            elif in_import and s == "as" and nxt is not None and nxt.type == tokenize.NAME:
                emit(f"as {nxt.string}", [tok, nxt])
                i += 2
                prev_type = tokenize.NAME
                continue
            elif in_import and s not in ("import", "from"):
                j = i  # dotted name: NAME ('.' NAME)*
                parts = [tok]
                while j + 2 < n and toks[j + 1].string == "." and toks[j + 2].type == tokenize.NAME \
                        and toks[j + 2].string not in ("import", "as"):
                    parts += [toks[j + 1], toks[j + 2]]
                    j += 2
                emit("".join(p.string for p in parts), parts)
                i = j + 1
                prev_type = tokenize.NAME
                continue
        elif in_import and ttype == tokenize.OP and s in (".", "...") and out[-1] == "from":
            j, parts = i, []  # relative module: dots then an optional dotted name
            while j < n and toks[j].string in (".", "..."):
                parts.append(toks[j])
                j += 1
            while j < n and toks[j].type == tokenize.NAME and toks[j].string != "import":
                parts.append(toks[j])
                if j + 1 < n and toks[j + 1].string == ".":
                    parts.append(toks[j + 1])
                    j += 2
                else:
                    j += 1
            emit("".join(p.string for p in parts), parts)
            i = j
            prev_type = tokenize.NAME
            continue
        elif ttype == tokenize.OP and s == ";":
            in_import = False
        elif param_depth and ttype == tokenize.OP:
            if s in ("(", "[", "{"):
                param_depth += 1
            elif s in (")", "]", "}"):
                param_depth -= 1
            elif s == "**" and param_depth == 1 and nxt is not None and nxt.type == tokenize.NAME:
                emit(f"**{nxt.string}", [tok, nxt])
                i += 2
                prev_type = tokenize.NAME
                continue
        emit(s, [tok])
        prev_type = ttype
        i += 1
    while len(out) > 1 and out[-1] in LAYOUT_TOKENS:
        out.pop()
    return FunctionTokens(tokens=out, by_start=by_start, by_end=by_end)


def _slice(src: SourceFile, start: tuple[int, int], end: tuple[int, int]) -> str:
    (l1, c1), (l2, c2) = start, end
    if l1 == l2:
        return src.lines[l1 - 1][c1:c2]
    parts = [src.lines[l1 - 1][c1:]] + src.lines[l1:l2 - 1] + [src.lines[l2 - 1][:c2]]
    return "\n".join(parts)
