"""Sub-token vocabulary for VarMisuse tokens (no TensorFlow).

Each source token is split into sub-tokens and the model embeds a token as the mean of its
sub-token embeddings (Hellendoorn et al., ICLR 2020, section 4: "we split tokens into sub-tokens
... and average their embeddings").

Splitting rules (:func:`split_subtokens`):

* GREAT's layout tokens (``#NEWLINE#``, ``#INDENT#``, ``#UNINDENT#``) and any token made only of
  punctuation stay whole (``"=="``, ``"("``);
* identifiers are split on ``_`` and on camelCase / digit boundaries and lower-cased:
  ``"getHTTPResponse_code2"`` -> ``["get", "http", "response", "code", "2"]``;
* other characters (quotes, brackets inside ``"def name("``) become their own sub-tokens, so
  ``"def __init__("`` -> ``["def", "init", "("]``;
* at most ``max_subtokens`` sub-tokens are kept per token (the first ones).

Ids: 0 is padding, 1 is the unknown sub-token, then sub-tokens by decreasing training count
(ties broken alphabetically, so a vocabulary is deterministic).
"""
from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path
from typing import Iterable, Sequence

__all__ = ["PAD_ID", "UNK_ID", "split_subtokens", "SubtokenVocab"]

PAD_ID = 0
UNK_ID = 1
_LAYOUT = frozenset({"#NEWLINE#", "#INDENT#", "#UNINDENT#"})
_PUNCT_ONLY = re.compile(r"^[^\w\s]+$")
# a word part: ACRONYM before Capitalised word, Capitalised/lower word, ACRONYM, digits, or one symbol
_PART = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+|[^\w\s]")


def split_subtokens(token: str, max_subtokens: int = 5) -> list[str]:
    """Split one source token into at most ``max_subtokens`` lower-cased sub-tokens (rules above).

    An empty or whitespace-only token gives ``[]`` (it embeds as the unknown sub-token).
    """
    if token in _LAYOUT or _PUNCT_ONLY.match(token):
        return [token]
    parts = [p.lower() for p in _PART.findall(token)]
    return parts[:max_subtokens]


class SubtokenVocab:
    """A frozen sub-token -> id mapping built from training tokens.

    Build with :meth:`build` (counts over tokens), save/load as JSON, encode tokens with
    :meth:`encode_tokens`.
    """

    def __init__(self, subtokens: Sequence[str], *, max_subtokens: int = 5) -> None:
        if not isinstance(max_subtokens, int) or max_subtokens < 1:
            raise ValueError(f"max_subtokens must be a positive int; received {max_subtokens!r}")
        self.max_subtokens = max_subtokens
        self.itos: list[str] = ["<pad>", "<unk>", *subtokens]
        self.stoi: dict[str, int] = {s: i for i, s in enumerate(self.itos)}
        if len(self.stoi) != len(self.itos):
            raise ValueError("subtokens must be unique")

    def __len__(self) -> int:
        return len(self.itos)

    @classmethod
    def build(
        cls,
        token_lists: Iterable[Sequence[str]],
        *,
        max_size: int = 8000,
        min_count: int = 2,
        max_subtokens: int = 5,
    ) -> "SubtokenVocab":
        """Count sub-tokens over ``token_lists`` (one list of source tokens per example).

        Keeps the ``max_size - 2`` most frequent sub-tokens seen at least ``min_count`` times.
        """
        if max_size < 3:
            raise ValueError(f"max_size must be >= 3 (pad, unk and one sub-token); received {max_size}")
        counts: Counter[str] = Counter()
        cache: dict[str, list[str]] = {}
        for tokens in token_lists:
            for tok in tokens:
                parts = cache.get(tok)
                if parts is None:
                    parts = cache[tok] = split_subtokens(tok, max_subtokens)
                counts.update(parts)
        ranked = sorted((item for item in counts.items() if item[1] >= min_count), key=lambda kv: (-kv[1], kv[0]))
        return cls([s for s, _ in ranked[: max_size - 2]], max_subtokens=max_subtokens)

    def encode_tokens(self, tokens: Sequence[str]) -> list[list[int]]:
        """Sub-token ids per token, each list of length 1..max_subtokens (unknown -> ``UNK_ID``)."""
        out = []
        for tok in tokens:
            ids = [self.stoi.get(p, UNK_ID) for p in split_subtokens(tok, self.max_subtokens)]
            out.append(ids or [UNK_ID])
        return out

    def to_json(self, path: str | Path) -> None:
        """Write ``{"max_subtokens": int, "subtokens": [...]}`` (pad/unk not included)."""
        Path(path).write_text(json.dumps({"max_subtokens": self.max_subtokens, "subtokens": self.itos[2:]}))

    @classmethod
    def from_json(cls, path: str | Path) -> "SubtokenVocab":
        data = json.loads(Path(path).read_text())
        return cls(data["subtokens"], max_subtokens=int(data["max_subtokens"]))
