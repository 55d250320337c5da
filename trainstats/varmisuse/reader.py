"""Stream GREAT-format examples with their ``shard:line`` sample ids."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Iterator

from trainstats.varmisuse.schema import InvalidExample, validate_example
from trainstats.varmisuse.shards import list_shards

__all__ = ["iter_examples", "make_sample_id", "decode_line"]


def make_sample_id(shard: str | os.PathLike, line: int) -> str:
    """Return the sample id ``"<shard basename>:<line>"`` (``line`` counted from 1)."""
    return f"{Path(shard).name}:{int(line)}"


def decode_line(raw: bytes, *, where: str, validate: bool = True) -> dict:
    """Decode and (optionally) validate one shard line; errors are prefixed with ``where``.

    Args:
        raw: the line's bytes (a trailing newline is allowed).
        where: ``"file:line"`` used to prefix error messages.
        validate: run :func:`validate_example` on the decoded object.

    Raises:
        InvalidExample: ``"<where>:<col>: invalid JSON: <reason>, near: <excerpt>"`` for undecodable
            lines (column counted from 1; the excerpt shows up to 30 characters either side, the
            character at the column between ``>>`` and ``<<``), ``"<where>: <problem>"`` for schema
            problems.
    """
    try:
        example = json.loads(raw)
    except json.JSONDecodeError as exc:
        if not raw.strip():
            raise InvalidExample(f"{where}: empty line, expected one JSON object per line") from None
        raise InvalidExample(f"{where}:{exc.colno}: invalid JSON: {_json_reason(exc)}, near: "
                             f"{_excerpt(exc.doc, exc.pos)}") from None
    except UnicodeDecodeError as exc:
        raise InvalidExample(f"{where}:{exc.start + 1}: invalid UTF-8: {exc.reason}, near: "
                             f"{_utf8_excerpt(raw, exc.start)}") from None
    if validate:
        try:
            validate_example(example)
        except InvalidExample as exc:
            raise InvalidExample(f"{where}: {exc}") from None
    return example


def _json_reason(exc: json.JSONDecodeError) -> str:
    """The decoder's reason as a whole sentence: some of its messages end in "at", the position
    following only in ``str(exc)`` ("Invalid control character at", "Unterminated string starting at")."""
    msg = exc.msg
    if msg.endswith(" at"):
        msg += f" column {exc.colno}"
    return msg


_EXCERPT = 30


def _show(part: str) -> str:
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in part)


def _excerpt(text: str, pos: int, *, at: str | None = None, skip: int = 1) -> str:
    """Up to 30 characters either side of position ``pos`` of ``text``, the character there marked
    ``>>c<<`` (or ``at``, the text to show for the ``skip`` characters there); control characters
    escaped (``\\t``, ``\\n``), the line's own terminator left out."""
    body = text.rstrip("\r\n")
    if pos >= len(body):
        body = text   # the terminator itself is the problem: show it
    before = body[max(0, pos - _EXCERPT):pos]
    if at is None:
        at = _show(body[pos:pos + skip]) if pos < len(body) else "(end of line)"
    after = body[pos + skip:pos + skip + _EXCERPT]
    left = "..." if pos > _EXCERPT else ""
    right = "..." if pos + skip + _EXCERPT < len(body) else ""
    return f"{left}{_show(before)}>>{at}<<{_show(after)}{right}"


def _utf8_excerpt(raw: bytes, start: int) -> str:
    before = raw[:start].decode("utf-8", "replace")
    text = before + "\ufffd" + raw[start + 1:].decode("utf-8", "replace")
    return _excerpt(text, len(before), at=f"\\x{raw[start]:02x}")


def iter_examples(dir_or_file: str | os.PathLike, *, split: str | None = None,
                  validate: bool = True) -> Iterator[tuple[str, dict]]:
    """Yield ``(sample_id, example)`` for every line of every shard, in shard then line order.

    Memory is flat: shards are read line by line.

    Args:
        dir_or_file: a shard file or a directory of shards (see :func:`list_shards`).
        split: keep only shards of this split.
        validate: check each example with :func:`validate_example`.

    Raises:
        InvalidExample: a line is not JSON (``"path:line:col: invalid JSON: ..."``) or fails the
            schema (``"path:line: field 'x': ..."``).

    Example::

        for sample_id, ex in iter_examples("data/great/dev"):
            print(sample_id, ex["has_bug"])   # dev__VARIABLE_MISUSE__SStuB.txt-00024-of-00300:1 False
    """
    for shard in list_shards(dir_or_file, split=split):
        name = shard.name
        with open(shard, "rb") as fh:
            for lineno, raw in enumerate(fh, start=1):
                example = decode_line(raw, where=f"{shard}:{lineno}", validate=validate)
                yield f"{name}:{lineno}", example
